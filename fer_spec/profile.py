"""Pipeline profiles: one typed section per stage, built from fer_core's narrow configs.

Tasks take a section (and the upstream stage results, :mod:`fer_spec.results`); flows take a profile name plus a few
documented overrides, so the Prefect UI renders a short form. YAML profiles in ``configs/`` are loaded with
``safe_load`` and validated into the same models.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from fer_core.calibrate.pipeline import CalibrationConfig
from fer_core.config import FrozenModel, load_yaml_config
from fer_core.data.ingest import IngestConfig
from fer_core.distill.config import DistillConfig
from fer_core.errors import ConfigError
from fer_core.io import sha256_json
from fer_core.nested.config import NestedConfig
from fer_core.preprocess import PreprocessSpec
from fer_core.realtime.stabilize import StabilizerConfig
from fer_core.train.config import TrainConfig

MAX_SEED = 2**32 - 1  # numpy's and Ray's seeds are unsigned 32-bit


def _distinct(seeds: list[int]) -> list[int]:
    """A seed listed twice would run the same unit twice and count it as two replicates."""
    dup = sorted({s for s in seeds if seeds.count(s) > 1})
    if dup:
        raise ValueError(f"seeds must be distinct; {dup} listed more than once")
    return seeds


Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
"""One random seed: 0 .. 2**32 - 1."""
Seeds = Annotated[list[Seed], AfterValidator(_distinct)]
"""Seeds of one family of units: each one unit, so distinct."""


class SynthSection(FrozenModel):
    """Render the synthetic embedded dataset first (demo and tests); its folder becomes a folder source."""

    per_class: int = Field(60, ge=4, description="images per class")
    size: int = Field(48, ge=16, description="side in pixels")
    seed: Seed = Field(0, description="random seed of the rendering (0 .. 2**32 - 1)")


class DataSection(FrozenModel):
    """Where the faces come from and how every model sees them."""

    synth: SynthSection | None = Field(None, description="render synthetic faces and ingest them")
    ingest: IngestConfig = Field(description="sources, splits, gates, augmentation")
    preprocess: PreprocessSpec = Field(PreprocessSpec(), description="model input spec shared by every stage")


class TeacherSpec(FrozenModel):
    """One teacher: its name and how it is trained."""

    name: str = Field(description="teacher id (unique within the pipeline)")
    train: TrainConfig = Field(description="backbone, head, loss, epochs and optimiser of this teacher")


class ResourcesSpec(FrozenModel):
    """What one unit of a stage (a teacher x seed, a student x seed, a sweep trial) asks of the Ray cluster.

    A unit that declares a GPU never runs on a node without one: when the cluster has none, the stage stops at
    submission with a clear message, unless ``allow_cpu_fallback`` is set (the unit then runs on CPU and its
    MLflow run is tagged ``ferflow.cpu_fallback``).
    """

    cpu: float = Field(1, ge=0, description="CPU cores per unit; also the unit's torch threads")
    gpu: float = Field(0, ge=0, description="GPUs per unit (0: CPU only)")
    custom: dict[str, float] = Field({}, description="custom Ray resources per unit, e.g. {accelerator_type_H100: 1}")
    allow_cpu_fallback: bool = Field(False, description="run GPU units on CPU when the cluster has no GPU")
    max_retries: int = Field(2, ge=0, le=10, description="re-runs of a unit whose worker died (node lost, OOM kill)")

    def ray_options(self, gpu_available: bool = True) -> dict[str, Any]:
        """``num_cpus``/``num_gpus``/``resources`` for ``ray.remote(...).options``."""
        gpu = self.gpu if gpu_available else 0
        return {"num_cpus": self.cpu, "num_gpus": gpu, "resources": dict(self.custom)}

    def tune_resources(self) -> dict[str, float]:
        """The same request in Tune's ``with_resources`` spelling."""
        return {"cpu": self.cpu, "gpu": self.gpu, **self.custom}


class TeachersSection(FrozenModel):
    """The teachers, trained once per seed; each (teacher, seed) is one unit on Ray."""

    teachers: list[TeacherSpec] = Field(min_length=1, description="the teachers (distinct names)")
    seeds: Seeds = Field([0], min_length=1, description="one run per (teacher, seed); distinct, 0 .. 2**32 - 1")
    resources: ResourcesSpec = Field(ResourcesSpec(), description="per teacher x seed unit")


class EnsembleSection(FrozenModel):
    """The grid the ensemble sweep searches: teacher weights x a shared temperature."""

    weight_step: float = Field(0.1, gt=0, le=0.5, description="grid step of the weight simplex / ratio")
    temperatures: list[float] = Field(
        [0.8, 0.9, 1.0, 1.1, 1.2, 1.35, 1.5], min_length=1, description="ensemble temperatures to try"
    )
    trials: int = Field(
        1, ge=1, description="Tune trials the grid is split into (each vectorised; more only for grids that take >10 s)"
    )
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
    seeds: Seeds = Field([42, 1337, 2025, 7, 11], min_length=1, description="one trial per grid point and seed")
    variants: list[str] | None = Field(
        None, description="keep only these kinds of the strategies x losses grid, e.g. ['ce', 'pairwise-dkd']"
    )
    modes: list[Literal["offline", "online"]] = Field(
        [], description="run each distilled variant in these modes (empty: the student's distill.mode); both compare"
        " online and offline distillation on the same seeds"
    )
    baseline: str = Field("ce", description="the loss the aggregate is compared against")
    resources: ResourcesSpec = Field(ResourcesSpec(), description="per trial; torch threads follow its cpu share")
    max_failures: int = 2
    scheduler: Literal["asha", "fifo"] = Field(
        "asha", description="asha stops weak trials early; fifo runs every trial to the end (seed studies)"
    )
    asha_grace_epochs: int = 1


class StudentSection(FrozenModel):
    """The packaged student: its training, its distillation from the teachers, seeds, sweep and Nested Learning."""

    train: TrainConfig = Field(description="the student's backbone, epochs and optimiser")
    distill: DistillConfig = Field(description="strategy (pairwise, fused, ...), teachers and loss (KD or DKD)")
    seeds: Seeds = Field([42], min_length=1, description="one student unit per seed; distinct, 0 .. 2**32 - 1")
    resources: ResourcesSpec = Field(ResourcesSpec(), description="per student x seed unit (Nested Learning too)")
    sweep: SweepSection = SweepSection()
    nested: NestedConfig | None = Field(None, description="also train Nested Learning students (one per seed)")


class PackageSection(FrozenModel):
    """Promotion gates, ONNX export checks and the registered model's name."""

    min_macro_f1: float = Field(0.3, ge=0, le=1, description="promotion floor")
    min_margin_over_chance: float = Field(
        0.1, gt=0, le=0.5, description="val macro-F1 and accuracy must beat chance and the majority class by this"
    )
    max_ece: float = Field(0.05, gt=0, le=1)
    parity_samples: int = Field(256, ge=1)
    quantize_int8: bool = False
    model_name: str = "fer-student"


class RealtimeSection(FrozenModel):
    """The demo's headless runner: the rendered video and the stabiliser."""

    video_seconds_per_label: float = Field(1.5, gt=0, description="seconds of rendered video per expression")
    stabilizer: StabilizerConfig = Field(StabilizerConfig(), description="EMA, vote window, hysteresis, unknown gate")


class PipelineConfig(FrozenModel):
    """The whole pipeline: data → teachers → ensemble → student → calibration → package → realtime demo."""

    name: str = Field("demo", description="profile name: run names, report folder")
    publish_uri: str | None = Field(
        None, description="folder or s3://bucket/prefix where the index and the packaged bundles are published"
    )
    data: DataSection = Field(description="sources, splits, quality gates and the model input spec")
    teachers: TeachersSection = Field(description="teachers, their seeds and the resources of each unit")
    ensemble: EnsembleSection = Field(EnsembleSection(), description="ensemble weight and temperature grid")
    student: StudentSection = Field(description="the student, its distillation, seeds, sweep and Nested Learning")
    calibrate: CalibrationConfig = Field(CalibrationConfig(), description="temperature scaling and abstention")
    package: PackageSection = Field(PackageSection(), description="promotion gates and export checks")
    realtime: RealtimeSection = Field(RealtimeSection(), description="the demo's headless realtime runner")

    def config_hash(self) -> str:
        return sha256_json(self.model_dump(mode="json"))[:16]


def load_pipeline_config(path: str | os.PathLike[str]) -> PipelineConfig:
    """Load a profile; relative source paths resolve against the profile's folder's parent (the repo root)."""
    return load_yaml_config(path, PipelineConfig)


Profile = Literal["demo", "tiny", "fer2013_cpu", "fer2013_gpu"]
"""The shipped profiles (``configs/<name>.yaml``), offered as a list in the Prefect UI."""

PROFILES_DIR = Path(__file__).resolve().parents[1] / "configs"


class RunOverrides(FrozenModel):
    """A few documented changes to the chosen profile, applied on top of it. Empty fields keep the profile's (an
    empty list, 0 epochs, sweep ``profile``, an empty URI): no field defaults to ``None``, which the Prefect run form
    shows as 'Property is type "None"'."""

    student_seeds: Seeds = Field(
        default_factory=list, max_length=64,
        description="Seeds of the packaged student family: one training unit each (empty: the profile's).",
    )
    teacher_seeds: Seeds = Field(
        default_factory=list, max_length=16,
        description="Seeds of every teacher: one training unit per teacher and seed (empty: the profile's).",
    )
    epochs: int = Field(0, ge=0, le=1000, description="Epochs of every teacher and student run (0: the profile's).")
    sweep: Literal["profile", "on", "off"] = Field(
        "profile", description="Run the distillation sweep (CE, KD, DKD families across seeds), or as the profile says."
    )
    publish_uri: str = Field(
        "", description="Folder or s3://bucket/prefix where the index and the packaged bundle are published (empty: "
        "the profile's)."
    )


# The flows' default: an empty form in the Prefect UI (a ``None`` default shows as 'Property is type "None"').
NO_OVERRIDES = RunOverrides()


def profile_path(profile: str) -> Path:
    """``configs/<profile>.yaml``; refuses a name that is not a shipped profile (the valid names are listed)."""
    path = PROFILES_DIR / f"{profile}.yaml"
    if not path.is_file():
        names = sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))
        raise ConfigError(f"unknown profile {profile!r}; shipped profiles: {names} (or pass a YAML file with -c)")
    return path


def apply_overrides(cfg: PipelineConfig, ov: RunOverrides | None) -> PipelineConfig:
    """The profile with the non-empty override fields applied (validated again as a whole)."""
    if ov is None or ov == NO_OVERRIDES:
        return cfg
    data = cfg.model_dump(mode="json")
    if ov.student_seeds:
        data["student"]["seeds"] = ov.student_seeds
    if ov.teacher_seeds:
        data["teachers"]["seeds"] = ov.teacher_seeds
    if ov.epochs:
        for t in data["teachers"]["teachers"]:
            t["train"]["epochs"] = ov.epochs
        data["student"]["train"]["epochs"] = ov.epochs
    if ov.sweep != "profile":
        data["student"]["sweep"]["enabled"] = ov.sweep == "on"
    if ov.publish_uri:
        data["publish_uri"] = ov.publish_uri
    return PipelineConfig.model_validate(data)


def resolve_profile(
    profile: str = "demo", overrides: RunOverrides | None = None, config: PipelineConfig | None = None
) -> PipelineConfig:
    """What a flow runs: ``config`` when given (advanced), else the shipped ``profile``; then the overrides.

    Raises:
        ConfigError: unknown profile, or a profile that fails :func:`validate_profile`.
    """
    cfg = config if config is not None else load_pipeline_config(profile_path(profile))
    cfg = apply_overrides(cfg, overrides)
    validate_profile(cfg)
    return cfg


def validate_profile(cfg: PipelineConfig) -> None:
    """Check a profile whole before any stage runs: backbones, strategies, teachers, sources, sweep variants.

    Raises:
        ConfigError: every problem found, one per line, each naming the field and the valid values.
    """
    from fer_core.distill.strategies import STRATEGIES
    from fer_core.losses import DISTILL_LOSSES
    from fer_core.models import check_model_config

    problems: list[str] = []
    models = [(f"teachers.teachers[{t.name}].train.model", t.train.model) for t in cfg.teachers.teachers]
    models.append(("student.train.model", cfg.student.train.model))
    for where, model in models:  # built at the profile's input size: a bad name or keyword fails here, not in a unit
        try:
            check_model_config(model, where)
        except ConfigError as e:
            problems.append(str(e))
    teacher_names = [t.name for t in cfg.teachers.teachers]
    if len(set(teacher_names)) != len(teacher_names):
        problems.append(f"teachers.teachers: duplicate teacher names {teacher_names}")
    missing = [n for n in cfg.student.distill.teachers if n not in teacher_names]
    if missing:
        problems.append(f"student.distill.teachers: {missing} are not teachers of this profile {teacher_names}")
    strategies = {cfg.student.distill.strategy, *cfg.student.sweep.strategies}
    for st in sorted(strategies - set(STRATEGIES.names())):
        problems.append(f"distillation strategy {st!r} is unknown; registered: {STRATEGIES.names()}")
    valid_losses = sorted({"ce", *DISTILL_LOSSES.names()})
    bad_losses = set(cfg.student.sweep.losses) - set(valid_losses)
    if bad_losses:
        problems.append(f"student.sweep.losses: {sorted(bad_losses)} unknown; valid: {valid_losses}")
    problems += _seed_problems(cfg)
    for i, src in enumerate(cfg.data.ingest.sources):
        path = Path(src.path)
        if str(src.path) != SYNTH_SOURCE and not (path if path.is_absolute() else Path.cwd() / path).exists():
            problems.append(f"data.ingest.sources[{i}].path: {src.path} does not exist")
    if problems:
        raise ConfigError(f"profile {cfg.name!r} is invalid:\n  " + "\n  ".join(problems))


def _seed_problems(cfg: PipelineConfig) -> list[str]:
    """Seeds of fer_core's own configs (typed there as plain ints) must be valid seeds too, named by their field."""
    seeds = [("data.ingest.seed", cfg.data.ingest.seed), ("student.train.seed", cfg.student.train.seed)]
    seeds += [(f"teachers.teachers[{t.name}].train.seed", t.train.seed) for t in cfg.teachers.teachers]
    if cfg.student.nested is not None and cfg.student.nested.seed is not None:
        seeds.append(("student.nested.seed", cfg.student.nested.seed))
    return [f"{where}: {v} is not a seed; give an integer in 0..{MAX_SEED}" for where, v in seeds
            if not 0 <= v <= MAX_SEED]  # fmt: skip


SYNTH_SOURCE = "@synth"


def synth_dir(cfg: PipelineConfig) -> Path:
    """Where the profile's synthetic dataset is rendered (in ``$FERFLOW_HOME/data``)."""
    from fer_spec.settings import Settings

    s = cfg.data.synth
    if s is None:
        raise ConfigError("this profile has no data.synth section")
    return Settings.from_env().home / "data" / f"synth-n{s.per_class}-px{s.size}-seed{s.seed}"


def effective_ingest(cfg: PipelineConfig) -> IngestConfig:
    """Relative output folders live in ``$FERFLOW_HOME``; a source path ``@synth`` is the rendered synthetic folder."""
    from fer_spec.settings import Settings

    home = Settings.from_env().home
    ing = cfg.data.ingest
    out = ing.out_dir if ing.out_dir.is_absolute() else home / ing.out_dir
    sources = []
    for s in ing.sources:
        if str(s.path) == SYNTH_SOURCE:
            sources.append(s.model_copy(update={"path": synth_dir(cfg)}))
        else:
            sources.append(s if s.path.is_absolute() else s.model_copy(update={"path": Path.cwd() / s.path}))
    return ing.model_copy(update={"out_dir": out, "sources": sources})
