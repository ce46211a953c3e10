"""``replicate`` (nightly): seeds of the profile's student recipe, calibrated, compared with the champion's seeds."""

from __future__ import annotations

from typing import Annotated

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field

from fer_spec.profile import PipelineConfig, Profile, RunOverrides, resolve_profile
from flows._common import run_name, upstream_of_students
from flows.calibrate import calibrate_stage
from flows.distill import students_stage
from flows.teachers import UNIT_SUBMITTERS
from tasks.replicate import ReplicationResult, replication_report

DEFAULT_SEEDS = [1000, 1001, 1002, 1003, 1004]


@flow(
    name="replicate",
    flow_run_name=run_name("replicate"),
    task_runner=ThreadPoolTaskRunner(max_workers=UNIT_SUBMITTERS),
    log_prints=True,
)
def replicate_flow(
    profile: Profile = "demo",
    seeds: Annotated[list[int], Field(min_length=2, max_length=64)] = DEFAULT_SEEDS,
    overrides: RunOverrides | None = None,
    config: PipelineConfig | None = None,
) -> ReplicationResult:
    """Retrain and calibrate one student per seed (all submitted at once); statistics against the champion's seeds.

    Args:
        profile: The shipped profile to run (configs/PROFILE.yaml).
        seeds: Student seeds to train, at least 2 (a paired test needs two); one unit per seed.
        overrides: Optional changes to the profile: seeds, epochs, sweep on/off, publish URI.
        config: Advanced: a whole typed configuration used instead of the profile (the overrides still apply).
    """
    cfg = resolve_profile(profile, overrides, config)
    index, teachers, ensemble = upstream_of_students(cfg)
    runs = students_stage(cfg.model_copy(update={"student": cfg.student.model_copy(
        update={"sweep": cfg.student.sweep.model_copy(update={"enabled": False}), "nested": None})}),
        index, teachers, ensemble, seeds=list(seeds))  # fmt: skip
    calibrated = calibrate_stage(cfg, index, runs.students)
    result = replication_report(cfg.package.model_name, list(seeds), calibrated, index)
    print(result.report)
    return result
