"""ONNX export: parity with torch, dynamic batch, graph names, INT8 quantisation and the keep rule."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch

from fer_core.errors import BundleError, ConfigError
from fer_core.export import keep_int8_if, make_session, quantize_int8
from fer_core.export.onnx import check_parity, export_onnx
from fer_core.preprocess import PreprocessSpec
from tests.core.export.helpers import SPEC, tiny_net


def test_timm_export_parity_and_dynamic_batch(tmp_path):
    spec = PreprocessSpec(size=(32, 32), input_name="face")
    model = timm.create_model("test_resnet", num_classes=7, in_chans=1, pretrained=False)
    model.train()  # export must switch to eval and restore the mode
    path = export_onnx(model, spec, tmp_path / "m.onnx")
    assert model.training
    x = np.random.default_rng(0).normal(size=(5, 1, 32, 32)).astype(np.float32)
    report = check_parity(model, path, x, atol=1e-4)
    assert report.ok and report.argmax_agreement == 1.0 and report.max_abs_diff <= 1e-4 and report.n == 5
    sess = make_session(path, threads=1)
    (inp,) = sess.get_inputs()
    assert inp.name == "face" and inp.shape[1:] == [1, 32, 32] and isinstance(inp.shape[0], str)
    assert [o.name for o in sess.get_outputs()] == ["logits"]
    assert sess.run(None, {"face": x[:3]})[0].shape == (3, 7)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write left no temp file


def test_parity_failure_raises(tmp_path):
    path = export_onnx(tiny_net(seed=0), SPEC, tmp_path / "a.onnx")
    other = tiny_net(seed=1)
    with pytest.raises(BundleError, match="parity failed"):
        check_parity(other, path, torch.randn(4, 1, 32, 32))


def test_export_rejects_non_logits_model(tmp_path):
    with pytest.raises(ConfigError, match="logits"):
        export_onnx(torch.nn.Flatten(0), SPEC, tmp_path / "bad.onnx")
    assert not (tmp_path / "bad.onnx").exists()


def test_int8_quantization_runs_and_stays_close(tmp_path):
    model = tiny_net()
    fp32 = export_onnx(model, SPEC, tmp_path / "fp32.onnx")
    x = np.random.default_rng(1).normal(size=(32, 1, 32, 32)).astype(np.float32)
    int8 = quantize_int8(fp32, x, tmp_path / "int8.onnx")
    sess = make_session(int8, threads=1)
    ops = {n.op_type for n in __import__("onnx").load(str(int8)).graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    got = sess.run(None, {"input": x})[0]
    ref = make_session(fp32, 1).run(None, {"input": x})[0]
    assert got.shape == ref.shape and np.max(np.abs(got - ref)) < 0.25 * (np.abs(ref).max() + 1e-3)
    with pytest.raises(ConfigError):
        quantize_int8(fp32, x[0], tmp_path / "x.onnx")


def test_keep_int8_rule():
    assert keep_int8_if(0.60, 0.595)
    assert keep_int8_if(0.60, 0.59)
    assert not keep_int8_if(0.60, 0.58)
    assert keep_int8_if(0.60, 0.62)
    with pytest.raises(ConfigError):
        keep_int8_if(0.6, 0.6, max_drop=-0.1)
