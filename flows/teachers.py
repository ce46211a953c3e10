"""``train_teachers``: every (teacher, seed) unit submitted at once and placed on Ray by the stage's resources."""

from __future__ import annotations

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from fer_adapters.units import check_placeable
from fer_spec.profile import NO_OVERRIDES, PipelineConfig, Profile, RunOverrides
from fer_spec.results import IndexRef, TeacherRun
from flows._common import require_index, run_name, stage_config, stage_flow
from tasks.teachers import train_teacher

# Threads only wait on Ray; Ray decides how many units actually run at once.
UNIT_SUBMITTERS = 64


def teachers_stage(cfg: PipelineConfig, index: IndexRef) -> list[TeacherRun]:
    """Submit every (teacher, seed) unit concurrently and wait for all of them."""
    check_placeable("teachers", cfg.teachers.resources)  # refuse before submitting; Ray starts in this thread
    futures = [
        train_teacher.submit(t, seed, cfg.teachers.resources, index, cfg.data.preprocess)
        for seed in cfg.teachers.seeds
        for t in cfg.teachers.teachers
    ]
    runs = [f.result() for f in futures]
    for r in runs:
        print(f"teacher {r.name}: val macro-F1 {r.val_metrics['macro_f1']:.3f} on {r.worker_node}")
    return runs


@flow(
    name="train_teachers",
    flow_run_name=run_name("teachers"),
    task_runner=ThreadPoolTaskRunner(max_workers=UNIT_SUBMITTERS),
    log_prints=True,
)
@stage_flow
def train_teachers_flow(
    profile: Profile = "demo", overrides: RunOverrides = NO_OVERRIDES, config: PipelineConfig | None = None,
    index: IndexRef | None = None,
) -> list[TeacherRun]:
    """Train every teacher for every seed on the profile's index; each (teacher, seed) is its own unit on Ray.
    """
    cfg = stage_config(profile, overrides, config)
    return teachers_stage(cfg, require_index(cfg, index))
