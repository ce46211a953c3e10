"""The pipelined runner: rows in source order, the stabiliser fed every frame in order, bounded frames in memory,
clean shutdown on errors, and nothing left behind by a failed run."""

from __future__ import annotations

import csv
import os
import threading
import weakref

import cv2
import numpy as np
import pytest

from fer_core.errors import DataIntegrityError
from fer_core.realtime import DetectorConfig, RunnerConfig, StabilizerConfig, run, stabilize_sequence
from fer_core.realtime.sources import FrameSource
from fer_core.taxonomy import FER_CLASSES
from tests.core.export.helpers import make_bundle

pytestmark = pytest.mark.timeout(120)
STAB = StabilizerConfig(alpha=0.5, window=3, min_count=2, unknown_threshold=0.0)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("b"), thresholds=[0.0] * 7)


class NumberedSource(FrameSource):
    """Frames ``0..n-1``, each showing its number over seeded noise; optionally failing at ``fail_at``; keeps a weak
    reference to every frame it yielded so a test can count how many are still alive."""

    def __init__(self, n: int, size: int = 64, fail_at: int | None = None):
        self.n, self.size, self.fail_at = n, size, fail_at
        self.fps, self.name = 30.0, "numbered"
        self.refs: list[weakref.ref] = []
        self.peak_alive = 0
        self.closed = False

    def __iter__(self):
        for i in range(self.n):
            if i == self.fail_at:
                raise DataIntegrityError(f"frame {i} is corrupt")
            img = np.random.default_rng(i).integers(0, 255, (self.size, self.size, 3), dtype=np.uint8)
            cv2.putText(img, str(i), (4, self.size // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
            self.refs.append(weakref.ref(img))
            self.peak_alive = max(self.peak_alive, sum(r() is not None for r in self.refs))
            yield i, i / self.fps, img

    def close(self) -> None:
        self.closed = True


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _cfg(**kw) -> RunnerConfig:
    return RunnerConfig(**{"detector": DetectorConfig(kind="full"), "display": "none", "stabilizer": STAB, **kw})


def _ferflow_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("ferflow-")]


def test_rows_come_out_in_order_and_the_stabiliser_sees_every_frame(bundle, tmp_path):
    cv_threads = cv2.getNumThreads()
    s = run(bundle, NumberedSource(120), _cfg(depth=3), tmp_path / "pipe")
    assert cv2.getNumThreads() == cv_threads  # the run's OpenCV thread setting is undone
    assert s.pipeline and s.frames == 120 and s.rows == 120
    rows = _rows(s.csv_path)
    assert [int(r["frame"]) for r in rows] == list(range(120))
    probs = np.array([[float(r[f"p_{c}"]) for c in FER_CLASSES] for r in rows])
    want = stabilize_sequence(probs, STAB, [0.0] * 7)  # the vectorised reference over the frames in order
    got = [FER_CLASSES.index(r["smoothed_label"]) if r["smoothed_label"] != "unknown" else -1 for r in rows]
    assert got == want.tolist() and len(set(got)) > 1
    serial = run(bundle, NumberedSource(120), _cfg(pipeline=False), tmp_path / "serial")
    assert not serial.pipeline
    drop = {f"{st}_ms" for st in ("decode", "detect", "preprocess", "infer", "stabilise", "frame")}
    assert [{k: v for k, v in r.items() if k not in drop} for r in _rows(serial.csv_path)] == [
        {k: v for k, v in r.items() if k not in drop} for r in rows
    ]  # same rows, same order, with or without threads
    assert set(s.frame_latency_ms) == {"p50", "p99", "max"} and s.frame_latency_ms["p99"] > 0
    assert all(float(r["frame_ms"]) >= float(r["decode_ms"]) for r in rows)


def test_frames_in_memory_stay_bounded_by_the_depth(bundle, tmp_path):
    src = NumberedSource(150, size=96)
    s = run(bundle, src, _cfg(depth=2), tmp_path / "o")
    assert s.frames == 150
    # in flight (2) + the one the source is making + at most one finished frame not yet released
    assert src.peak_alive <= 2 + 2


@pytest.mark.parametrize("pipeline", [True, False])
def test_an_error_mid_run_stops_every_thread_and_leaves_nothing(bundle, tmp_path, pipeline):
    src = NumberedSource(50, fail_at=7)
    out = tmp_path / "new" / "run"
    with pytest.raises(DataIntegrityError, match="frame 7 is corrupt"):
        run(bundle, src, _cfg(pipeline=pipeline, display="video"), out)
    assert src.closed and _ferflow_threads() == []
    assert not out.exists() and (tmp_path / "new").is_dir()


def test_a_failed_run_keeps_the_previous_runs_files_and_adds_nothing(bundle, tmp_path):
    out = tmp_path / "run"
    run(bundle, NumberedSource(5), _cfg(), out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(DataIntegrityError):
        run(bundle, NumberedSource(50, fail_at=20), _cfg(display="video"), out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_folder_source_with_a_corrupt_second_frame_leaves_nothing_behind(bundle, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "000.png"), np.full((60, 80, 3), 120, np.uint8))
    (folder / "001.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    cv2.imwrite(str(folder / "002.png"), np.full((60, 80, 3), 90, np.uint8))
    out = tmp_path / "out"
    with pytest.raises(DataIntegrityError, match="001.png cannot be decoded"):
        run(bundle, folder, _cfg(display="video"), out)
    assert not out.exists() and _ferflow_threads() == []
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(DataIntegrityError):
        run(bundle, folder, _cfg(display="video"), out)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]  # an existing folder stays, with only its own files


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_named_like_an_image_is_refused_without_opening_it(bundle, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "000.png"), np.full((60, 80, 3), 120, np.uint8))
    os.mkfifo(folder / "001.png")
    with pytest.raises(DataIntegrityError, match=r"001.png: FIFO, not an image file"):
        run(bundle, folder, _cfg(), tmp_path / "out")
    assert not (tmp_path / "out").exists()
