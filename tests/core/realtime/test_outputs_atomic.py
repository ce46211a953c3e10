"""``evaluate`` and ``score`` write their result files whole or not at all: a failure leaves no file (and no temp
file) behind, and an earlier result untouched."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from fer_core.data.synth import render_face
from fer_core.errors import DataIntegrityError
from fer_core.realtime import DetectorConfig, RunnerConfig, StabilizerConfig, evaluate_bundle, run, score
from fer_core.taxonomy import FER_CLASSES
from tests.core.export.helpers import make_bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("b"), thresholds=[0.0] * 7)


def test_evaluate_writes_its_json_only_when_it_succeeds(bundle, tmp_path):
    data = tmp_path / "data"
    rng = np.random.default_rng(0)
    for c in FER_CLASSES:
        (data / c).mkdir(parents=True)
        cv2.imwrite(str(data / c / "0.png"), render_face(c, rng, size=32))
    res_dir = tmp_path / "results"
    out = res_dir / "eval.json"
    got = evaluate_bundle(bundle, data, out=out)
    assert json.loads(out.read_text()) == json.loads(json.dumps(got)) and got["n"] == 7
    before = out.read_bytes()
    (data / "sad" / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(DataIntegrityError, match="1.png"):
        evaluate_bundle(bundle, data, out=out)
    assert out.read_bytes() == before and [p.name for p in res_dir.iterdir()] == ["eval.json"]
    with pytest.raises(DataIntegrityError):
        evaluate_bundle(bundle, data, out=tmp_path / "fresh" / "eval.json")
    assert not (tmp_path / "fresh").exists()


def test_score_writes_its_json_only_when_it_succeeds(bundle, tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text("0 4\n")
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(30):
        cv2.imwrite(str(frames / f"{i:03d}.png"), np.full((40, 40, 3), 60 + 4 * i, np.uint8))
    cfg = RunnerConfig(detector=DetectorConfig(kind="full"), display="none", keys_file=keys,
                       stabilizer=StabilizerConfig(window=3, min_count=2))  # fmt: skip
    log = tmp_path / "log"
    run(bundle, frames, cfg, log)
    out = tmp_path / "score.json"
    metrics, table = score(log, hold_ms=300.0, out=out)
    saved = json.loads(out.read_text())
    assert saved["table"] == table and saved["metrics"]["evaluated_frames"] == metrics["evaluated_frames"] > 0
    unlabelled = tmp_path / "log2"
    run(bundle, frames, cfg.model_copy(update={"keys_file": None}), unlabelled)
    with pytest.raises(DataIntegrityError, match="no operator label events"):
        score(unlabelled, out=tmp_path / "score2.json")
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["keys.txt", "score.json"]


def test_a_file_list_names_exact_bytes_and_refuses_every_mismatch(tmp_path):
    import hashlib

    from fer_core.realtime.evaluate import read_file_list

    root = tmp_path / "data"
    (root / "happy").mkdir(parents=True)
    (root / "happy" / "a.png").write_bytes(b"aaa")
    (root / "happy" / "b.png").write_bytes(b"bbb")
    good = hashlib.sha256(b"aaa").hexdigest()
    classes = ("angry", "happy")
    lst = tmp_path / "list.csv"
    lst.write_text(f"path,label,sha256\nhappy/a.png,happy,{good}\n")
    assert read_file_list(lst, root, classes) == [(root / "happy" / "a.png", 1)]
    lst.write_text(f"path,label,sha256\nhappy/a.png,happy,{good}\nhappy/b.png,happy,{good}\n"
                   f"happy/c.png,happy,{good}\nhappy/a.png,joy,{good}\n")  # fmt: skip
    with pytest.raises(DataIntegrityError) as e:
        read_file_list(lst, root, classes)
    text = str(e.value) + str(getattr(e.value, "problems", ""))
    for row, why in ((3, "differs from the listed SHA-256"), (4, "does not exist"), (5, "label 'joy'")):
        assert f"row {row}" in text and why in text
