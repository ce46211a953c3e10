"""Typed stage results: what one stage hands the next (paths and content hashes, never arrays or models).

Every unit writes its result as ``result.json`` into its content-addressed run folder (:func:`save_result`), so a
stage run on its own finds its upstream results by recomputing the folder from its inputs (:func:`find_result`)
instead of asking the upstream flow to run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from fer_core.io import atomic_write_json, read_json

RESULT_NAME = "result.json"


class StageResult(BaseModel):
    """Base of every stage result: frozen, unknown fields refused, JSON round-trip exact."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class IndexRef(StageResult):
    """The ``ingest`` stage's output: a verified dataset index (contract 3.1)."""

    index_path: str
    index_sha256: str
    manifest: dict[str, Any]
    report_json: str
    balance_png: str
    published_index: str | None = None


class UnitRun(StageResult):
    """One trained model (a teacher or student unit): checkpoint, logits export and its MLflow run."""

    name: str
    seed: int
    checkpoint: str
    checkpoint_sha256: str
    logits: str
    logits_sha256: str
    mlflow_run_id: str
    model_uri: str | None = None
    val_metrics: dict[str, float]
    class_f1: list[float]
    out_dir: str
    worker_node: str = ""


class TeacherRun(UnitRun):
    """A teacher x seed unit."""

    teacher: str


class StudentRun(UnitRun):
    """A student x seed unit; ``kind`` is ``ce`` or ``<strategy>-<loss>`` (``nested-<loss>`` for Nested Learning)."""

    kind: str


class EnsembleResult(StageResult):
    """The tuned ensemble: teacher weights (by name), the shared T and each teacher's own NLL temperature."""

    weights: list[float]
    temperature: float
    teacher_names: list[str]
    teacher_temperatures: list[float]
    metrics: dict[str, float]
    grid_csv: str
    mlflow_run_id: str
    n_configs: int


class SweepResult(StageResult):
    """The distillation sweep: per-family aggregate across seeds and every trial."""

    table: list[dict[str, Any]]
    trials: list[dict[str, Any]]
    mlflow_run_id: str


class StudentsResult(StageResult):
    """The students stage: the packaged family's seed units, and the sweep and Nested Learning when enabled."""

    students: list[StudentRun]
    sweep: SweepResult | None = None
    nested: list[StudentRun] = Field(default_factory=list)


class CalibratedStudent(StageResult):
    """A student with its fitted calibration (temperature, thresholds) and metrics before/after."""

    student: StudentRun
    calibration_json: str
    calibration_sha256: str
    temperature: float
    before: dict[str, float]
    after: dict[str, float]
    abstention: list[dict[str, Any]] = Field(default_factory=list)
    test_split: str = "test"
    warnings: list[str] = Field(default_factory=list)


class BundleRef(StageResult):
    """The ``package`` stage's output: a verified bundle (contract 3.4) and its registry version."""

    bundle: str
    version: str
    alias: str | None = None
    registered: bool
    candidate_run: str
    package_run: str | None = None
    published_bundle: str | None = None
    details: dict[str, Any] = Field(default_factory=dict, description="export figures: parity, INT8, ...")


class PipelineResult(StageResult):
    """Everything one ``pipeline`` run produced, stage by stage."""

    profile: str
    index: IndexRef
    teachers: list[TeacherRun]
    ensemble: EnsembleResult
    students: StudentsResult
    calibrated: list[CalibratedStudent]
    bundle: BundleRef


R = TypeVar("R", bound=StageResult)


def save_result(out_dir: str | Path, result: R) -> R:
    """Write ``result`` as the run folder's ``result.json`` (atomically: a crashed unit leaves none)."""
    atomic_write_json(Path(out_dir) / RESULT_NAME, result.model_dump(mode="json"))
    return result


def find_result(out_dir: str | Path, model: type[R]) -> R | None:
    """The result a finished unit left in ``out_dir``, or None when that unit has not finished there."""
    path = Path(out_dir) / RESULT_NAME
    if not path.is_file():
        return None
    return model.model_validate(read_json(path))
