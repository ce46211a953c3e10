"""The pipeline's typed parameters: one section per stage, each built from fer_core's narrow configs.

Flows take these models as parameters, so the Prefect UI renders a typed, documented form; YAML profiles in
``configs/`` are loaded with ``safe_load`` and validated into the same models.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from fer_core.calibrate.pipeline import CalibrationConfig
from fer_core.config import FrozenModel, load_yaml_config
from fer_core.data.adapters import SourceSpec
from fer_core.data.ingest import IngestConfig
from fer_core.distill.config import DistillConfig
from fer_core.errors import ConfigError
from fer_core.io import sha256_json
from fer_core.nested.config import NestedConfig
from fer_core.preprocess import PreprocessSpec
from fer_core.realtime.stabilize import StabilizerConfig
from fer_core.train.config import TrainConfig


class SynthSection(FrozenModel):
    """Render the synthetic embedded dataset first (demo and tests); its folder becomes a folder source."""

    per_class: int = Field(60, ge=4, description="images per class")
    size: int = Field(48, ge=16, description="side in pixels")
    seed: int = 0


class DataSection(FrozenModel):
    synth: SynthSection | None = Field(None, description="render synthetic faces and ingest them")
    ingest: IngestConfig = Field(description="sources, splits, gates, augmentation")
    preprocess: PreprocessSpec = Field(PreprocessSpec(), description="model input spec shared by every stage")


class TeacherSpec(FrozenModel):
    name: str = Field(description="teacher id (unique within the pipeline)")
    train: TrainConfig


class TeachersSection(FrozenModel):
    teachers: list[TeacherSpec] = Field(min_length=1)
    seeds: list[int] = Field([0], min_length=1, description="one run per (teacher, seed)")


class EnsembleSection(FrozenModel):
    weight_step: float = Field(0.1, gt=0, le=0.5, description="grid step of the weight simplex / ratio")
    temperatures: list[float] = Field([0.8, 0.9, 1.0, 1.1, 1.2, 1.35, 1.5], min_length=1)
    trials: int = Field(4, ge=1, description="Tune trials the grid is split into (each vectorised)")
    f1_tolerance: float = Field(
        0.005, ge=0, le=0.1, description="configs within this of the best macro-F1 are ranked by validation NLL"
    )


class SweepSection(FrozenModel):
    """Ray Tune sweep over distillation settings across seeds."""

    enabled: bool = False
    strategies: list[str] = ["pairwise"]
    losses: list[str] = Field(["kd", "dkd"], description="kd | dkd | ce (baseline)")
    alphas: list[float] = [0.5]
    betas: list[float] = [4.0]
    temperatures: list[float] = [2.0]
    seeds: list[int] = [42, 1337, 2025, 7, 11]
    variants: list[str] | None = Field(
        None, description="keep only these kinds of the strategies x losses grid, e.g. ['ce', 'pairwise-dkd']"
    )
    baseline: str = Field("ce", description="the loss the aggregate is compared against")
    resources: dict[str, float] = Field(
        {"cpu": 1}, description="per trial; a trial's torch threads follow its cpu share"
    )
    max_failures: int = 2
    scheduler: Literal["asha", "fifo"] = Field(
        "asha", description="asha stops weak trials early; fifo runs every trial to the end (seed studies)"
    )
    asha_grace_epochs: int = 1


class StudentSection(FrozenModel):
    train: TrainConfig
    distill: DistillConfig
    seeds: list[int] = Field([42], min_length=1)
    sweep: SweepSection = SweepSection()
    nested: NestedConfig | None = None


class PackageSection(FrozenModel):
    min_macro_f1: float = Field(0.3, ge=0, le=1, description="promotion floor")
    max_ece: float = Field(0.05, gt=0, le=1)
    parity_samples: int = Field(256, ge=1)
    quantize_int8: bool = False
    model_name: str = "fer-student"


class RealtimeSection(FrozenModel):
    video_seconds_per_label: float = Field(1.5, gt=0)
    stabilizer: StabilizerConfig = StabilizerConfig()


class PipelineConfig(FrozenModel):
    """The whole pipeline: data → teachers → ensemble → student → calibration → package → realtime demo."""

    name: str = "demo"
    publish_uri: str | None = Field(
        None, description="folder or s3://bucket/prefix where the index and the packaged bundles are published"
    )
    data: DataSection
    teachers: TeachersSection
    ensemble: EnsembleSection = EnsembleSection()
    student: StudentSection
    calibrate: CalibrationConfig = CalibrationConfig()
    package: PackageSection = PackageSection()
    realtime: RealtimeSection = RealtimeSection()

    def config_hash(self) -> str:
        return sha256_json(self.model_dump(mode="json"))[:16]


def load_pipeline_config(path: str | os.PathLike[str]) -> PipelineConfig:
    """Load a profile; relative source paths resolve against the profile's folder's parent (the repo root)."""
    return load_yaml_config(path, PipelineConfig)


def resolve(config: PipelineConfig | None, config_path: str | None) -> PipelineConfig:
    """A flow's two ways of being called: a typed config (UI form) or a profile path (deployments, CLI)."""
    if config is not None:
        return config
    if config_path is None:
        raise ConfigError("pass either config (a PipelineConfig) or config_path (a YAML profile)")
    return load_pipeline_config(config_path)


def ingest_config_from_cli(config: Path | None, sources: list[str], out: Path | None) -> IngestConfig:
    """``ferflow ingest --config FILE`` (ingest config or pipeline profile) or ``--source KIND:PATH ... --out DIR``."""
    if config is not None:
        import yaml

        data: Any = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
        if isinstance(data, dict) and "data" in data:
            return load_pipeline_config(config).data.ingest
        return load_yaml_config(config, IngestConfig)
    if not sources or out is None:
        raise ConfigError("give --config FILE, or --source KIND:PATH (repeatable) and --out DIR")
    specs = []
    for s in sources:
        kind, sep, path = s.partition(":")
        if not sep or not path:
            raise ConfigError(f"--source must be KIND:PATH, got {s!r}")
        specs.append(SourceSpec(kind=kind, path=path))
    return IngestConfig(sources=specs, out_dir=str(out))
