"""``report``: the results report of a profile's finished pipeline (Markdown + PNGs, MLflow and Prefect artifacts)."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.config import PipelineConfig, resolve
from tasks.report import build_report


@flow(name="report", log_prints=True)
def report_flow(
    config: PipelineConfig | None = None, config_path: str | None = None, out_dir: str | None = None
) -> dict[str, Any]:
    """Read every run of the profile back from MLflow (nothing is retrained) and write the report."""
    cfg = resolve(config, config_path)
    res = build_report(cfg, out_dir)
    print(f"report {res['report']} (MLflow run {res['mlflow_run_id']})")
    for k, v in res["headline"].items():
        print(f"  {k}: {v:.4f}")
    return res
