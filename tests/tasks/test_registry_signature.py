"""One input signature per registered model, and the registered ONNX model lives in the ferflow experiment."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from fer_adapters.registry import Candidate, register_version
from fer_adapters.runs import ferflow_run
from fer_adapters.tracking import EXPERIMENT, configure_tracking
from fer_core.errors import ConfigError
from fer_core.export.gates import GateVerdict
from fer_core.export.onnx import export_onnx
from fer_core.preprocess import PreprocessSpec
from tests.core.export.helpers import tiny_net


def _student(tmp_path, side: int):
    spec = PreprocessSpec(size=(side, side))
    onnx_path = export_onnx(tiny_net(), spec, tmp_path / f"m{side}.onnx")
    with ferflow_run("distill", run_name=f"student-{side}") as (run_id, _):
        pass
    cand = Candidate(run_id=run_id, name=f"student-{side}", val={}, heldout={}, temperature=1.0,
                     verdict=GateVerdict(checks=()))  # fmt: skip
    return cand, onnx_path, np.zeros((2, 1, side, side), np.float32)


def test_a_second_signature_is_refused_and_the_model_logs_into_the_run_experiment(tmp_path):
    configure_tracking()
    client = MlflowClient()
    name = f"fer-student-{uuid.uuid4().hex[:8]}"
    cand, onnx_path, x = _student(tmp_path, 32)
    register_version(client, name, cand, onnx_path, x, "card", {})
    exp = client.get_experiment_by_name(EXPERIMENT)
    default = client.get_experiment_by_name("Default")
    mine = lambda e: client.search_logged_models(experiment_ids=[e.experiment_id],  # noqa: E731
                                                 filter_string=f"source_run_id = '{cand.run_id}'")  # fmt: skip
    assert [m.name for m in mine(exp)] == ["student-32-onnx"]
    assert default is None or not mine(default)
    assert client.get_registered_model(name).tags["ferflow.input"] == "input[-1, 1, 32, 32] float32"

    other, onnx48, x48 = _student(tmp_path, 48)
    with pytest.raises(ConfigError, match=r"holds versions with input input\[-1, 1, 32, 32\].*input\[-1, 1, 48, 48\]"):
        register_version(client, name, other, onnx48, x48, "card", {})
    assert len(client.search_model_versions(f"name = '{name}'")) == 1

    again, onnx_again, x_again = _student(tmp_path, 32)  # the same signature: a second version
    register_version(client, name, again, onnx_again, x_again, "card", {})
    assert len(client.search_model_versions(f"name = '{name}'")) == 2
