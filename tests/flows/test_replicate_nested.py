"""The nightly replication and Nested Learning flows on the tiny profile (real Prefect, MLflow)."""

from mlflow.tracking import MlflowClient

from fer_adapters.run_store import fetch


def test_replicate_reports_seeds_against_the_champion(prefect_harness, ray_local):
    from flows.pipeline import pipeline_flow
    from flows.replicate import replicate_flow

    first = pipeline_flow(profile="tiny")  # a registered version exists (cache hits when test_pipeline ran first)
    client = MlflowClient()
    name = first.bundle.details.get("model_name", "fer-student")

    def registry() -> list[tuple[str, list[str]]]:
        return sorted((v.version, sorted(v.aliases)) for v in client.search_model_versions(f"name = '{name}'"))

    before = registry()
    out = replicate_flow(profile="tiny", seeds=[1000, 1001])
    assert registry() == before  # a replication registers nothing and moves no alias
    assert out.seeds == [1000, 1001] and len(out.macro_f1) == 2
    assert all(0.0 <= f <= 1.0 for f in out.macro_f1)
    assert "Nightly replication (2 seeds: 1000, 1001)" in out.report
    if out.stats:  # the champion's recipe has >= 2 seed runs: a paired comparison with its verdict line
        assert "seeds" in out.stats["verdict"]
    else:
        assert "nothing to compare against" in out.report


def test_replicate_refuses_fewer_than_two_seeds(prefect_harness):
    import pytest
    from prefect.exceptions import ParameterTypeError

    from flows.replicate import replicate_flow

    with pytest.raises(ParameterTypeError, match="seeds"):
        replicate_flow(profile="tiny", seeds=[1000])


def test_nested_learning_flow_logs_memory(prefect_harness, ray_local):
    from flows.distill import nested_learning_flow

    runs = nested_learning_flow(profile="tiny")
    assert len(runs) == 1 and fetch(runs[0].checkpoint, runs[0].checkpoint_sha256).is_file()
    assert runs[0].kind == "nested-dkd"
    run = MlflowClient().get_run(runs[0].mlflow_run_id)
    assert run.data.tags["ferflow.stage"] == "nested_learning"
    assert run.data.metrics["peak_memory_mb"] > 0 and run.data.metrics["meta_steps"] >= 1
