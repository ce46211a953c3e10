"""``pipeline``: the stages in order, each a flow run at the top level, then a summary artifact."""

from __future__ import annotations

from prefect import flow

from fer_spec.profile import NO_OVERRIDES, PipelineConfig, Profile, RunOverrides
from fer_spec.results import PipelineResult
from flows._common import run_name, stage_config, stage_flow
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
@stage_flow
def pipeline_flow(
    profile: Profile = "demo",
    overrides: RunOverrides = NO_OVERRIDES,
    config: PipelineConfig | None = None,
    report: bool = False,
) -> PipelineResult:
    """Ingest → teachers → ensemble → students (+ sweep, + Nested Learning) → calibrate → package (→ report).

    Each stage gets the typed results of the stages before it; an unchanged profile re-runs as all cache hits.

    Args:
        report: Also write the results report (Markdown + figures) at the end.
    """
    cfg = stage_config(profile, overrides, config)
    index = ingest_pipeline_flow(config=cfg)
    teachers = train_teachers_flow(config=cfg, index=index)
    ensemble = tune_ensemble_flow(config=cfg, index=index, teachers=teachers)
    students = distill_flow(config=cfg, index=index, teachers=teachers, ensemble=ensemble)
    calibrated = calibrate_flow(config=cfg, index=index, students=students.students)
    bundle = package_flow(config=cfg, index=index, calibrated=calibrated)
    result = PipelineResult(
        profile=cfg.name, index=index, teachers=teachers, ensemble=ensemble, students=students,
        calibrated=calibrated, bundle=bundle,
    )  # fmt: skip
    # A fresh copy: Prefect records an argument that is a subflow's return value as a flow-run input, which its UI's
    # Task Runs tab cannot show.
    publish_summary(PipelineResult.model_validate(result.model_dump(mode="json")))
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
