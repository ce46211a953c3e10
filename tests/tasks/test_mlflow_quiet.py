"""MLflow glue stays quiet: the dataset index is logged with a typed source (no 'multiple ways' warning)."""

import warnings

import pandas as pd
from mlflow.tracking import MlflowClient


def test_index_input_has_a_typed_local_source_and_warns_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    from fer_adapters.runs import log_index_input
    from fer_adapters.tracking import configure_tracking

    configure_tracking()
    client = MlflowClient()
    run = client.create_run(client.get_experiment_by_name("ferflow").experiment_id)
    index = pd.DataFrame({"sample_id": ["a", "b"], "label": ["happy", "sad"], "split": ["train", "val"]})
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        log_index_input(run.info.run_id, index, str(tmp_path / "index.parquet"), "f" * 64)
    assert not [w for w in seen if "interpreted in multiple ways" in str(w.message)], [str(w.message) for w in seen]
    (ds,) = client.get_run(run.info.run_id).inputs.dataset_inputs
    assert (
        ds.dataset.source_type == "local"
        and ds.dataset.source == '{"uri": "' + (tmp_path / "index.parquet").as_uri() + '"}'
    )
    assert ds.dataset.digest == "f" * 16
