"""A run's metrics page reads at a glance: headline curves as stepped metrics, per-class values and bookkeeping in one
table artifact (real MLflow on SQLite)."""

import pytest
from mlflow.tracking import MlflowClient


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    from fer_adapters.tracking import configure_tracking

    configure_tracking()
    return MlflowClient()


def test_per_class_and_bookkeeping_go_to_the_table_headlines_stay_curves(tracking):
    from fer_adapters.runs import MlflowSink, ferflow_run

    with ferflow_run("distill", run_name="student") as (run_id, sink):
        for epoch in range(3):
            row = {"val/macro_f1": 0.1 * epoch, "val/f1/angry": 0.2, "train_loss/happy": 1.5, "epoch": float(epoch),
                   "micro_batch": 64.0, "final/macro_f1": 0.2}  # fmt: skip
            sink.log_metrics(row, step=epoch)
    cal = MlflowSink(run_id, table="calibration/metrics.csv", charts=frozenset({"after/macro_f1"}))
    cal.log_metrics({"after/macro_f1": 0.3, "after/brier": 0.7, "after_per_class/nll": 1.1})
    cal.flush()
    run = tracking.get_run(run_id)
    assert set(run.data.metrics) == {"val/macro_f1", "wall_time_s", "after/macro_f1"}
    history = tracking.get_metric_history(run_id, "val/macro_f1")
    assert [(m.step, round(m.value, 6)) for m in history] == [(0, 0.0), (1, 0.1), (2, 0.2)]
    table = tracking.download_artifacts(run_id, "metrics_per_class.csv")
    lines = open(table).read().splitlines()
    assert lines[0] == "step,metric,class,value"
    assert "2,val/f1,angry,0.2" in lines and "1,train_loss,happy,1.5" in lines and "2,micro_batch,,64" in lines
    assert not any(",final/" in x for x in lines)  # the last step of val/* is the final value
    cal_lines = open(tracking.download_artifacts(run_id, "calibration/metrics.csv")).read().splitlines()
    assert "0,after/brier,,0.7" in cal_lines and "0,after_per_class/nll,,1.1" in cal_lines
