"""The ONNX model carries its output class order; every bundle load checks calibration.json against it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fer_core.errors import BundleError, ConfigError
from fer_core.export import write_bundle
from fer_core.export.bundle import load_bundle
from fer_core.export.onnx import export_onnx, metadata
from fer_core.export.session import CLASSES_KEY, make_session, model_classes
from fer_core.taxonomy import FER_CLASSES
from tests.cli._builders import swap_classes

from .helpers import SPEC, calibration_dict, make_bundle, tiny_net


def test_export_stamps_the_class_order(tmp_path):
    path = export_onnx(tiny_net(), SPEC, tmp_path / "m.onnx")
    assert json.loads(metadata(path)[CLASSES_KEY]) == list(FER_CLASSES)
    assert model_classes(make_session(path)) == FER_CLASSES


def test_export_refuses_a_class_list_of_another_length(tmp_path):
    with pytest.raises(ConfigError, match="returns 7 logits but classes names 2"):
        export_onnx(tiny_net(), SPEC, tmp_path / "m.onnx", classes=("a", "b"))
    assert not (tmp_path / "m.onnx").exists()


def test_write_bundle_refuses_a_calibration_in_another_order(tmp_path):
    onnx_path = export_onnx(tiny_net(), SPEC, tmp_path / "m.onnx")
    cal = calibration_dict()
    cal["classes"] = [*reversed(FER_CLASSES)]
    with pytest.raises(BundleError, match=r"outputs the classes in the order \['angry'.*given as \['surprise'"):
        write_bundle(tmp_path / "b", onnx_path, cal, SPEC, "# card\n")
    assert not (tmp_path / "b").exists()


def test_a_rehashed_bundle_with_swapped_classes_is_refused_on_load(tmp_path):
    bundle = make_bundle(tmp_path)
    load_bundle(bundle)  # intact: loads
    swap_classes(bundle)
    with pytest.raises(BundleError, match="probabilities would be read under the wrong names"):
        load_bundle(bundle)


def test_a_model_without_the_stamp_still_loads(tmp_path):
    """Bundles exported before the stamp existed (the shipped model among them) cannot be checked, but still load."""
    import onnx

    path = export_onnx(tiny_net(), SPEC, tmp_path / "m.onnx")
    model = onnx.load(str(path))
    del model.metadata_props[:]
    onnx.save(model, str(path))
    assert model_classes(make_session(path)) is None
    b = load_bundle(write_bundle(tmp_path / "b", path, calibration_dict(), SPEC, "# card\n"))
    assert b.predict_proba(np.zeros((1, 1, 32, 32), np.float32)).shape == (1, 7)


def test_quantisation_keeps_the_stamp(tmp_path):
    from fer_core.export.quantize import quantize_int8

    path = export_onnx(tiny_net(), SPEC, tmp_path / "m.onnx")
    x = np.random.default_rng(0).normal(size=(8, 1, 32, 32)).astype(np.float32)
    q = quantize_int8(path, x, tmp_path / "q.onnx")
    assert model_classes(make_session(q)) == FER_CLASSES
