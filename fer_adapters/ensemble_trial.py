"""The ensemble sweep's Tune trial, light enough for Ray workers to import fast (no prefect, mlflow or torch)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from ray import tune

from fer_core.ensemble.grid import evaluate_grid

METRICS = ("accuracy", "macro_f1", "minority_f1", "ece", "nll", "brier")


def evaluate_block(config: dict[str, Any], data: dict[str, Any]) -> None:
    """Tune trial: every seed's teacher logits against this trial's block of weight vectors and all temperatures."""
    weights = np.asarray(config["weights"], dtype=np.float64)
    frames = []
    for seed, (logits, y) in data["seeds"].items():
        df = evaluate_grid(logits, y, weights, data["temperatures"])
        df["seed"] = seed
        frames.append(df)
    table = pd.concat(frames, ignore_index=True)
    best = aggregate(table).iloc[0]
    tune.report({"macro_f1": float(best["macro_f1"]), "ece": float(best["ece"]), "rows": table.to_dict("records")})


def aggregate(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds per (weights, T), best first (macro-F1, then ECE as tie-break)."""
    wcols = [c for c in table.columns if c.startswith("w_")]
    g = table.groupby([*wcols, "temperature"], as_index=False)
    agg = g[list(METRICS)].mean()
    std = g["macro_f1"].std(ddof=1).rename(columns={"macro_f1": "macro_f1_std"})
    agg = agg.merge(std, on=[*wcols, "temperature"])
    agg["n_seeds"] = g.size()["size"].to_numpy()
    return agg.sort_values(["macro_f1", "ece"], ascending=[False, True], kind="stable").reset_index(drop=True)
