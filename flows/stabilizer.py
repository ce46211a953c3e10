"""``tune_stabilizer``: replay tuning of the realtime stabiliser over recorded, labelled runner logs."""

from __future__ import annotations

from typing import Any

from prefect import flow

from tasks.stabilizer import tune_stabilizer


@flow(name="tune_stabilizer", log_prints=True)
def tune_stabilizer_flow(
    bundle: str, logs: list[str], min_accuracy: float = 0.7, alphas: list[float] | None = None
) -> dict[str, Any]:
    """Least-jitter stabiliser above an accuracy floor, written back as the bundle's ``stabilizer.json``."""
    out = tune_stabilizer(bundle, logs, min_accuracy, alphas or [0.1, 0.2, 0.3, 0.5, 0.8])
    print(f"stabiliser {out['stabilizer']}: accuracy {out['accuracy']:.3f}, jitter {out['jitter_per_min']:.1f}/min")
    return out
