"""Engine benchmark: training throughput vs a bare PyTorch loop, and work lost when a run is SIGKILLed mid-epoch.

Run: ``.venv/bin/python benchmarks/bench_engine.py [--quick]``. Both loops use the same model, data, batch order,
augmentation, optimizer, schedule, clipping and thread count; runs alternate so machine load hits both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fer_core.data.dataset import ArrayDataset  # noqa: E402
from fer_core.models import ModelConfig, create_model  # noqa: E402
from fer_core.models.checkpoint import read_checkpoint  # noqa: E402
from fer_core.preprocess import PreprocessSpec  # noqa: E402
from fer_core.train import TrainConfig, train  # noqa: E402
from fer_core.train.schedule import warmup_cosine  # noqa: E402


def make_data(n: int, seed: int) -> ArrayDataset:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 7, n)
    px = rng.integers(0, 256, size=(n, 48, 48), dtype=np.uint8)
    return ArrayDataset(px, labels, [f"b{seed}-{i}" for i in range(n)], PreprocessSpec())


def config(args: argparse.Namespace, epochs: int) -> TrainConfig:
    return TrainConfig(model=ModelConfig(name=args.model, img_size=48), epochs=epochs, batch_size=args.batch,
                       lr=1e-3, warmup_epochs=0.5, num_threads=args.threads, amp=False, seed=0,
                       grad_log_every=1, topk=1)  # fmt: skip


def bare_loop(cfg: TrainConfig, data: ArrayDataset) -> float:
    """The same training step written plainly; returns training images per second."""
    torch.manual_seed(0)
    model = create_model(cfg.model).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    spe = -(-len(data) // cfg.batch_size)
    sched = warmup_cosine(opt, round(cfg.warmup_epochs * spe), cfg.epochs * spe)
    n, t = 0, time.perf_counter()
    for epoch in range(cfg.epochs):
        rng = np.random.default_rng([cfg.seed, epoch, 1])
        perm = np.random.default_rng([cfg.seed, epoch, 0]).permutation(len(data))
        for i in range(0, len(perm), cfg.batch_size):
            x, y = data.get_batch(perm[i : i + cfg.batch_size], train=True, rng=rng)
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad_norm)
            opt.step()
            sched.step()
            n += len(y)
    return n / (time.perf_counter() - t)


def throughput(args: argparse.Namespace) -> dict[str, float]:
    torch.set_num_threads(args.threads)
    tr, va = make_data(args.n_train, 0), make_data(args.n_val, 1)
    cfg = config(args, args.epochs)
    bare, eng, eng_wall = [], [], []

    def run_engine() -> None:
        with tempfile.TemporaryDirectory() as d:
            res = train(cfg, tr, va, Path(d))
        eng.append(res.throughput_img_s)
        eng_wall.append(args.n_train * args.epochs / res.wall_time_s)

    bare_loop(cfg.model_copy(update={"epochs": 1}), make_data(2 * args.batch, 2))  # warm-up (allocator, kernels)
    for r in range(args.repeats):  # ABBA order so drifting machine load hits both loops alike
        for which in ("bare", "engine") if r % 2 == 0 else ("engine", "bare"):
            if which == "bare":
                bare.append(bare_loop(cfg, tr))
            else:
                run_engine()
    b, e, w = float(np.median(bare)), float(np.median(eng)), float(np.median(eng_wall))
    return {"bare_img_s": b, "engine_img_s": e, "ratio_train_loop": e / b, "engine_end_to_end_img_s": w,
            "ratio_end_to_end (incl. validation + checkpoints)": w / b}  # fmt: skip


class _StepFile:
    """Sink writing the latest global step to a file (the parent polls it to time the kill)."""

    def __init__(self, path: Path):
        self.path = path

    def log_metrics(self, metrics, step=None):
        if "grad_norm/mean" in metrics:
            self.path.write_text(str(step))

    def log_params(self, params):
        pass

    def log_artifact(self, path, artifact_path=None):
        pass

    def log_text(self, text, name):
        pass


def child(args: argparse.Namespace) -> None:
    out = Path(args.child)
    res = train(config(args, 3), make_data(args.n_kill, 0), make_data(args.n_val, 1), out, sink=_StepFile(out / "step"))
    print(json.dumps({"start_epoch": res.start_epoch, "epochs": len(res.history)}))


def kill_and_resume(args: argparse.Namespace) -> dict[str, float]:
    spe = -(-args.n_kill // args.batch)
    with tempfile.TemporaryDirectory() as d:
        out = Path(d)
        cmd = [sys.executable, __file__, "--child", d, *sys.argv[1:]]
        proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        target = spe + spe // 2  # halfway through epoch 1
        while proc.poll() is None:
            step = int((out / "step").read_text() or 0) if (out / "step").exists() else 0
            if step >= target and (out / "last.pt").exists():
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        killed_at = int((out / "step").read_text())
        saved = read_checkpoint(out / "last.pt")["train_state"]
        resumed = subprocess.run(cmd, capture_output=True, text=True, check=True)
        info = json.loads(resumed.stdout.strip().splitlines()[-1])
    return {"killed_at_step": killed_at, "checkpoint_step": saved["global_step"], "steps_per_epoch": spe,
            "epochs_lost": (killed_at - saved["global_step"]) / spe, "resumed_start_epoch": info["start_epoch"],
            "epochs_in_history": info["epochs"]}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="small sizes (~2 minutes on 2 shared cores)")
    p.add_argument("--model", default="mobilenetv3_small_050")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    quick = args.quick
    args.n_train, args.n_val, args.n_kill = (512, 64, 256) if quick else (4096, 512, 2048)
    args.epochs, args.repeats = (2, 4) if quick else (3, 6)
    if args.child:
        child(args)
        return
    print(f"model {args.model}, 48 px grey, batch {args.batch}, {args.threads} threads, CPU, load {os.getloadavg()}")
    print(json.dumps(throughput(args), indent=2))
    print(json.dumps(kill_and_resume(args), indent=2))


if __name__ == "__main__":
    main()
