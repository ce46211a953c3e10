"""Replay tuning: a Ray Tune sweep of the stabiliser over recorded, labelled runner logs; the best is written back."""

from __future__ import annotations

import itertools
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from prefect import task
from prefect.artifacts import create_table_artifact
from ray import tune

from fer_adapters.sweeps import run_sweep
from fer_core.errors import DataIntegrityError
from fer_core.export.bundle import load_bundle, write_bundle
from fer_core.realtime.replay import load_replay_log, replay_metrics
from fer_core.realtime.stabilize import StabilizerConfig

GRID = {
    "delta": [0.0, 0.05, 0.1, 0.2],
    "window": [4, 8, 12],
    "min_count": [2, 4, 6],
    "unknown_threshold": [0.3, 0.4, 0.5],
}


def _evaluate_alpha(config: dict[str, Any], data: dict[str, Any]) -> None:
    """Tune trial: one EMA alpha x the whole grid of the other knobs, replayed over every log."""
    rows = []
    for delta, window, min_count, thr in itertools.product(*(data["grid"][k] for k in GRID)):
        if min_count > window:
            continue
        cfg = StabilizerConfig(alpha=config["alpha"], delta=delta, window=window, min_count=min_count,
                               unknown_threshold=thr)  # fmt: skip
        per_log = [replay_metrics(p, t, y, cfg, data["thresholds"]) for p, t, y in data["logs"]]
        rows.append({**cfg.model_dump(), **{k: float(np.mean([m[k] for m in per_log])) for k in per_log[0]}})
    feasible = [r for r in rows if r["accuracy"] >= data["min_accuracy"]]
    best = min(feasible, key=lambda r: r["jitter_per_min"]) if feasible else max(rows, key=lambda r: r["accuracy"])
    tune.report({"jitter_per_min": best["jitter_per_min"], "feasible": bool(feasible), "rows": rows})


def choose(rows: list[dict[str, Any]], min_accuracy: float) -> tuple[dict[str, Any], bool]:
    """Least jitter among configs meeting the accuracy floor; if none does, the most accurate (flagged)."""
    feasible = [r for r in rows if r["accuracy"] >= min_accuracy]
    if feasible:
        return min(feasible, key=lambda r: (r["jitter_per_min"], -r["accuracy"])), True
    return max(rows, key=lambda r: (r["accuracy"], -r["jitter_per_min"])), False


@task(name="tune_stabilizer")
def tune_stabilizer(bundle: str, logs: list[str], min_accuracy: float, alphas: list[float]) -> dict[str, Any]:
    """Sweep, pick the least-jitter config above the accuracy floor, and rewrite the bundle with it as defaults."""
    model = load_bundle(bundle)
    replays = [load_replay_log(Path(log) / "frames.csv" if Path(log).is_dir() else log, model.classes) for log in logs]
    unlabelled = [log for log, (_, _, y) in zip(logs, replays, strict=True) if not (y >= 0).any()]
    if unlabelled:  # refused here, once: inside the sweep every trial would fail (and be retried) on it
        raise DataIntegrityError(
            "no frame of these logs carries an operator's true label, so no stabiliser can be scored; record with "
            "the runner's label keys 1-7 (or a --keys-file) and give those logs",
            [(log, "no labelled frame") for log in unlabelled],
        )
    thresholds = list(model.calibration.thresholds) if model.calibration.thresholds else None
    data = {"grid": GRID, "logs": replays, "thresholds": thresholds, "min_accuracy": min_accuracy}
    results = run_sweep(tune.with_parameters(_evaluate_alpha, data=data), {"alpha": tune.grid_search(alphas)},
                        name="tune_stabilizer", metric="jitter_per_min", mode="min")  # fmt: skip
    rows = [row for r in results for row in r["metrics"]["rows"]]
    best, feasible = choose(rows, min_accuracy)
    stab = {k: best[k] for k in StabilizerConfig.model_fields}
    _rewrite_with_stabilizer(Path(bundle), stab)
    create_table_artifact(
        key="stabilizer-sweep",
        table=sorted(rows, key=lambda r: r["jitter_per_min"])[:20],
        description=f"Replay sweep over {len(logs)} log(s), accuracy floor {min_accuracy}; "
        f"chosen: {stab} ({'meets' if feasible else 'NO config meets'} the floor)",
    )
    return {"stabilizer": stab, "accuracy": best["accuracy"], "jitter_per_min": best["jitter_per_min"],
            "unknown_rate": best["unknown_rate"], "feasible": feasible, "n_configs": len(rows)}  # fmt: skip


def _rewrite_with_stabilizer(bundle: Path, stabilizer: dict[str, Any]) -> None:
    """Write the bundle anew (manifest included) with ``stabilizer.json``; the old one stays until the swap."""
    model = load_bundle(bundle)
    with tempfile.TemporaryDirectory() as tmp:
        onnx = Path(shutil.copy(bundle / "model.onnx", tmp))
        calib = json.loads((bundle / "calibration.json").read_text())
        card = (bundle / "model_card.md").read_text()
        write_bundle(bundle, onnx, calib, model.spec, card, stabilizer=stabilizer, overwrite=True)
