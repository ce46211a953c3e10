"""``package``: best student from MLflow → ONNX bundle → registry alias."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows._common import out_root
from flows.calibrate import calibrate_flow
from flows.config import PipelineConfig, resolve
from tasks.package import package_student
from tasks.publish import publish_bundle


@flow(name="package", log_prints=True)
def package_flow(config: PipelineConfig | None = None, config_path: str | None = None) -> dict[str, Any]:
    """Select by gates, export and verify ONNX, write the bundle, register ``fer-student`` and set its alias."""
    cfg = resolve(config, config_path)
    up = calibrate_flow(cfg)
    d = up["data"]
    pkg = package_student(cfg.data.preprocess, d["index_path"], d["index_sha256"], cfg.package, out_root())
    if cfg.publish_uri:
        pkg["published_bundle"] = publish_bundle(pkg["bundle"], cfg.publish_uri)
    print(f"bundle {pkg['bundle']} -> {cfg.package.model_name} v{pkg['version']}")
    return {**up, "package": pkg}
