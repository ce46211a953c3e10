"""The realtime runner: source → detect → track/smooth → ROI → preprocess → ONNX → calibration → stabiliser →
overlay / annotated video, per-frame CSV and events JSONL.

Decoding, detection and classification (crop, preprocessing, ONNX) run on their own threads and overlap
(:class:`~fer_core.realtime.pipeline.OrderedPipeline`); the stabiliser, the logs and the display stay on the calling
thread, which sees every frame in source order. Outputs appear only when the run succeeds.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from pydantic import Field

from fer_core.config import FrozenModel
from fer_core.export.bundle import BundleModel, load_bundle
from fer_core.realtime.detect import DetectorConfig, create_detector
from fer_core.realtime.keys import LABEL_KEYS, QUIT_KEYS, TUNING_KEYS, clamp, key_from_code, read_key_script
from fer_core.realtime.latency import LatencyHistogram
from fer_core.realtime.outputs import CSV_NAME, EVENTS_NAME, RunOutputs
from fer_core.realtime.overlay import draw_overlay
from fer_core.realtime.pipeline import BackgroundWorker, OrderedPipeline
from fer_core.realtime.roi import face_roi
from fer_core.realtime.sources import FrameSource, open_source
from fer_core.realtime.stabilize import UNKNOWN, Stabilizer, StabilizerConfig
from fer_core.realtime.track import IoUTracker

STAGES = ("decode", "detect", "preprocess", "infer", "stabilise")


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
        threads: ONNX Runtime intra-op threads (1: a 48-px student runs in ~1 ms, and a second ORT thread spins on
            the core the other stages need; measured ~10 ms of CPU per frame wasted at 2).
        opencv_threads: OpenCV's worker threads for the duration of the run (restored afterwards; ``None`` leaves the
            setting alone). 1 by default: the stages already run in parallel, and OpenCV's pool would compete for
            the same cores.
        per_class_temperature: calibrate with the per-class temperatures instead of the global T.
        max_frames: stop after this many frames.
        alpha_step, delta_step, threshold_step: live-tuning step sizes.
        pipeline: overlap decoding, detection and classification on threads (``False``: one thread, in series).
        depth: frames in flight at most when pipelined (bounds memory and latency; 3 keeps all three stages busy).
    """

    detector: DetectorConfig = DetectorConfig()
    stabilizer: StabilizerConfig | None = None
    box_smooth: int = Field(5, ge=1)
    align: bool = False
    display: Literal["auto", "window", "video", "none"] = "auto"
    keys_file: Path | None = None
    threads: int = Field(1, ge=1)
    opencv_threads: int | None = Field(1, ge=1)
    per_class_temperature: bool = False
    max_frames: int | None = Field(None, ge=1)
    alpha_step: float = Field(0.05, gt=0)
    delta_step: float = Field(0.02, gt=0)
    threshold_step: float = Field(0.05, gt=0)
    pipeline: bool = True
    depth: int = Field(3, ge=1, le=64)


class RunSummary(FrozenModel):
    """What a run did: counts, throughput, per-stage and whole-frame latency percentiles (ms), and the files written.

    ``latency_ms[stage]`` is the time a frame spent being worked on in that stage; ``frame_latency_ms`` is the time
    from the start of its decoding to its stabilised label (waits between stages included).
    """

    frames: int
    rows: int
    no_face_frames: int
    label_changes: int
    fps: float
    latency_ms: dict[str, dict[str, float]]
    frame_latency_ms: dict[str, float] = {"p50": 0.0, "p99": 0.0, "max": 0.0}
    pipeline: bool = False
    csv_path: Path
    events_path: Path
    video_path: Path | None
    quit_by_key: bool


@dataclass(frozen=True)
class _Face:
    track_id: int
    box: tuple[float, float, float, float]
    landmarks: np.ndarray | None


@dataclass
class _Frame:
    """One frame on its way through the stages (each stage fills its own fields)."""

    idx: int
    ts: float
    image: np.ndarray
    t0: float
    ms: dict[str, float]
    faces: list[_Face] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)
    probs: np.ndarray | None = None


def _resolve_display(cfg: RunnerConfig) -> str:
    if cfg.display != "auto":
        return cfg.display
    has_display = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or os.name == "nt"
    return "window" if has_display and cfg.keys_file is None else "video"


def _ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


def _frames(src: FrameSource, max_frames: int | None) -> Iterator[_Frame]:
    """The source as :class:`_Frame` items, each timed from the start of its decoding (runs on the source thread)."""
    it, n = iter(src), 0
    while max_frames is None or n < max_frames:
        t0 = time.perf_counter()
        item = next(it, None)
        if item is None:
            return
        idx, ts, image = item
        yield _Frame(idx, ts, image, t0, {"decode": _ms_since(t0)})
        n += 1


class _Detect:
    """Detection stage (its own thread): detector every N frames, IoU tracking and box smoothing."""

    def __init__(self, cfg: RunnerConfig):
        self.detector = create_detector(cfg.detector)
        self.tracker = IoUTracker(smooth=cfg.box_smooth)
        self.every_n = cfg.detector.every_n

    def __call__(self, f: _Frame) -> _Frame:
        t0 = time.perf_counter()
        if f.idx % self.every_n == 0:
            tracks, f.dropped = self.tracker.update(self.detector.detect(f.image))
        else:
            tracks = self.tracker.carry()
        # a snapshot: the tracks change on the next frame while this one is still being classified
        f.faces = [_Face(t.track_id, t.box(), t.landmarks) for t in tracks]
        f.ms["detect"] = _ms_since(t0)
        return f


class _Classify:
    """Classification stage (its own thread): crop → preprocessing (the contract's order) → ONNX → calibration."""

    def __init__(self, bundle: BundleModel, align: bool):
        self.bundle, self.align = bundle, align
        self.margin = bundle.spec.crop_margin

    def __call__(self, f: _Frame) -> _Frame:
        t0 = time.perf_counter()
        crops = [face_roi(f.image, face.box, self.margin, face.landmarks, self.align) for face in f.faces]
        x = np.stack([self.bundle.preprocess(c) for c in crops]) if crops else None
        t1 = time.perf_counter()
        k = len(self.bundle.classes)
        f.probs = self.bundle.predict_proba(x) if x is not None else np.zeros((0, k), np.float32)
        f.ms["preprocess"], f.ms["infer"] = (t1 - t0) * 1000.0, _ms_since(t1)
        return f


class _Session:
    """The calling thread's part of a run: keys, stabilisers, logs, display (kept out of :func:`run`)."""

    def __init__(self, bundle: BundleModel, cfg: RunnerConfig, out: RunOutputs, fps: float, keys: dict[int, list[str]]):
        self.bundle, self.cfg, self.out, self.keys = bundle, cfg, out, keys
        self.stab_cfg = cfg.stabilizer or StabilizerConfig(**(bundle.stabilizer or {}))
        self.stabs: dict[int, Stabilizer] = {}
        self.last_label: dict[int, int] = {}
        self.true_label: str | None = None
        self.mode = _resolve_display(cfg)
        self.fps = fps if fps > 0 else 30.0
        self.lat = {s: LatencyHistogram() for s in STAGES}
        self.frame_lat = LatencyHistogram()
        self.rows = self.no_face = self.changes = self.frames = 0
        self.quit = False
        self.video: BackgroundWorker | None = None

    def name(self, idx: int) -> str:
        return "unknown" if idx == UNKNOWN else self.bundle.classes[idx]

    def handle_key(self, key: str, ts: float, frame: int) -> None:
        """Apply one key: tuning change, operator label (1-7, 0 clear), or quit; each logged as an event."""
        if key in QUIT_KEYS:
            self.quit = True
            self.out.event(ts, frame, "quit", key=key)
        elif key in LABEL_KEYS:
            idx = int(key)
            if idx > len(self.bundle.classes):
                return
            self.true_label = None if idx == 0 else self.bundle.classes[idx - 1]
            self.out.event(ts, frame, "true_label", label=self.true_label, key=key)
        elif key in TUNING_KEYS:
            name, sign = TUNING_KEYS[key]
            step = {"alpha": self.cfg.alpha_step, "delta": self.cfg.delta_step}.get(name, self.cfg.threshold_step)
            old = getattr(self.stab_cfg, name)
            new = clamp(name, old + sign * step)
            self.stab_cfg = self.stab_cfg.model_copy(update={name: new})
            for s in self.stabs.values():
                s.set_config(self.stab_cfg)
            self.out.event(ts, frame, "tuning", param=name, old=old, value=new, key=key)

    def stabilise(self, f: _Frame) -> list[tuple[int, int]]:
        """Every classified frame, in source order, through its tracks' stabilisers: ``(raw, smoothed)`` labels."""
        for tid in f.dropped:
            self.stabs.pop(tid, None)
            self.last_label.pop(tid, None)
        out = []
        k = len(self.bundle.classes)
        for face, p in zip(f.faces, f.probs, strict=True):
            stab = self.stabs.get(face.track_id)
            if stab is None:
                stab = self.stabs[face.track_id] = Stabilizer(self.stab_cfg, k, self.bundle.calibration.thresholds)
            label = stab.update(p).label
            prev = self.last_label.get(face.track_id, UNKNOWN)
            if label != prev:
                self.changes += 1
                self.out.event(f.ts, f.idx, "label_change", track=face.track_id, label=self.name(label),
                               previous=self.name(prev))  # fmt: skip
            self.last_label[face.track_id] = label
            out.append((int(np.argmax(p)), label))
        return out

    def consume(self, f: _Frame) -> None:
        """Keys of this frame, the stabiliser, the CSV rows and the display of one frame."""
        for key in self.keys.get(f.idx, []):  # scripted keys act on their own frame, before it is processed
            self.handle_key(key, f.ts, f.idx)
        t0 = time.perf_counter()
        labels = self.stabilise(f)
        f.ms["stabilise"] = _ms_since(t0)
        frame_ms = _ms_since(f.t0)
        for st in STAGES:
            self.lat[st].add(f.ms[st])
        self.frame_lat.add(frame_ms)
        self._log_rows(f, labels, [*(f"{f.ms[st]:.3f}" for st in STAGES), f"{frame_ms:.3f}"])
        self.frames += 1
        self._present(f, labels)

    def _log_rows(self, f: _Frame, labels: list[tuple[int, int]], lat: list[str]) -> None:
        truth = self.true_label or ""
        for face, p, (raw, lab) in zip(f.faces, f.probs, labels, strict=True):
            self.out.csv.writerow([f"{f.ts:.6f}", f.idx, face.track_id, *[f"{v:.1f}" for v in face.box],
                                   *[f"{v:.6f}" for v in p], self.name(raw), self.name(lab), truth, *lat])  # fmt: skip
        if not f.faces:
            self.no_face += 1
            blank = [""] * (4 + len(self.bundle.classes))
            self.out.csv.writerow([f"{f.ts:.6f}", f.idx, -1, *blank, "", "unknown", truth, *lat])
        self.rows += max(1, len(f.faces))

    def _present(self, f: _Frame, labels: list[tuple[int, int]]) -> None:
        if self.mode == "none":
            return
        items = [{"box": face.box, "track": face.track_id, "label": self.name(lab), "prob": float(p.max())}
                 for face, p, (_, lab) in zip(f.faces, f.probs, labels, strict=True)]  # fmt: skip
        if self.mode == "window":
            cv2.imshow("ferflow", draw_overlay(f.image, items, self.stab_cfg, self.true_label))
            key = key_from_code(cv2.waitKey(1))
            if key is not None:
                self.handle_key(key, f.ts, f.idx)
            return
        job = (f.image, items, self.stab_cfg, self.true_label)
        if self.video is None and self.cfg.pipeline:  # overlay + encoding overlap the next frames
            self.video = BackgroundWorker(self._write_video, maxsize=2, name="video")
        if self.video is not None:
            self.video.submit(job)
        else:
            self._write_video(job)

    def _write_video(self, job: tuple[Any, ...]) -> None:
        image, items, stab_cfg, truth = job
        self.out.write_video(draw_overlay(image, items, stab_cfg, truth), self.fps)

    def finish(self, ok: bool) -> Path | None:
        """Flush the video writer, then commit every file (``ok``) or remove them all."""
        try:
            if self.video is not None and ok:
                self.video.finish()
            elif self.video is not None:
                self.video.abort()
        except BaseException:
            ok = False
            raise
        finally:
            if self.mode == "window":
                cv2.destroyAllWindows()
            video = self.out.commit() if ok else self.out.discard()
        return video


def _csv_header(classes: tuple[str, ...]) -> list[str]:
    return ["timestamp_s", "frame", "track_id", "x", "y", "w", "h", *[f"p_{c}" for c in classes], "raw_label",
            "smoothed_label", "true_label", *[f"{s}_ms" for s in STAGES], "frame_ms"]  # fmt: skip


def run(
    bundle_dir: str | os.PathLike[str],
    source: int | str | os.PathLike[str] | FrameSource,
    cfg: RunnerConfig,
    out_dir: str | os.PathLike[str],
) -> RunSummary:
    """Run the bundle on a webcam / video / image folder and write ``frames.csv``, ``events.jsonl`` and (headless)
    ``annotated.mp4`` into ``out_dir``.

    The bundle's manifest is verified before anything loads; a frame without a face logs one row with track ``-1``
    and label ``unknown``. The files are written under temporary names and renamed into place only when the run
    succeeds (a quit key is a success); on any error they are removed, and ``out_dir`` too if the run created it.

    Raises:
        BundleError: the bundle is missing, tampered with or inconsistent.
        ConfigError: a camera that does not exist, a missing path, a bad key script or detector setting.
        DataIntegrityError: an unreadable video or image.
    """
    bundle = load_bundle(bundle_dir, threads=cfg.threads, per_class_temperature=cfg.per_class_temperature)
    keys = read_key_script(cfg.keys_file) if cfg.keys_file else {}  # refused before any file is created
    stages = [("detect", _Detect(cfg)), ("classify", _Classify(bundle, cfg.align))]
    src = source if isinstance(source, FrameSource) else open_source(source)
    try:
        out = RunOutputs(Path(out_dir), _csv_header(bundle.classes))
    except BaseException:
        src.close()
        raise
    s = _Session(bundle, cfg, out, src.fps, keys)
    ok, pipe = False, None
    cv_threads = cv2.getNumThreads()
    if cfg.opencv_threads is not None:
        cv2.setNumThreads(cfg.opencv_threads)
    t_start = time.perf_counter()
    try:
        out.event(0.0, -1, "session_start", source=src.name, classes=list(bundle.classes), fps=s.fps,
                  stabilizer=s.stab_cfg.model_dump(), config=cfg.model_dump(mode="json"))  # fmt: skip
        last_ts = 0.0
        pipe = OrderedPipeline(_frames(src, cfg.max_frames), stages, cfg.depth, threaded=cfg.pipeline)
        with pipe:
            for f in pipe:
                s.consume(f)
                last_ts = f.ts
                if s.quit:
                    break
        out.event(last_ts, s.frames - 1, "session_end", frames=s.frames)
        ok = True
    finally:
        if pipe is None or "ferflow-source" not in pipe.alive_threads:
            src.close()  # never under a read still in progress (a stalled camera): that one is left to the daemon
        cv2.setNumThreads(cv_threads)
        video = s.finish(ok)
    wall = time.perf_counter() - t_start
    return RunSummary(
        frames=s.frames, rows=s.rows, no_face_frames=s.no_face, label_changes=s.changes,
        fps=s.frames / wall if wall > 0 else 0.0,
        latency_ms={st: {k: v for k, v in h.summary().items() if k != "max"} for st, h in s.lat.items()},
        frame_latency_ms=s.frame_lat.summary(), pipeline=cfg.pipeline, csv_path=out.out_dir / CSV_NAME,
        events_path=out.out_dir / EVENTS_NAME, video_path=video, quit_by_key=s.quit,
    )  # fmt: skip
