"""Realtime figures: model latency (ONNX vs torch, INT8 vs FP32), end-to-end 1080p/720p per-stage latency and FPS
(Haar vs YuNet, against decode-only FPS of the same clips), and RSS growth over a looped run.

Run: ``.venv/bin/python benchmarks/bench_realtime.py [--quick] [--minutes M]``. Uses /work/shared/media/*.mp4 and
/work/shared/models/face_detection_yunet.onnx (skips what is absent). Everything runs on ``--threads`` cores (2).
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fer_core.realtime.sources import FrameSource  # noqa: E402

MEDIA = Path("/work/shared/media")
YUNET = Path("/work/shared/models/face_detection_yunet.onnx")


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


class ClipSource(FrameSource):
    """Frames of several clips in sequence, optionally looped until a deadline; optional resize to a height."""

    def __init__(self, clips: list[Path], height: int | None = None, until: float | None = None, rss=None):
        self.clips, self.height, self.until, self.rss = clips, height, until, rss
        self.fps, self.name = 60.0, "+".join(c.name for c in clips)

    def __iter__(self):
        idx = 0
        for clip in itertools.cycle(self.clips) if self.until else self.clips:
            if self.until and time.perf_counter() > self.until:
                return
            cap = cv2.VideoCapture(str(clip))
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                if self.height and frame.shape[0] != self.height:
                    w = round(frame.shape[1] * self.height / frame.shape[0])
                    frame = cv2.resize(frame, (w, self.height), interpolation=cv2.INTER_AREA)
                if self.rss is not None and idx % 60 == 0:
                    self.rss.append((time.perf_counter(), _rss_mb()))
                yield idx, idx / self.fps, frame
                idx += 1
            cap.release()


def _lat(fn, n: int) -> tuple[float, float]:
    for _ in range(5):
        fn()
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1000)
    return float(np.percentile(ts, 50)), float(np.percentile(ts, 99))


def bench_models(tmp: Path, threads: int, n: int) -> None:
    import timm
    import torch
    from timm.layers import set_layer_config

    from fer_core.export import make_session, quantize_int8
    from fer_core.export.onnx import export_onnx
    from fer_core.preprocess import PreprocessSpec

    torch.set_num_threads(threads)
    print("\n(a) model only, batch 1, p50 / p99 ms")
    cases = [("mobilenetv3_large_100", PreprocessSpec(size=(224, 224), channels=3, color="rgb", mean=(0.5,) * 3,
                                                      std=(0.5,) * 3)),
             ("mobilenetv3_small_050", PreprocessSpec(size=(48, 48))),
             ("resnet18", PreprocessSpec(size=(48, 48)))]  # fmt: skip
    for name, spec in cases:
        with set_layer_config(exportable=True):
            model = timm.create_model(name, num_classes=7, in_chans=spec.channels, pretrained=False).eval()
        x = np.random.default_rng(0).normal(size=(1, spec.channels, *spec.size)).astype(np.float32)
        xt = torch.from_numpy(x)
        with torch.inference_mode():
            eager = _lat(lambda m=model, xt=xt: m(xt), n)
        fp32 = export_onnx(model, spec, tmp / f"{name}.onnx")
        sess = make_session(fp32, threads)
        onnx = _lat(lambda s=sess, x=x: s.run(None, {"input": x}), n)
        calib = np.random.default_rng(1).normal(size=(32, spec.channels, *spec.size)).astype(np.float32)
        isess = make_session(quantize_int8(fp32, calib, tmp / f"{name}.int8.onnx"), threads)
        int8 = _lat(lambda s=isess, x=x: s.run(None, {"input": x}), n)
        print(f"  {name:<22} {spec.size[0]}px c={spec.channels}: torch eager {eager[0]:7.2f} / {eager[1]:7.2f}  "
              f"ONNX fp32 {onnx[0]:6.2f} / {onnx[1]:6.2f} ({eager[0] / onnx[0]:.1f}x faster)  "
              f"INT8 {int8[0]:6.2f} / {int8[1]:6.2f} ({onnx[0] / int8[0]:.2f}x vs fp32)")  # fmt: skip


def _student_bundle(tmp: Path) -> Path:
    import timm
    from timm.layers import set_layer_config

    from fer_core.export import render_model_card, write_bundle
    from fer_core.export.onnx import export_onnx
    from fer_core.preprocess import ClaheSpec, PreprocessSpec
    from fer_core.taxonomy import FER_CLASSES

    spec = PreprocessSpec(size=(48, 48), clahe=ClaheSpec())
    with set_layer_config(exportable=True):
        model = timm.create_model("mobilenetv3_small_050", num_classes=7, in_chans=1, pretrained=False).eval()
    onnx_path = export_onnx(model, spec, tmp / "student.onnx")
    cal = {"classes": list(FER_CLASSES), "temperature": 1.3, "per_class_temperature": None, "thresholds": None}
    card = render_model_card("bench", {}, {}, cal, spec)
    return write_bundle(tmp / "bundle", onnx_path, cal, spec, card)


def transcode(clips: list[Path], tmp: Path, height: int) -> list[Path]:
    """Write each clip downscaled to ``height`` (mp4v), so the 720p run decodes a real 720p stream."""
    out = []
    for clip in clips:
        dest = tmp / f"{clip.stem}_{height}p.mp4"
        cap = cv2.VideoCapture(str(clip))
        fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        writer = None
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            w = round(frame.shape[1] * height / frame.shape[0])
            frame = cv2.resize(frame, (w, height), interpolation=cv2.INTER_AREA)
            if writer is None:
                writer = cv2.VideoWriter(str(dest), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, height))
            writer.write(frame)
        cap.release()
        if writer is not None:
            writer.release()
        out.append(dest)
    return out


def _decode_fps(clips: list[Path], height: int | None) -> float:
    n, t0 = 0, time.perf_counter()
    for _ in ClipSource(clips, height):
        n += 1
    return n / (time.perf_counter() - t0)


def bench_e2e(tmp: Path, bundle: Path, clips: list[Path], threads: int, every_n: int) -> None:
    from fer_core.realtime import DetectorConfig, RunnerConfig, run

    print("\n(b) end to end, one face, display off; per-stage p50 / p99 ms")
    dets = [("haar", DetectorConfig(kind="haar"))]
    if YUNET.is_file():
        dets.append(("yunet", DetectorConfig(kind="yunet", model_path=YUNET)))
    rows = [(1080, name, d) for name, d in dets] + [(720, name, d) for name, d in dets if name == "yunet"]
    if every_n > 1:
        rows += [(1080, f"{name}/every{every_n}", d.model_copy(update={"every_n": every_n})) for name, d in dets]
    base: dict[int, float] = {}
    sources = {1080: clips, 720: transcode(clips, tmp, 720)}
    for h, name, det in rows:
        if h not in base:
            base[h] = _decode_fps(sources[h], None)
            print(f"  {h}p decode-only baseline: {base[h]:.1f} FPS ({1000 / base[h]:.1f} ms/frame)")
        cfg = RunnerConfig(detector=det, display="none", threads=threads)
        s = run(bundle, ClipSource(sources[h]), cfg, tmp / f"run_{h}_{name.replace('/', '_')}")
        stages = "  ".join(f"{k} {v['p50']:.1f}/{v['p99']:.1f}" for k, v in s.latency_ms.items())
        print(f"  {h}p {name:<13} {s.fps:6.1f} FPS ({s.fps / base[h]:.2f}x of decode-only)  no-face frames "
              f"{s.no_face_frames}/{s.frames}  |  {stages}")  # fmt: skip


def bench_memory(tmp: Path, bundle: Path, clips: list[Path], threads: int, minutes: float) -> None:
    from fer_core.realtime import DetectorConfig, RunnerConfig, run

    det = DetectorConfig(kind="yunet", model_path=YUNET) if YUNET.is_file() else DetectorConfig()
    rss: list[tuple[float, float]] = []
    src = ClipSource(transcode(clips, tmp, 720), until=time.perf_counter() + minutes * 60, rss=rss)
    s = run(bundle, src, RunnerConfig(detector=det, display="none", threads=threads), tmp / "run_mem")
    t0 = rss[0][0]
    warm = next((r for t, r in rss if t - t0 >= min(20.0, minutes * 60 / 5)), rss[0][1])
    end, peak = rss[-1][1], max(r for _, r in rss)
    print(f"\n(c) memory over a looped {minutes:.1f}-min run at 720p ({det.kind}, {s.frames} frames, {s.fps:.1f} FPS): "
          f"RSS after warm-up {warm:.0f} MB, end {end:.0f} MB, peak {peak:.0f} MB, growth "
          f"{100 * (end - warm) / warm:+.1f}%")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer model iterations, one clip, 0.5-min memory run")
    ap.add_argument("--minutes", type=float, default=None, help="memory run length (target: 10)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--every-n", type=int, default=3, help="also run detection every N frames (tracking between)")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: models,e2e,memory")
    a = ap.parse_args()
    cv2.setNumThreads(a.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    clips = sorted(MEDIA.glob("*.mp4"))[: 1 if a.quick else None]
    minutes = a.minutes if a.minutes is not None else (0.5 if a.quick else 1.0)
    skip = set(a.skip.split(","))
    print(f"threads={a.threads} clips={[c.name for c in clips]} cpu_count={os.cpu_count()}")
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        if "models" not in skip:
            bench_models(tmp, a.threads, 50 if a.quick else 200)
        if not clips:
            print("no clips under /work/shared/media: end-to-end and memory parts skipped")
            return
        bundle = _student_bundle(tmp)
        if "e2e" not in skip:
            bench_e2e(tmp, bundle, clips, a.threads, a.every_n)
        if "memory" not in skip:
            bench_memory(tmp, bundle, clips, a.threads, minutes)


if __name__ == "__main__":
    main()
