"""``pipeline``: the stages in order, each a flow run at the top level, then a summary artifact."""

from __future__ import annotations

from prefect import flow

from fer_spec.profile import PipelineConfig, Profile, RunOverrides, resolve_profile
from fer_spec.results import PipelineResult
from flows._common import run_name
from flows.calibrate import calibrate_flow
from flows.distill import distill_flow, distill_sweep_flow, nested_learning_flow
from flows.ensemble import tune_ensemble_flow
from flows.ingest_stage import ingest_pipeline_flow
from flows.package import package_flow
from flows.replicate import replicate_flow
from flows.report import report_flow
from flows.teachers import train_teachers_flow
from tasks.summary import publish_summary


@flow(name="pipeline", flow_run_name=run_name("pipeline"), log_prints=True)
def pipeline_flow(
    profile: Profile = "demo",
    overrides: RunOverrides | None = None,
    config: PipelineConfig | None = None,
    report: bool = False,
) -> PipelineResult:
    """Ingest → teachers → ensemble → students (+ sweep, + Nested Learning) → calibrate → package (→ report).

    Each stage finds its inputs by content hash, so re-running an unchanged profile is all cache hits.

    Args:
        profile: The shipped profile to run (configs/PROFILE.yaml).
        overrides: Optional changes to the profile: seeds, epochs, sweep on/off, publish URI.
        config: Advanced: a whole typed configuration used instead of the profile (the overrides still apply).
        report: Also write the results report (Markdown + figures) at the end.
    """
    cfg = resolve_profile(profile, overrides, config)
    index = ingest_pipeline_flow(config=cfg)
    teachers = train_teachers_flow(config=cfg)
    ensemble = tune_ensemble_flow(config=cfg)
    students = distill_flow(config=cfg)
    calibrated = calibrate_flow(config=cfg)
    bundle = package_flow(config=cfg)
    result = PipelineResult(
        profile=cfg.name, index=index, teachers=teachers, ensemble=ensemble, students=students,
        calibrated=calibrated, bundle=bundle,
    )  # fmt: skip
    publish_summary(result)
    if report:
        report_flow(config=cfg)
    return result


STAGE_FLOWS = {
    "ingest": ingest_pipeline_flow,
    "train_teachers": train_teachers_flow,
    "tune_ensemble": tune_ensemble_flow,
    "distill": distill_flow,
    "distill_sweep": distill_sweep_flow,
    "nested_learning": nested_learning_flow,
    "calibrate": calibrate_flow,
    "package": package_flow,
    "replicate": replicate_flow,
    "pipeline": pipeline_flow,
    "report": report_flow,
}
