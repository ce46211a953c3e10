"""Issue 22's CPU figures: the device batch path (device=cpu) against today's host path, measured in the same run.

1. Host time to produce one 224 px batch of 256 for the GPU profile: today's path (faces decoded at 224x224x3,
   gathered, augmented on the host, normalised) vs the device path (faces packed at 48x48x1, resized to 224 and
   replicated to 3 channels inside the batch builder), for the default policy (flip + shift) and the CPU reference's
   (flip, shift, rotation, zoom, erasing). CPU seconds of one torch thread, best of several repetitions.
2. Host time of a 48 px batch of 64 (the CPU teacher's), today's path vs the device path with device=cpu.
3. A 48 px teacher epoch on CPU (the CPU reference's ResNet-18 unit: batch 64, one thread, its augmentation) through
   ``fer_core.train.train``, today's engine vs the new one, alternating runs; the ratio must be >= 1.0.

"Today" is the library at ``--baseline`` (default: the commit before the device path), extracted with ``git archive``
into a temporary folder and run in a child process beside the working tree's.

Run: ``.venv/bin/python benchmarks/bench_device_batch.py [--quick] [--baseline REV]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "4c442b7^"  # the commit before "Data on the device"
CPU_AUG = {"flip": True, "shift": 0.1, "rotate_deg": 10.0, "scale": 0.1, "erase_p": 0.25}
GPU_SPEC = {"size": (224, 224), "channels": 3, "color": "rgb", "mean": (0.485, 0.456, 0.406),
            "std": (0.229, 0.224, 0.225), "resize_interpolation": "cubic"}  # fmt: skip


def _child_batch48(aug: dict, reps: int) -> dict:
    """CPU seconds per 48 px batch of 64 (the CPU teacher's, one thread) on the tree first on ``sys.path``."""
    import numpy as np
    import torch

    from fer_core.data.dataset import ArrayDataset, TrainAugment
    from fer_core.preprocess import PreprocessSpec

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    n = 4096
    ds = ArrayDataset(rng.integers(0, 256, (n, 48, 48), dtype=np.uint8), np.zeros(n, np.int64),
                      [str(i) for i in range(n)], PreprocessSpec(), TrainAugment(**aug))  # fmt: skip
    times = []
    for r in range(reps + 1):
        idx = rng.integers(0, n, 64)
        t = time.process_time()
        for _ in range(20):
            ds.get_batch(idx, train=True, rng=rng)
        if r:
            times.append((time.process_time() - t) / 20)
    return {"best_s": min(times), "median_s": statistics.median(times)}


def _child_batch(mode: str, aug: dict, reps: int) -> dict:
    """CPU seconds per 224 px batch of 256 (one thread) on the tree first on ``sys.path``."""
    import numpy as np
    import torch

    from fer_core.data.dataset import ArrayDataset, TrainAugment
    from fer_core.preprocess import PreprocessSpec

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    n, batch = 1024, 256
    labels, ids = np.zeros(n, np.int64), [str(i) for i in range(n)]
    faces = rng.integers(0, 256, (n, 48, 48), dtype=np.uint8)
    if mode == "today":  # the profile as it was: decoded at 224 px, grey replicated to 3 channels at load
        import cv2

        big = np.stack([cv2.cvtColor(cv2.resize(f, (224, 224), interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2RGB)
                        for f in faces])  # fmt: skip
        ds = ArrayDataset(big, labels, ids, PreprocessSpec(**GPU_SPEC), TrainAugment(**aug))
    else:
        small = PreprocessSpec(size=(48, 48), resize_interpolation="cubic")
        ds = ArrayDataset(faces, labels, ids, small, TrainAugment(**aug)).for_input(224, 3, GPU_SPEC["mean"],
                                                                                     GPU_SPEC["std"])  # fmt: skip
    times = []
    for r in range(reps + 1):
        idx = rng.integers(0, n, batch)
        t = time.process_time()
        x, _ = ds.get_batch(idx, train=True, rng=rng)
        if r:  # the first is a warm-up (allocator, kernels)
            times.append(time.process_time() - t)
    assert tuple(x.shape) == (batch, 3, 224, 224)
    return {"best_s": min(times), "median_s": statistics.median(times)}


def _child_epoch(n: int) -> dict:
    """Training images per second of one 48 px teacher epoch (the engine's own figure) on the tree on sys.path."""
    import numpy as np

    from fer_core.data.dataset import ArrayDataset, TrainAugment
    from fer_core.models import ModelConfig
    from fer_core.preprocess import PreprocessSpec
    from fer_core.train import TrainConfig, train

    rng = np.random.default_rng(0)
    tr = ArrayDataset(rng.integers(0, 256, (n, 48, 48), dtype=np.uint8), rng.integers(0, 7, n),
                      [f"t{i}" for i in range(n)], PreprocessSpec(), TrainAugment(**CPU_AUG))  # fmt: skip
    va = ArrayDataset(rng.integers(0, 256, (128, 48, 48), dtype=np.uint8), rng.integers(0, 7, 128),
                      [f"v{i}" for i in range(128)], PreprocessSpec())  # fmt: skip
    cfg = TrainConfig(model=ModelConfig(name="resnet18", in_chans=1, img_size=48, drop_rate=0.2), epochs=1,
                      batch_size=64, lr=2e-3, warmup_epochs=0.5, num_threads=1, device="cpu", topk=1)  # fmt: skip
    with tempfile.TemporaryDirectory() as d:
        cpu = time.process_time()
        res = train(cfg, tr, va, Path(d))
        cpu = time.process_time() - cpu
    # CPU seconds of the one-thread run: what the unit costs, less inflated than wall time by a loaded machine
    return {"img_cpu_s": n / cpu, "img_s": res.throughput_img_s, "wall_s": res.wall_time_s}


def _run(root: Path, *args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", "--root", str(root), *args], capture_output=True,
                         text=True, check=True, cwd=root)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def _baseline_tree(rev: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "fer_core"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def _ratio_rows(old: Path, today_what, new_what, ms_format: str) -> None:
    """One table row per augmentation policy: the old tree's batch time, the new one's, and their ratio."""
    for policy in ("default", "cpu_ref"):
        today = _run(old, "--what", today_what(policy))["best_s"]
        new = _run(ROOT, "--what", new_what(policy))["best_s"]
        print(f"| {policy} | {today * 1e3:{ms_format}} ms | {new * 1e3:{ms_format}} ms | {today / new:.2f}x |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--baseline", default=BASELINE, help="git revision of today's path")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--root", help=argparse.SUPPRESS)
    ap.add_argument("--what", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        sys.path.insert(0, args.root)
        kind, *rest = args.what.split(":")
        if kind == "batch":
            res = _child_batch(rest[0], CPU_AUG if rest[1] == "cpu_ref" else {}, int(rest[2]))
        elif kind == "batch48":
            res = _child_batch48(CPU_AUG if rest[0] == "cpu_ref" else {}, int(rest[1]))
        else:
            res = _child_epoch(int(rest[0]))
        print(json.dumps(res))
        return
    reps, n_epoch, epoch_reps = (3, 512, 2) if args.quick else (8, 768, 5)
    with tempfile.TemporaryDirectory() as tmp:
        old = _baseline_tree(args.baseline, Path(tmp))
        print(f"baseline {args.baseline}; batch figures: CPU s of one thread, best of {reps}")
        print("| policy | today (224x224x3 stored) | device path (48x48x1 stored) | speed-up |\n|---|---|---|---|")
        _ratio_rows(old, lambda p: f"batch:today:{p}:{reps}", lambda p: f"batch:device:{p}:{reps}", ".0f")
        print("\n| 48 px batch of 64 (CPU teacher) | today | device path, device=cpu | speed-up |\n|---|---|---|---|")
        _ratio_rows(old, lambda p: f"batch48:{p}:{reps}", lambda p: f"batch48:{p}:{reps}", ".2f")
        rates: dict[str, list[float]] = {"today": [], "new": []}
        for _ in range(epoch_reps):  # alternate, so machine load hits both alike
            rates["today"].append(_run(old, "--what", f"epoch:{n_epoch}")["img_cpu_s"])
            rates["new"].append(_run(ROOT, "--what", f"epoch:{n_epoch}")["img_cpu_s"])
        a, b = max(rates["today"]), max(rates["new"])
        print(f"\n48 px ResNet-18 teacher epoch + validation ({n_epoch} images, batch 64, 1 thread, CPU reference "
              f"augmentation), images per CPU-second, best of {epoch_reps} alternating runs:")  # fmt: skip
        runs = {k: [round(x, 1) for x in v] for k, v in rates.items()}
        print(f"  today {a:.1f} {runs['today']}, new {b:.1f} {runs['new']}: new/today = {b / a:.3f}x")


if __name__ == "__main__":
    main()
