"""Calibration task: fit on the student's validation logits, report on test, log into the student's MLflow run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from fer_adapters.cache import CODE_AWARE
from fer_adapters.datasets import load_index
from fer_adapters.run_store import RunFolder, fetch, find_result
from fer_adapters.runs import MlflowSink
from fer_adapters.tables import calibration_markdown
from fer_adapters.tracking import configure_tracking
from fer_core.calibrate.pipeline import CalibrationConfig, calibrate
from fer_core.io import sha256_file
from fer_core.logits.store import align_logits, read_logits
from fer_spec.results import CalibratedStudent, IndexRef, StudentRun

# The calibration's figures shown as charts in the student's run (all of them are in calibration/metrics.csv and in
# the bundle's calibration.json): held-out accuracy/macro-F1/ECE after T, validation ECE before and after, T.
CALIBRATION_CHARTS = frozenset({"after/accuracy", "after/macro_f1", "after/ece_15", "val_before/ece_15",
                                "val_after/ece_15", "calibration/temperature"})  # fmt: skip


def split_logits(logits: Path, index_sha256: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """A split's logits and labels, joined to the index by sample_id."""
    from fer_core.taxonomy import CLASS_TO_INDEX

    rows = load_index(index_sha256)
    rows = rows[rows["split"] == split]
    z = align_logits(read_logits(logits), rows["sample_id"].tolist(), allow_extra=True)
    return z, rows["label"].map(CLASS_TO_INDEX).to_numpy(np.int64)


def calibration_key(student: StudentRun) -> str:
    """The store prefix of a student's calibration (inside its run folder: a student has one calibration)."""
    return f"{student.out_dir}/calibration"


def find_calibrated(student: StudentRun) -> CalibratedStudent | None:
    """The calibration a finished ``calibrate`` stage committed beside ``student`` in the store, or None."""
    return find_result(calibration_key(student), CalibratedStudent)


@task(name="calibrate_student", cache_policy=CODE_AWARE, persist_result=True, task_run_name="calibrate {student.name}")
def calibrate_student(student: StudentRun, cfg: CalibrationConfig, index: IndexRef) -> CalibratedStudent:
    """Temperature scaling (global + per class), thresholds, metrics and plots; everything into the student's run."""
    configure_tracking()
    index_sha256 = index.index_sha256
    logits = fetch(student.logits, student.logits_sha256)
    zv, yv = split_logits(logits, index_sha256, "val")
    test_split = "test" if (load_index(index_sha256)["split"] == "test").any() else "val"
    zt, yt = split_logits(logits, index_sha256, test_split)
    folder = RunFolder(calibration_key(student))
    out = folder.local
    sink = MlflowSink(student.mlflow_run_id, table="calibration/metrics.csv", charts=CALIBRATION_CHARTS)
    res = calibrate(zv, yv, zt, yt, cfg, out, sink=sink)
    sink.flush()
    metrics = res.spec.model_dump()["metrics"]
    before, after = metrics["before"], metrics["after"]
    table = res.test_abstention.round(4).to_dict("records") if res.test_abstention is not None else []
    if table:
        create_table_artifact(
            key="abstention",
            table=table,
            description=f"{student.name}: per-class abstention thresholds set on validation, measured on {test_split}",
        )
    create_markdown_artifact(
        key="calibration",
        markdown=calibration_markdown(student.name, res, test_split),
        description=f"{student.name}: temperature, and ECE/NLL/Brier on validation and {test_split} before and after",
    )
    result = CalibratedStudent(
        student=student,
        calibration_json=folder.key_of(res.calibration_path),
        calibration_sha256=sha256_file(res.calibration_path),
        temperature=float(res.spec.temperature),
        before={k: float(v) for k, v in before.items() if isinstance(v, int | float)},
        after={k: float(v) for k, v in after.items() if isinstance(v, int | float)},
        abstention=table,
        test_split=test_split,
        warnings=list(res.warnings),
        val_before=_numbers(res.val_metrics.get("val_before", {})),
        val_after=_numbers(res.val_metrics.get("val_after", {})),
        fitted_temperature=float(res.fitted_temperature),
        fell_back=bool(res.fell_back),
    )
    folder.push_all()
    return folder.save(result)


def _numbers(metrics: dict) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
