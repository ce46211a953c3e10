"""Reading the champion's per-seed scores back from MLflow (for the nightly comparison)."""

from __future__ import annotations

import mlflow
import numpy as np
from mlflow.tracking import MlflowClient

from tasks._mlflow import EXPERIMENT, configure_tracking


def champion_seed_scores(model_name: str) -> np.ndarray | None:
    """Calibrated test macro-F1 of every seed run sharing the champion's configuration hash, or None."""
    configure_tracking()
    client = MlflowClient()
    try:
        version = client.get_model_version_by_alias(model_name, "champion")
    except mlflow.exceptions.MlflowException:
        return None
    source = client.get_run(version.tags["ferflow.source_run"])
    loss = source.data.tags.get("ferflow.loss", "")
    runs = mlflow.search_runs(
        experiment_names=[EXPERIMENT],
        filter_string=f"tags.`ferflow.stage` = 'distill' and tags.`ferflow.loss` = '{loss}'",
        output_format="pandas",
    )
    # The seed is part of each run's config hash, so the recipe (loss tag) identifies the champion's seed family.
    col = "metrics.after/macro_f1"
    return None if runs.empty or col not in runs else runs[col].dropna().to_numpy()
