"""The realtime runner: source → detect → track/smooth → ROI → preprocess → ONNX → calibration → stabiliser →
overlay / annotated video, per-frame CSV and events JSONL."""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from pydantic import Field

from fer_core.config import FrozenModel
from fer_core.export.bundle import BundleModel, load_bundle
from fer_core.realtime.detect import DetectorConfig, create_detector
from fer_core.realtime.keys import LABEL_KEYS, QUIT_KEYS, TUNING_KEYS, clamp, key_from_code, read_key_script
from fer_core.realtime.overlay import draw_overlay
from fer_core.realtime.roi import face_roi
from fer_core.realtime.sources import FrameSource, open_source
from fer_core.realtime.stabilize import UNKNOWN, Stabilizer, StabilizerConfig
from fer_core.realtime.track import IoUTracker, Track

STAGES = ("decode", "detect", "preprocess", "infer", "stabilise")
CSV_NAME, EVENTS_NAME, VIDEO_NAME = "frames.csv", "events.jsonl", "annotated.mp4"


class RunnerConfig(FrozenModel):
    """Realtime runner settings.

    Attributes:
        detector: face detection (kind, model path, detection width, every-N).
        stabilizer: stabiliser knobs; ``None`` = the bundle's ``stabilizer.json``, else the defaults.
        box_smooth: median window of the box smoothing (frames).
        align: rotate crops so the eyes are level (needs YuNet landmarks).
        display: ``auto`` = a window when a display exists and no key script is given, else an annotated video;
            ``none`` = neither (benchmarks).
        keys_file: scripted key events (``<frame_idx> <key>`` lines) for headless runs.
        threads: ONNX Runtime intra-op threads.
        per_class_temperature: calibrate with the per-class temperatures instead of the global T.
        max_frames: stop after this many frames.
        alpha_step, delta_step, threshold_step: live-tuning step sizes.
    """

    detector: DetectorConfig = DetectorConfig()
    stabilizer: StabilizerConfig | None = None
    box_smooth: int = Field(5, ge=1)
    align: bool = False
    display: Literal["auto", "window", "video", "none"] = "auto"
    keys_file: Path | None = None
    threads: int = Field(2, ge=1)
    per_class_temperature: bool = False
    max_frames: int | None = Field(None, ge=1)
    alpha_step: float = Field(0.05, gt=0)
    delta_step: float = Field(0.02, gt=0)
    threshold_step: float = Field(0.05, gt=0)


class RunSummary(FrozenModel):
    """What a run did: counts, throughput, per-stage latency percentiles (ms), and the files written."""

    frames: int
    rows: int
    no_face_frames: int
    label_changes: int
    fps: float
    latency_ms: dict[str, dict[str, float]]
    csv_path: Path
    events_path: Path
    video_path: Path | None
    quit_by_key: bool


def _resolve_display(cfg: RunnerConfig) -> str:
    if cfg.display != "auto":
        return cfg.display
    has_display = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or os.name == "nt"
    return "window" if has_display and cfg.keys_file is None else "video"


class _Session:
    """State of one run (kept out of :func:`run` so each step stays small)."""

    def __init__(self, bundle: BundleModel, cfg: RunnerConfig, out_dir: Path, fps: float):
        self.bundle, self.cfg, self.out_dir = bundle, cfg, out_dir
        self.stab_cfg = cfg.stabilizer or StabilizerConfig(**(bundle.stabilizer or {}))
        self.detector = create_detector(cfg.detector)
        self.tracker = IoUTracker(smooth=cfg.box_smooth)
        self.stabs: dict[int, Stabilizer] = {}
        self.last_label: dict[int, int] = {}
        self.true_label: str | None = None
        self.keys = read_key_script(cfg.keys_file) if cfg.keys_file else {}
        self.mode = _resolve_display(cfg)
        self.fps = fps if fps > 0 else 30.0
        self.lat: dict[str, list[float]] = {s: [] for s in STAGES}
        self.rows = self.no_face = self.changes = 0
        self.quit = False
        out_dir.mkdir(parents=True, exist_ok=True)
        self._csv_f = open(out_dir / f"{CSV_NAME}.partial", "w", newline="", encoding="utf-8")  # noqa: SIM115
        self._ev_f = open(out_dir / f"{EVENTS_NAME}.partial", "w", encoding="utf-8")  # noqa: SIM115
        self.csv = csv.writer(self._csv_f)
        classes = bundle.classes
        self.csv.writerow(["timestamp_s", "frame", "track_id", "x", "y", "w", "h", *[f"p_{c}" for c in classes],
                           "raw_label", "smoothed_label", "true_label", *[f"{s}_ms" for s in STAGES]])  # fmt: skip
        self.writer: cv2.VideoWriter | None = None

    def event(self, ts: float, frame: int, kind: str, **fields: Any) -> None:
        self._ev_f.write(json.dumps({"t": round(ts, 6), "frame": frame, "type": kind, **fields}) + "\n")

    def name(self, idx: int) -> str:
        return "unknown" if idx == UNKNOWN else self.bundle.classes[idx]

    def handle_key(self, key: str, ts: float, frame: int) -> None:
        """Apply one key: tuning change, operator label (1-7, 0 clear), or quit; each logged as an event."""
        if key in QUIT_KEYS:
            self.quit = True
            self.event(ts, frame, "quit", key=key)
        elif key in LABEL_KEYS:
            idx = int(key)
            if idx > len(self.bundle.classes):
                return
            self.true_label = None if idx == 0 else self.bundle.classes[idx - 1]
            self.event(ts, frame, "true_label", label=self.true_label, key=key)
        elif key in TUNING_KEYS:
            field, sign = TUNING_KEYS[key]
            step = {"alpha": self.cfg.alpha_step, "delta": self.cfg.delta_step}.get(field, self.cfg.threshold_step)
            old = getattr(self.stab_cfg, field)
            new = clamp(field, old + sign * step)
            self.stab_cfg = self.stab_cfg.model_copy(update={field: new})
            for s in self.stabs.values():
                s.set_config(self.stab_cfg)
            self.event(ts, frame, "tuning", param=field, old=old, value=new, key=key)

    def close(self, ok: bool) -> Path | None:
        self._csv_f.close()
        self._ev_f.close()
        video = None
        if self.writer is not None:
            self.writer.release()
            video = self.out_dir / VIDEO_NAME
        if self.mode == "window":
            cv2.destroyAllWindows()
        if ok:  # partial files stay for inspection after a crash
            os.replace(self.out_dir / f"{CSV_NAME}.partial", self.out_dir / CSV_NAME)
            os.replace(self.out_dir / f"{EVENTS_NAME}.partial", self.out_dir / EVENTS_NAME)
            if video is not None:
                os.replace(self.out_dir / f"partial.{VIDEO_NAME}", video)
        return video


def _timed(it: Iterator[Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    item = next(it, None)
    return item, (time.perf_counter() - t0) * 1000.0


def _detect_and_crop(s: _Session, idx: int, frame: np.ndarray) -> tuple[list[Track], np.ndarray | None, float, float]:
    t0 = time.perf_counter()
    if idx % s.cfg.detector.every_n == 0:
        tracks, dropped = s.tracker.update(s.detector.detect(frame))
        for tid in dropped:
            s.stabs.pop(tid, None)
            s.last_label.pop(tid, None)
    else:
        tracks = s.tracker.carry()
    t1 = time.perf_counter()
    x = None
    if tracks:
        m = s.bundle.spec.crop_margin
        x = np.stack([s.bundle.preprocess(face_roi(frame, t.box(), m, t.landmarks, s.cfg.align)) for t in tracks])
    return tracks, x, (t1 - t0) * 1000.0, (time.perf_counter() - t1) * 1000.0


def _stabilise(s: _Session, tracks: list[Track], probs: np.ndarray, ts: float, idx: int) -> list[tuple[int, int]]:
    out = []
    k = len(s.bundle.classes)
    for t, p in zip(tracks, probs, strict=True):
        stab = s.stabs.get(t.track_id)
        if stab is None:
            stab = s.stabs[t.track_id] = Stabilizer(s.stab_cfg, k, s.bundle.calibration.thresholds)
        label = stab.update(p).label
        prev = s.last_label.get(t.track_id, UNKNOWN)
        if label != prev:
            s.changes += 1
            s.event(ts, idx, "label_change", track=t.track_id, label=s.name(label), previous=s.name(prev))
        s.last_label[t.track_id] = label
        out.append((int(np.argmax(p)), label))
    return out


def _process(s: _Session, idx: int, ts: float, frame: np.ndarray, dec_ms: float) -> list[dict[str, Any]]:
    """One frame through detection → inference → stabiliser; returns the overlay items and writes CSV rows."""
    tracks, x, det_ms, pre_ms = _detect_and_crop(s, idx, frame)
    t0 = time.perf_counter()
    probs = s.bundle.predict_proba(x) if x is not None else np.zeros((0, len(s.bundle.classes)), np.float32)
    t1 = time.perf_counter()
    labels = _stabilise(s, tracks, probs, ts, idx)
    stab_ms = (time.perf_counter() - t1) * 1000.0
    ms = [dec_ms, det_ms, pre_ms, (t1 - t0) * 1000.0, stab_ms]
    for st, v in zip(STAGES, ms, strict=True):
        s.lat[st].append(v)
    lat = [f"{v:.3f}" for v in ms]
    truth = s.true_label or ""
    items = []
    for t, p, (raw, lab) in zip(tracks, probs, labels, strict=True):
        box = t.box()
        s.csv.writerow([f"{ts:.6f}", idx, t.track_id, *[f"{v:.1f}" for v in box], *[f"{v:.6f}" for v in p],
                        s.name(raw), s.name(lab), truth, *lat])  # fmt: skip
        items.append({"box": box, "track": t.track_id, "label": s.name(lab), "prob": float(p.max())})
    if not tracks:
        s.no_face += 1
        blank = [""] * (4 + len(s.bundle.classes))
        s.csv.writerow([f"{ts:.6f}", idx, -1, *blank, "", "unknown", truth, *lat])
    s.rows += max(1, len(tracks))
    return items


def _present(s: _Session, idx: int, ts: float, frame: np.ndarray, items: list[dict[str, Any]]) -> None:
    if s.mode == "none":
        return
    img = draw_overlay(frame, items, s.stab_cfg, s.true_label)
    if s.mode == "window":
        cv2.imshow("ferflow", img)
        key = key_from_code(cv2.waitKey(1))
        if key is not None:
            s.handle_key(key, ts, idx)
        return
    if s.writer is None:
        path = s.out_dir / f"partial.{VIDEO_NAME}"
        s.writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), s.fps, (img.shape[1], img.shape[0]))
    s.writer.write(img)


def run(
    bundle_dir: str | os.PathLike[str],
    source: int | str | os.PathLike[str] | FrameSource,
    cfg: RunnerConfig,
    out_dir: str | os.PathLike[str],
) -> RunSummary:
    """Run the bundle on a webcam / video / image folder and write ``frames.csv``, ``events.jsonl`` and (headless)
    ``annotated.mp4`` into ``out_dir``.

    The bundle's manifest is verified before anything loads; a frame without a face logs one row with track ``-1``
    and label ``unknown``.

    Raises:
        BundleError: the bundle is missing, tampered with or inconsistent.
        ConfigError: a camera that does not exist, a missing path, a bad key script or detector setting.
        DataIntegrityError: an unreadable video or image.
    """
    bundle = load_bundle(bundle_dir, threads=cfg.threads, per_class_temperature=cfg.per_class_temperature)
    src = source if isinstance(source, FrameSource) else open_source(source)
    s = _Session(bundle, cfg, Path(out_dir), src.fps)
    s.event(0.0, -1, "session_start", source=src.name, classes=list(bundle.classes), fps=s.fps,
            stabilizer=s.stab_cfg.model_dump(), config=cfg.model_dump(mode="json"))  # fmt: skip
    ok, frames, ts = False, 0, 0.0
    t_start = time.perf_counter()
    try:
        it = iter(src)
        while not s.quit and (cfg.max_frames is None or frames < cfg.max_frames):
            item, dec_ms = _timed(it)
            if item is None:
                break
            idx, ts, frame = item
            for key in s.keys.get(idx, []):  # scripted keys act on their own frame, before it is processed
                s.handle_key(key, ts, idx)
            items = _process(s, idx, ts, frame, dec_ms)
            _present(s, idx, ts, frame, items)
            frames += 1
        s.event(ts, frames - 1, "session_end", frames=frames)
        ok = True
    finally:
        src.close()
        video = s.close(ok)
    wall = time.perf_counter() - t_start
    return RunSummary(
        frames=frames, rows=s.rows, no_face_frames=s.no_face, label_changes=s.changes,
        fps=frames / wall if wall > 0 else 0.0, latency_ms=_percentiles(s.lat),
        csv_path=s.out_dir / CSV_NAME, events_path=s.out_dir / EVENTS_NAME, video_path=video, quit_by_key=s.quit,
    )  # fmt: skip


def _percentiles(lat: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {
        k: {"p50": float(np.percentile(v, 50)), "p99": float(np.percentile(v, 99))} if v else {"p50": 0.0, "p99": 0.0}
        for k, v in lat.items()
    }
