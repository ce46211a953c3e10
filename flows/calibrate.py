"""``calibrate``: temperature scaling and thresholds for every distilled student."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.config import PipelineConfig, resolve
from flows.distill import distill_flow
from tasks.calibrate import calibrate_student


@flow(name="calibrate", log_prints=True)
def calibrate_flow(config: PipelineConfig | None = None, config_path: str | None = None) -> dict[str, Any]:
    """Fit on validation, report on test, log everything to each student's MLflow run."""
    cfg = resolve(config, config_path)
    up = distill_flow(cfg)
    d = up["data"]
    cal = [calibrate_student(s, cfg.calibrate, d["index_path"], d["index_sha256"]) for s in up["students"]]
    for s, c in zip(up["students"], cal, strict=True):
        print(f"{s['name']}: T={c['temperature']:.3f} ECE {c['before']['ece_15']:.4f} -> {c['after']['ece_15']:.4f}")
    return {**up, "calibration": cal}
