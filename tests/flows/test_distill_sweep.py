"""distill_sweep on real Ray Tune: every (variant, seed) trial runs; the aggregate compares KD to the CE baseline."""

import pytest
from mlflow.tracking import MlflowClient


@pytest.mark.slow
def test_sweep_aggregates_across_seeds(prefect_harness, ray_local):
    from flows.distill import distill_sweep_flow
    from flows.pipeline import pipeline_flow

    pipeline_flow(profile="tiny")  # the sweep's inputs (cache hits when test_pipeline ran first)
    out = distill_sweep_flow(profile="tiny")
    trials = out.trials
    pairs = sorted((t["kind"], t["seed"]) for t in trials)
    assert pairs == [("ce", 1), ("ce", 2), ("pairwise-kd", 1), ("pairwise-kd", 2)]
    table = {row["kind"]: row for row in out.table}
    assert table["ce"]["n_seeds"] == 2 and table["pairwise-kd"]["n_seeds"] == 2
    assert "verdict" in table["pairwise-kd"] and "seeds" in table["pairwise-kd"]["verdict"]
    runs = MlflowClient().search_runs(
        [MlflowClient().get_experiment_by_name("ferflow").experiment_id],
        filter_string=f"tags.`ferflow.sweep` = '{out.mlflow_run_id}'",
    )
    assert len(runs) == 4  # one MLflow run per trial, grouped by the sweep's parent run
    assert all(not r.data.tags["ferflow.worker_node"].startswith("driver") for r in runs)
