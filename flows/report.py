"""``report``: the results report of a profile's finished pipeline (Markdown + PNGs, MLflow and Prefect artifacts)."""

from __future__ import annotations

from typing import Any

from prefect import flow

from fer_spec.profile import NO_OVERRIDES, PipelineConfig, Profile, RunOverrides
from flows._common import run_name, stage_config
from tasks.report import build_report


@flow(name="report", flow_run_name=run_name("report"), log_prints=True)
def report_flow(
    profile: Profile = "demo",
    overrides: RunOverrides = NO_OVERRIDES,
    config: PipelineConfig | None = None,
    out_dir: str | None = None,
) -> dict[str, Any]:
    """Read every run of the profile back from MLflow (nothing is retrained) and write the report.

    Args:
        profile: The shipped profile to report on (configs/PROFILE.yaml).
        overrides: Optional changes to the profile: seeds, epochs, sweep on/off, publish URI.
        config: Advanced: a whole typed configuration used instead of the profile (the overrides still apply).
        out_dir: Folder for report.md, report.json and the figures (default: $FERFLOW_HOME/reports/PROFILE).
    """
    cfg = stage_config(profile, overrides, config)
    res = build_report(cfg, out_dir)
    print(f"report {res['report']} (MLflow run {res['mlflow_run_id']})")
    for k, v in res["headline"].items():
        print(f"  {k}: {v:.4f}")
    return res
