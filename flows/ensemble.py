"""``tune_ensemble``: Ray Tune over teacher weights x temperature x seeds on cached validation logits."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows._common import out_root
from flows.config import PipelineConfig, resolve
from flows.teachers import train_teachers_flow
from tasks.ensemble import tune_ensemble_task


@flow(name="tune_ensemble", log_prints=True)
def tune_ensemble_flow(config: PipelineConfig | None = None, config_path: str | None = None) -> dict[str, Any]:
    """Best ensemble (weights, T) by validation macro-F1 with ECE as tie-break, as one MLflow parent run."""
    cfg = resolve(config, config_path)
    up = train_teachers_flow(cfg)
    names = [t.name for t in cfg.teachers.teachers]
    d = up["data"]
    best = tune_ensemble_task(
        up["teachers"], names, cfg.ensemble.weight_step, cfg.ensemble.temperatures, cfg.ensemble.trials,
        d["index_path"], d["index_sha256"], out_root(), cfg.ensemble.f1_tolerance,
    )  # fmt: skip
    print(f"ensemble: weights {best['weights']} T={best['temperature']} val macro-F1 {best['metrics']['macro_f1']:.3f}")
    return {**up, "ensemble": best}
