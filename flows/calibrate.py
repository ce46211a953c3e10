"""``calibrate``: temperature scaling and thresholds for every student of the packaged family."""

from __future__ import annotations

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from fer_spec.profile import NO_OVERRIDES, PipelineConfig, Profile, RunOverrides
from fer_spec.results import CalibratedStudent, IndexRef, StudentRun
from flows._common import require_index, require_students, run_name, stage_config, stage_flow, upstream_of_students
from tasks.calibrate import calibrate_student


def calibrate_stage(cfg: PipelineConfig, index: IndexRef, students: list[StudentRun]) -> list[CalibratedStudent]:
    """Fit on validation, report on test, log into each student's MLflow run (students calibrated concurrently)."""
    futures = [calibrate_student.submit(s, cfg.calibrate, index) for s in students]
    cal = [f.result() for f in futures]
    for c in cal:
        b, a = c.before["ece_15"], c.after["ece_15"]
        print(f"{c.student.name}: T={c.temperature:.3f} ECE {b:.4f} -> {a:.4f}")
    return cal


@flow(
    name="calibrate",
    flow_run_name=run_name("calibrate"),
    task_runner=ThreadPoolTaskRunner(max_workers=4),
    log_prints=True,
)
@stage_flow
def calibrate_flow(
    profile: Profile = "demo", overrides: RunOverrides = NO_OVERRIDES, config: PipelineConfig | None = None,
    index: IndexRef | None = None, students: list[StudentRun] | None = None,
) -> list[CalibratedStudent]:
    """Calibrate every student of the packaged family (needs the students stage)."""
    cfg = stage_config(profile, overrides, config)
    index = require_index(cfg, index)
    if students is None:
        _, teachers, ensemble = upstream_of_students(cfg, index)
        students = require_students(cfg, index, teachers, ensemble)
    return calibrate_stage(cfg, index, students)
