"""Typed stage results: what one stage hands the next (store keys and content hashes, never arrays or models).

Every unit commits its result as ``result.json`` into its content-addressed run folder in the artifact store
(``fer_adapters.run_store``), so a stage run on its own finds its upstream results by recomputing those keys from its
inputs instead of asking the upstream flow to run. Fields named ``checkpoint``, ``logits``, ``out_dir``,
``calibration_json``, ``grid_csv`` and ``pack`` are store keys; ``index_path`` and ``bundle`` are the driver's files.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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
    pack: str | None = Field(None, description="store prefix of the decoded images packed for the profile's input")


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
    start_epoch: int = 0


class TeacherRun(UnitRun):
    """A teacher x seed unit."""

    teacher: str


class StudentRun(UnitRun):
    """A student x seed unit; ``kind`` is ``ce``, the distilled family (``<strategy>-<loss>[-online]``) or
    ``nested-<loss>`` for Nested Learning."""

    kind: str


def student_run_name(family: str, seed: int) -> str:
    """A student unit's run name (its MLflow run name and its store key's name part): ``student-<family>-s<seed>``."""
    return f"student-{family}-s{seed}"


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
    val_before: dict[str, float] = Field(default_factory=dict, description="validation metrics at T = 1")
    val_after: dict[str, float] = Field(default_factory=dict, description="validation metrics at the written T")
    fitted_temperature: float = 1.0
    fell_back: bool = False


class BundleRef(StageResult):
    """The ``package`` stage's output: a verified bundle (contract 3.4) and its registry version."""

    bundle: str
    version: str
    alias: str | None = None
    registered: bool
    candidate_run: str
    package_run: str | None = None
    published_bundle: str | None = None
    bundle_key: str | None = Field(None, description="store prefix of the bundle (bundles/<manifest sha256>)")
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
