"""``calibrate``: temperature scaling and thresholds for every student of the packaged family."""

from __future__ import annotations

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from fer_spec.profile import PipelineConfig, Profile, RunOverrides, resolve_profile
from fer_spec.results import CalibratedStudent, IndexRef, StudentRun
from flows._common import require_students, run_name, upstream_of_students
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
def calibrate_flow(
    profile: Profile = "demo", overrides: RunOverrides | None = None, config: PipelineConfig | None = None
) -> list[CalibratedStudent]:
    """Calibrate every student of the packaged family (needs the students stage).

    Args:
        profile: The shipped profile to run (configs/PROFILE.yaml).
        overrides: Optional changes to the profile: seeds, epochs, sweep on/off, publish URI.
        config: Advanced: a whole typed configuration used instead of the profile (the overrides still apply).
    """
    cfg = resolve_profile(profile, overrides, config)
    index, teachers, ensemble = upstream_of_students(cfg)
    return calibrate_stage(cfg, index, require_students(cfg, index, teachers, ensemble))
