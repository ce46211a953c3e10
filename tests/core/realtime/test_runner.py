"""The realtime runner end to end on a synthetic video (headless), no-face frames, key scripts, bad sources."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

from fer_core.data.synth import render_video
from fer_core.errors import BundleError, ConfigError, DataIntegrityError
from fer_core.realtime import DetectorConfig, RunnerConfig, StabilizerConfig, open_source, run, score
from fer_core.realtime.keys import read_key_script
from tests.core.export.helpers import make_bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("b"), thresholds=[0.0] * 7)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("v") / "clip.mp4"
    return render_video(path, [("happy", 1.0), ("sad", 1.0)], fps=10, size=(160, 120), seed=0)


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_headless_run_on_synthetic_video(bundle, video, tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text("# frame key\n0 4\n2 a\n2 d\n3 u\n10 6\n")
    cfg = RunnerConfig(keys_file=keys, stabilizer=StabilizerConfig(window=3, min_count=2))
    out = tmp_path / "run"
    summary = run(bundle, video, cfg, out)
    assert summary.frames == 20 and summary.no_face_frames == 0 and not summary.quit_by_key
    assert summary.video_path == out / "annotated.mp4"
    cap = cv2.VideoCapture(str(summary.video_path))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 20
    assert {p.name for p in out.iterdir()} == {"frames.csv", "events.jsonl", "annotated.mp4"}
    rows = _rows(summary.csv_path)
    assert len(rows) == 20 and all(r["track_id"] == "0" for r in rows)  # one face, one track throughout
    p = np.array([[float(r[f"p_{c}"]) for c in ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")]
                  for r in rows])  # fmt: skip
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-4)
    assert all(float(r[f"{s}_ms"]) >= 0 for r in rows for s in ("decode", "detect", "preprocess", "infer"))
    assert rows[0]["true_label"] == "happy" and rows[10]["true_label"] == "sad"
    events = [json.loads(x) for x in summary.events_path.read_text().splitlines()]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "session_start" and kinds[-1] == "session_end"
    tuning = {e["param"]: e["value"] for e in events if e["type"] == "tuning"}
    assert tuning == {"alpha": pytest.approx(0.35), "delta": pytest.approx(0.12), "unknown_threshold": 0.45}
    assert [e["label"] for e in events if e["type"] == "true_label"] == ["happy", "sad"]
    m, _ = score(out, hold_ms=300.0)
    assert m["scored_segments"] == 2 and 0.0 <= m["accuracy"] <= 1.0


def test_frames_without_face_are_unknown(bundle, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(4):
        cv2.imwrite(str(folder / f"{i:03d}.png"), np.full((120, 160, 3), 90, np.uint8))
    summary = run(bundle, folder, RunnerConfig(display="none"), tmp_path / "out")
    rows = _rows(summary.csv_path)
    assert summary.no_face_frames == 4 and summary.video_path is None
    assert [(r["track_id"], r["smoothed_label"], r["p_happy"]) for r in rows] == [("-1", "unknown", "")] * 4


def test_quit_key_and_max_frames(bundle, video, tmp_path):
    keys = tmp_path / "k.txt"
    keys.write_text("5 q\n")
    s = run(bundle, video, RunnerConfig(keys_file=keys, display="none", detector=DetectorConfig(kind="full")),
            tmp_path / "o1")  # fmt: skip
    assert s.quit_by_key and s.frames == 6
    s = run(
        bundle, video, RunnerConfig(display="none", max_frames=3, detector=DetectorConfig(every_n=2)), tmp_path / "o2"
    )
    assert s.frames == 3 and s.rows == 3


def test_tampered_bundle_refused_before_anything_runs(bundle, video, tmp_path):
    import shutil

    b = tmp_path / "b"
    shutil.copytree(bundle, b)
    with open(b / "model.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(BundleError, match="model.onnx"):
        run(b, video, RunnerConfig(display="none"), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_bad_sources_give_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="camera index 97 cannot be opened"):
        open_source(97)
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all" * 10)
    with pytest.raises(DataIntegrityError, match="cannot be decoded"):
        open_source(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        open_source(tmp_path / "nope.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds no image"):
        open_source(tmp_path / "empty")


def test_key_script_errors(tmp_path):
    p = tmp_path / "k.txt"
    p.write_text("1 a\nx y\n")
    with pytest.raises(ConfigError, match=r"k.txt:2"):
        read_key_script(p)
