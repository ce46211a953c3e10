"""``pipeline``: every stage end to end; each stage's tasks are cached by their inputs' content hashes."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.calibrate import calibrate_flow
from flows.config import PipelineConfig, resolve
from flows.distill import distill_flow, distill_sweep_flow, nested_learning_flow
from flows.ensemble import tune_ensemble_flow
from flows.ingest import ingest_pipeline_flow
from flows.package import package_flow
from flows.replicate import replicate_flow
from flows.report import report_flow
from flows.teachers import train_teachers_flow


@flow(name="pipeline", log_prints=True)
def pipeline_flow(config: PipelineConfig | None = None, config_path: str | None = None) -> dict[str, Any]:
    """ingest → train_teachers → tune_ensemble → (distill_sweep) → distill → calibrate → package."""
    cfg = resolve(config, config_path)
    out = package_flow(cfg)  # pulls every upstream stage (cache hits where nothing changed)
    if cfg.student.sweep.enabled:
        out["sweep"] = distill_sweep_flow(cfg)["sweep"]
    return out


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
