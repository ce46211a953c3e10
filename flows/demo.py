"""The embedded demo: the whole pipeline on synthetic data, then the realtime runner headless on a synthetic video."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.config import resolve
from flows.pipeline import pipeline_flow
from tasks.realtime import realtime_demo
from tasks.settings import Settings


@flow(name="demo", log_prints=True)
def demo_flow(config_path: str = "configs/demo.yaml") -> str:
    """Run ``pipeline`` embedded, then the runner on a rendered video; return where to look."""
    cfg = resolve(None, config_path)
    out: dict[str, Any] = pipeline_flow(cfg)
    live = realtime_demo(out["package"]["bundle"], cfg.realtime.video_seconds_per_label, cfg.realtime.stabilizer)
    s = Settings.from_env()
    cal = out["calibration"][0]
    lines = [
        "ferflow demo finished.",
        f"  index:        {out['data']['index_path']}",
        f"  balance:      {out['data']['balance_png']}",
        *(f"  teacher:      {t['name']} val macro-F1 {t['val_metrics']['macro_f1']:.3f}" for t in out["teachers"]),
        f"  ensemble:     weights {out['ensemble']['weights']} T={out['ensemble']['temperature']:.2f} "
        f"val macro-F1 {out['ensemble']['metrics']['macro_f1']:.3f}",
        *(f"  student:      {st['name']} val macro-F1 {st['val_metrics']['macro_f1']:.3f}" for st in out["students"]),
        f"  calibration:  T={cal['temperature']:.3f}  "
        f"ECE {cal['before']['ece_15']:.4f} -> {cal['after']['ece_15']:.4f}  "
        f"NLL {cal['before']['nll']:.4f} -> {cal['after']['nll']:.4f}",
        "  abstention (test):",
        *(f"    {r}" for r in cal["abstention"]),
        f"  bundle:       {out['package']['bundle']}  (fer-student v{out['package']['version']}"
        f" @{out['package'].get('alias', 'unchanged')})",
        f"  realtime:     {live['video']}  (per-frame CSV {live['csv']})",
        f"                Protocol-Lite: {live['score']}",
        f"  MLflow UI:    mlflow ui --backend-store-uri {s.tracking_uri}",
    ]
    return "\n".join(lines)
