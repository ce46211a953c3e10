"""``replicate`` (nightly): seeds of the profile's student recipe, calibrated, compared with the champion's seeds."""

from __future__ import annotations

from typing import Annotated

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field

from fer_spec.profile import NO_OVERRIDES, PipelineConfig, Profile, RunOverrides
from fer_spec.results import EnsembleResult, IndexRef, StudentRun, TeacherRun
from flows._common import run_name, stage_config, stage_flow, upstream_of_students
from flows.calibrate import calibrate_stage
from flows.distill import students_stage
from flows.teachers import UNIT_SUBMITTERS
from tasks.calibrate import find_calibrated
from tasks.distill import find_student
from tasks.replicate import ReplicationResult, replication_report

DEFAULT_SEEDS = [1000, 1001, 1002, 1003, 1004]


@flow(
    name="replicate",
    flow_run_name=run_name("replicate"),
    task_runner=ThreadPoolTaskRunner(max_workers=UNIT_SUBMITTERS),
    log_prints=True,
)
@stage_flow
def replicate_flow(
    profile: Profile = "demo",
    seeds: Annotated[list[int], Field(min_length=2, max_length=64)] = DEFAULT_SEEDS,
    overrides: RunOverrides = NO_OVERRIDES,
    config: PipelineConfig | None = None,
) -> ReplicationResult:
    """Retrain and calibrate one student per seed (all submitted at once); statistics against the packaged family's
    seeds. Nothing is packaged: a replication never changes the champion.

    Args:
        seeds: Student seeds to train, at least 2 (a paired test needs two); one unit per seed.
    """
    cfg = stage_config(profile, overrides, config)
    index, teachers, ensemble = upstream_of_students(cfg)
    family = [c for c in map(find_calibrated, _family(cfg, index, teachers, ensemble)) if c is not None]
    runs = students_stage(cfg.model_copy(update={"student": cfg.student.model_copy(
        update={"sweep": cfg.student.sweep.model_copy(update={"enabled": False}), "nested": None})}),
        index, teachers, ensemble, seeds=list(seeds))  # fmt: skip
    calibrated = calibrate_stage(cfg, index, runs.students)
    result = replication_report(list(seeds), calibrated, family, index)
    print(result.report)
    return result


def _family(cfg: PipelineConfig, index: IndexRef, teachers: list[TeacherRun], ensemble: EnsembleResult
            ) -> list[StudentRun]:  # fmt: skip
    """The packaged family's finished students in the store (those the pipeline trained for the profile's seeds)."""
    found = (find_student(cfg.student, s, teachers, ensemble, index, cfg.data.preprocess) for s in cfg.student.seeds)
    return [s for s in found if s is not None]
