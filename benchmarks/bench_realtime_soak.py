"""Soak of the realtime runner: a real 1080p clip looped for N minutes (YuNet on every frame, the pipelined runner),
reporting RSS growth, open file descriptors and thread counts over time, and frame latency p50/p99 per minute.

Run: ``.venv/bin/python benchmarks/bench_realtime_soak.py [--minutes 10] [--clip PATH]``. Targets (issue 14): RSS
growth <= 5% after warm-up, no growth in open files or threads, a stable per-minute p99.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_realtime import MEDIA, YUNET  # noqa: E402

from fer_core.realtime.sources import FrameSource  # noqa: E402


def proc_status() -> tuple[float, int, int]:
    """(RSS in MB, native threads, open file descriptors) of this process, from /proc."""
    rss = threads = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss / 1024.0, threads, len(os.listdir("/proc/self/fd"))


class LoopedClip(FrameSource):
    """One clip decoded again and again (a fresh ``VideoCapture`` per loop) until the deadline.

    Every ``sample_s`` seconds it records ``(t, RSS MB, native threads, fds, Python threads, load1)``, and the frame
    index at which each minute starts; nothing per frame, so the bookkeeping itself does not grow memory.
    """

    def __init__(self, clip: Path, seconds: float, sample_s: float = 2.0):
        self.clip, self.seconds, self.sample_s = clip, seconds, sample_s
        self.fps, self.name = 60.0, f"{clip.name} (looped)"
        self.samples: list[tuple[float, float, int, int, int, float]] = []
        self.minute_starts: list[int] = []
        self.loops = 0

    def __iter__(self):
        t0 = time.perf_counter()
        idx, next_sample = 0, 0.0
        while True:
            cap = cv2.VideoCapture(str(self.clip))
            self.loops += 1
            while True:
                now = time.perf_counter() - t0
                if now >= self.seconds:
                    cap.release()
                    return
                ok, frame = cap.read()
                if not ok:
                    break
                if now >= next_sample:
                    rss, threads, fds = proc_status()
                    self.samples.append((now, rss, threads, fds, threading.active_count(), os.getloadavg()[0]))
                    next_sample += self.sample_s
                if int(now // 60) >= len(self.minute_starts):
                    self.minute_starts.append(idx)
                yield idx, idx / self.fps, frame
                idx += 1
            cap.release()


def per_minute_latency(csv_path: Path, starts: list[int]) -> list[tuple[int, int, float, float]]:
    """``(minute, frames, p50, p99)`` of the logged ``frame_ms`` per wall-clock minute of the run."""
    import pandas as pd

    df = pd.read_csv(csv_path, usecols=["frame", "frame_ms"]).drop_duplicates("frame")
    bounds = [*starts, int(df["frame"].max()) + 1]
    out = []
    for m in range(len(starts)):
        v = df.loc[(df["frame"] >= bounds[m]) & (df["frame"] < bounds[m + 1]), "frame_ms"].to_numpy()
        if len(v):
            out.append((m + 1, len(v), float(np.percentile(v, 50)), float(np.percentile(v, 99))))
    return out


def report(src: LoopedClip, summary, warm_s: float) -> None:
    s = np.array(src.samples)
    warm = s[s[:, 0] >= warm_s][0] if (s[:, 0] >= warm_s).any() else s[0]
    end = s[-1]
    print(f"frames {summary.frames} in {src.loops} loops, {summary.fps:.1f} FPS overall; load1 over the run: "
          f"min {s[:, 5].min():.1f} / median {np.median(s[:, 5]):.1f} / max {s[:, 5].max():.1f} "
          f"on {os.cpu_count()} CPUs")  # fmt: skip
    print(f"RSS MB: first sample {s[0, 1]:.0f}, after {warm_s:.0f} s warm-up {warm[1]:.0f}, end {end[1]:.0f}, "
          f"peak {s[:, 1].max():.0f}; growth after warm-up {100 * (end[1] - warm[1]) / warm[1]:+.2f}% "
          f"[target <= 5%: {'PASS' if end[1] <= 1.05 * warm[1] else 'FAIL'}]")  # fmt: skip
    for col, name in ((2, "native threads"), (4, "Python threads"), (3, "open fds")):
        print(f"{name}: after warm-up {int(warm[col])}, end {int(end[col])}, min {int(s[:, col].min())}, "
              f"max {int(s[:, col].max())} [no growth: {'PASS' if end[col] <= warm[col] else 'FAIL'}]")  # fmt: skip
    print("minute  frames   frame p50 ms   frame p99 ms")
    for m, n, p50, p99 in per_minute_latency(summary.csv_path, src.minute_starts):
        print(f"{m:>6} {n:>7} {p50:>14.1f} {p99:>14.1f}")
    print(f"whole run: frame latency p50 {summary.frame_latency_ms['p50']:.1f} ms, p99 "
          f"{summary.frame_latency_ms['p99']:.1f} ms, max {summary.frame_latency_ms['max']:.1f} ms")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--clip", type=Path, default=MEDIA / "keshavoct98_vid1.mp4")
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads")
    ap.add_argument("--serial", action="store_true", help="the serial runner instead of the pipelined one")
    a = ap.parse_args()
    if not (a.clip.is_file() and YUNET.is_file()):
        sys.exit(f"needs {a.clip} and {YUNET}")
    from fer_core.realtime import DetectorConfig, RunnerConfig, run

    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        # built in a child process: torch and timm would otherwise sit in this process's RSS
        code = (
            "import sys; from pathlib import Path; from bench_realtime import student_bundle; "
            "student_bundle(Path(sys.argv[1]))"
        )
        subprocess.run([sys.executable, "-c", code, str(tmp)], check=True, cwd=Path(__file__).resolve().parent)
        bundle = tmp / "bundle"
        cfg = RunnerConfig(detector=DetectorConfig(kind="yunet", model_path=YUNET), display="none",
                           threads=a.threads, pipeline=not a.serial)  # fmt: skip
        src = LoopedClip(a.clip, a.minutes * 60.0)
        print(f"soak: {a.clip.name} looped for {a.minutes:g} min, YuNet every frame, "
              f"{'serial' if a.serial else 'pipelined'} runner, ORT threads {a.threads}", flush=True)  # fmt: skip
        summary = run(bundle, src, cfg, tmp / "soak")
        report(src, summary, warm_s=min(60.0, a.minutes * 60.0 / 5))


if __name__ == "__main__":
    main()
