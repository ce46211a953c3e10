"""distill_sweep on real Ray Tune: every (variant, seed) trial runs; the aggregate compares KD to the CE baseline."""

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

CONFIG = str(Path(__file__).resolve().parents[2] / "configs" / "tiny.yaml")


@pytest.mark.slow
def test_sweep_aggregates_across_seeds(prefect_harness, ray_local):
    from flows.distill import distill_sweep_flow

    out = distill_sweep_flow(config_path=CONFIG)["sweep"]
    trials = out["trials"]
    pairs = sorted((t["kind"], t["seed"]) for t in trials)
    assert pairs == [("ce", 1), ("ce", 2), ("pairwise-kd", 1), ("pairwise-kd", 2)]
    table = {row["kind"]: row for row in out["table"]}
    assert table["ce"]["n_seeds"] == 2 and table["pairwise-kd"]["n_seeds"] == 2
    assert "verdict" in table["pairwise-kd"] and "seeds" in table["pairwise-kd"]["verdict"]
    runs = MlflowClient().search_runs(
        [MlflowClient().get_experiment_by_name("ferflow").experiment_id],
        filter_string=f"tags.`ferflow.sweep` = '{out['mlflow_run_id']}'",
    )
    assert len(runs) == 4  # one MLflow run per trial, grouped by the sweep's parent run
