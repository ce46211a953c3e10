"""Student bundle: write, verify, load; refusals of tampered, incomplete or inconsistent bundles."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from fer_core.calibrate.calibration_file import read_calibration_json, write_calibration_json
from fer_core.errors import BundleError
from fer_core.export import load_bundle, read_calibration, verify_bundle, write_bundle
from fer_core.export.onnx import export_onnx
from fer_core.preprocess import PreprocessSpec, preprocess_face
from fer_core.taxonomy import FER_CLASSES
from tests.core.export.helpers import SPEC, calibration_dict, make_bundle, tiny_net


@pytest.fixture
def bundle(tmp_path):
    return make_bundle(tmp_path)


def test_written_bundle_verifies_and_lists_every_file(bundle):
    manifest = verify_bundle(bundle)
    names = {"model.onnx", "calibration.json", "preprocess.json", "model_card.md", "stabilizer.json"}
    assert set(manifest.files) == names
    assert {p.name for p in bundle.iterdir()} == names | {"manifest.json"}
    assert manifest.files["model.onnx"].size == (bundle / "model.onnx").stat().st_size
    spec = json.loads((bundle / "preprocess.json").read_text())
    assert PreprocessSpec.model_validate(spec) == SPEC and set(spec) == set(PreprocessSpec.model_fields)
    assert not list(bundle.parent.glob(".bundle.*"))  # the temp folder was renamed, not left behind


def test_predict_proba_applies_global_temperature(bundle, tmp_path):
    model = load_bundle(bundle, threads=1)
    crop = np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    x = model.preprocess(crop)[None]
    np.testing.assert_array_equal(x[0], preprocess_face(crop, SPEC))
    z = model.predict_logits(np.repeat(x, 2, 0)).astype(np.float64)
    p = model.predict_proba(np.repeat(x, 2, 0))
    e = np.exp(z / 1.5 - (z / 1.5).max(1, keepdims=True))
    np.testing.assert_allclose(p, e / e.sum(1, keepdims=True), rtol=1e-5)
    assert model.stabilizer["window"] == 3 and model.classes == FER_CLASSES


def test_per_class_temperature_when_configured(tmp_path):
    temps = [1.0, 2.0, 0.5, 1.0, 3.0, 1.0, 1.0]
    b = make_bundle(tmp_path, per_class=temps)
    logits = np.arange(7, dtype=np.float32)[None]
    glob, per = load_bundle(b).calibrate(logits), load_bundle(b, per_class_temperature=True).calibrate(logits)
    z = (logits[0] - np.log(np.exp(logits[0]).sum())) / np.asarray(temps)  # log-probabilities / T_c
    np.testing.assert_allclose(per[0], np.exp(z) / np.exp(z).sum(), rtol=1e-5)
    assert not np.allclose(glob, per)
    with pytest.raises(BundleError, match="per_class_temperature null"):
        load_bundle(make_bundle(tmp_path, name="b2"), per_class_temperature=True)


def test_changed_byte_refused(bundle):
    data = bytearray((bundle / "model_card.md").read_bytes())
    data[5] ^= 1
    (bundle / "model_card.md").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="model_card.md: SHA-256 differs"):
        verify_bundle(bundle)
    with pytest.raises(BundleError):
        load_bundle(bundle)


def test_missing_and_extra_files_refused(bundle):
    (bundle / "notes.txt").write_text("hi")
    with pytest.raises(BundleError, match="notes.txt: file not listed"):
        verify_bundle(bundle)
    (bundle / "notes.txt").unlink()
    (bundle / "calibration.json").unlink()
    with pytest.raises(BundleError, match="calibration.json: listed in the manifest but missing"):
        verify_bundle(bundle)


def _rewrite(bundle, name: str, data: bytes) -> None:
    """Replace a file AND fix its manifest entry, so only the semantic check can catch it."""
    from fer_core.io import sha256_file

    (bundle / name).write_bytes(data)
    m = json.loads((bundle / "manifest.json").read_text())
    m["files"][name] = {"sha256": sha256_file(bundle / name), "size": len(data)}
    (bundle / "manifest.json").write_text(json.dumps(m))


def test_preprocess_missing_field_refused(bundle):
    spec = json.loads((bundle / "preprocess.json").read_text())
    del spec["crop_margin"]
    _rewrite(bundle, "preprocess.json", json.dumps(spec).encode())
    with pytest.raises(BundleError, match=r"missing field\(s\) \['crop_margin'\]"):
        verify_bundle(bundle)


def test_onnx_input_shape_disagreeing_with_spec_refused(bundle, tmp_path):
    other = export_onnx(tiny_net(), PreprocessSpec(size=(48, 48)), tmp_path / "48.onnx")
    _rewrite(bundle, "model.onnx", other.read_bytes())
    with pytest.raises(BundleError, match="disagrees with preprocess.json"):
        verify_bundle(bundle)
    rgb = PreprocessSpec(size=(32, 32), channels=3, color="rgb", mean=(0.5,) * 3, std=(0.5,) * 3)
    rgb_onnx = export_onnx(tiny_net(channels=3), rgb, tmp_path / "rgb.onnx")
    with pytest.raises(BundleError, match="disagrees"):  # a failed gate writes nothing
        write_bundle(tmp_path / "new", rgb_onnx, calibration_dict(), SPEC, "card")
    assert not (tmp_path / "new").exists() and not list(tmp_path.glob(".new.*"))


def test_calibration_from_the_calibrate_stage_is_accepted(tmp_path):
    path = tmp_path / "calibration.json"
    write_calibration_json(path, FER_CLASSES, 1.7, {"nll": 1.2}, {"nll": 1.0}, thresholds=[0.3] * 7)
    ours, theirs = read_calibration(path), read_calibration_json(path)
    assert ours.temperature == theirs.temperature == 1.7 and ours.thresholds == theirs.thresholds
    onnx_path = export_onnx(tiny_net(), SPEC, tmp_path / "m.onnx")
    b = write_bundle(tmp_path / "b", onnx_path, path, SPEC, "card")
    assert load_bundle(b).calibration.thresholds == (0.3,) * 7
    with pytest.raises(BundleError, match="already exists"):
        write_bundle(tmp_path / "b", onnx_path, path, SPEC, "card")
    write_bundle(tmp_path / "b", onnx_path, calibration_dict(temperature=2.0), SPEC, "card", overwrite=True)
    assert load_bundle(b).calibration.temperature == 2.0


def test_bad_calibration_refused(tmp_path):
    onnx_path = export_onnx(tiny_net(), SPEC, tmp_path / "m.onnx")
    with pytest.raises(BundleError, match="temperature"):
        write_bundle(tmp_path / "b", onnx_path, calibration_dict(temperature=-1.0), SPEC, "card")
    with pytest.raises(BundleError, match="thresholds"):
        write_bundle(tmp_path / "b", onnx_path, calibration_dict(thresholds=[0.5] * 6), SPEC, "card")


def test_runtime_path_imports_no_torch(bundle):
    code = (
        "import sys, numpy as np\n"
        "from fer_core.export import load_bundle\n"
        "import fer_core.realtime\n"
        f"m = load_bundle({str(bundle)!r})\n"
        "p = m.predict_proba(m.preprocess(np.zeros((40, 40, 3), np.uint8))[None])\n"
        "print(round(float(p.sum()), 4), 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1.0", "False"]


def test_model_card_sections(bundle):
    card = (bundle / "model_card.md").read_text()
    for section in ("## Intended use", "## Limits", "## Data", "## Metrics", "## Calibration", "## Preprocessing"):
        assert section in card
    assert "global T = 1.5000" in card and "| accuracy | 0.5000 |" in card
