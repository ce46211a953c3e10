"""Distillation and Nested Learning costs: student step throughput (CE vs KD vs DKD) and NL memory/time vs plain KD.

Run: ``.venv/bin/python benchmarks/bench_distill.py [--quick]``. Figures are ratios against baselines measured in the
same run (plain CE for throughput, plain KD + AdamW for Nested Learning). Each Nested Learning configuration runs in
its own subprocess so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import timm
import torch
import torch.nn.functional as F

from fer_core.data.dataset import ArrayDataset
from fer_core.distill import DistillConfig, make_distill_criterion
from fer_core.nested import DeepMemoryOptimizer, MemoryMLP, MetaSource, NestedConfig, NestedStepRunner
from fer_core.nested.memory import _rss_mb
from fer_core.preprocess import PreprocessSpec

MODEL, PX, BATCH, C = "test_resnet", 48, 64, 7  # double-backward capable (full unroll); mobilenetv3 hardsigmoid is not


def setup(n: int, seed: int = 0):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    data = ArrayDataset(
        rng.integers(0, 256, (n, PX, PX), dtype=np.uint8), rng.integers(0, C, n), [f"b{i}" for i in range(n)],
        PreprocessSpec(size=(PX, PX)),
    )  # fmt: skip
    teachers = rng.normal(0, 2, (n, 2, C)).astype(np.float32)
    model = timm.create_model(MODEL, pretrained=False, num_classes=C, in_chans=1)
    return data, teachers, model


def criteria(teachers: np.ndarray, ids: list[str]) -> dict:
    def ce(logits, targets, idx, epoch):
        return {"loss": F.cross_entropy(logits, targets)}

    one = teachers[:, :1]
    return {
        "ce": ce,
        "kd": make_distill_criterion(DistillConfig(teachers=("t",), loss={"kind": "kd"}), one, ids),
        "dkd": make_distill_criterion(DistillConfig(teachers=("t",), loss={"kind": "dkd"}), one, ids),
        "dkd_fused2+negl": make_distill_criterion(
            DistillConfig(strategy="fused", teachers=("a", "b"), loss={"kind": "dkd"}, negl={"weight": 0.1}),
            teachers,
            ids,
        ),  # fmt: skip
    }


def throughput(steps: int, rounds: int) -> None:
    data, teachers, model = setup(BATCH * 8)
    crits = criteria(teachers, data.sample_ids)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(0)

    def run(crit, n):
        t0 = time.perf_counter()
        for _ in range(n):
            idx = rng.choice(len(data), BATCH, replace=False)
            x, y = data.get_batch(idx, train=True, rng=rng)
            loss = crit(model(x), y, torch.from_numpy(idx), 1)["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return (time.perf_counter() - t0) / n

    model.train()
    for c in crits.values():
        run(c, 2)  # warm-up
    times: dict[str, list[float]] = {k: [] for k in crits}
    for _ in range(rounds):  # interleaved rounds: a shared CPU's load drifts, so every criterion sees the same drift
        for k, c in crits.items():
            times[k].append(run(c, steps))
    base = statistics.median(times["ce"])
    loss_ms = loss_only(crits, data, rng)
    print(f"\n(a) student step, {MODEL} {PX}px grey, batch {BATCH}, {torch.get_num_threads()} threads")
    for k, v in times.items():
        med = statistics.median(v)
        implied = (base + (loss_ms[k] - loss_ms["ce"]) / 1000) / base
        print(
            f"  {k:18s} {BATCH / med:7.1f} img/s  {1000 * med:7.1f} ms/step  x{med / base:.3f} vs CE (measured)   "
            f"loss fwd+bwd {loss_ms[k]:.3f} ms -> x{implied:.4f} vs CE (implied)"
        )


def loss_only(crits: dict, data, rng: np.random.Generator, reps: int = 300) -> dict[str, float]:
    """Median ms of criterion forward+backward on ``[B, C]`` logits alone (robust to a noisy shared CPU)."""
    out = {}
    for k, c in crits.items():
        samples = []
        for _ in range(reps):
            idx = rng.choice(len(data), BATCH, replace=False)
            z = torch.randn(BATCH, C, requires_grad=True)
            y = torch.from_numpy(data.labels[idx])
            t0 = time.perf_counter()
            c(z, y, torch.from_numpy(idx), 1)["loss"].backward()
            samples.append(time.perf_counter() - t0)
        out[k] = 1000 * statistics.median(samples)
    return out


NL_CONFIGS = {
    "plain_kd_adamw": None,
    "nl_K1_unroll1": {"meta_every": 1, "unroll": 1},
    "nl_K4_unroll4_full": {"meta_every": 4, "unroll": 4},
    "nl_K4_unroll1": {"meta_every": 4, "unroll": 1},
    "nl_K4_unroll1_ckpt": {"meta_every": 4, "unroll": 1, "checkpoint_activations": True},
}


def nl_child(name: str, steps: int) -> dict:
    """One configuration in this process: peak RSS over the loop minus RSS before it, tracemalloc peak, step time."""
    torch.set_num_threads(2)
    data, teachers, model = setup(BATCH * 12)
    crit = make_distill_criterion(DistillConfig(teachers=("t",), loss={"kind": "kd"}), teachers[:, :1], data.sample_ids)
    rng = np.random.default_rng(0)
    rows = np.arange(len(data))
    spec = NL_CONFIGS[name]
    model.train()
    tracemalloc.start()
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    if spec is None:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        for _ in range(steps):
            idx = rng.choice(rows, BATCH, replace=False)
            x, y = data.get_batch(idx, train=True, rng=rng)
            loss = crit(model(x), y, torch.from_numpy(idx), 1)["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    else:
        # The engine's Nested Learning step runner, driven directly (constant lr, no clipping, like the baseline).
        cfg = NestedConfig(meta_batch_size=BATCH, **spec)
        memory = MemoryMLP(2, cfg.memory_hidden, cfg.memory_layers)
        opt = DeepMemoryOptimizer(list(model.parameters()), memory, cfg, lr=1e-3, weight_decay=0.01)
        st = NestedStepRunner(model, opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0), crit,
                              torch.device("cpu"), micro_batch=BATCH, nested=cfg,
                              meta=MetaSource(data, rows[: BATCH * 2], BATCH, 0))  # fmt: skip
        for gstep in range(steps):
            idx = rng.choice(rows[BATCH * 2 :], BATCH, replace=False)
            x, y = data.get_batch(idx, train=True, rng=rng)
            st.step(x, y, torch.from_numpy(idx), [data.sample_ids[i] for i in idx], 1, gstep)
        st.end_epoch(1)
    dt = (time.perf_counter() - t0) / steps
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "name": name,
        "step_s": dt,
        "rss_delta_mb": peak_rss - rss0,
        "tracemalloc_peak_mb": tracemalloc.get_traced_memory()[1] / 2**20,
    }


def nested(steps: int) -> None:
    rows = []
    for name in NL_CONFIGS:
        out = subprocess.run(
            [sys.executable, __file__, "--child", name, "--steps", str(steps)],
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    base = rows[0]
    print(f"\n(b) Nested Learning vs plain KD+AdamW, {MODEL} {PX}px, batch {BATCH}, CPU 2 threads, {steps} inner steps")
    print("    (peak RSS over the loop minus RSS before it; tracemalloc sees Python objects only, not torch tensors)")
    for r in rows:
        print(
            f"  {r['name']:20s} {1000 * r['step_s']:7.1f} ms/step x{r['step_s'] / base['step_s']:.2f}   "
            f"peak RSS +{r['rss_delta_mb']:7.1f} MiB x{r['rss_delta_mb'] / base['rss_delta_mb']:.2f}   "
            f"tracemalloc {r['tracemalloc_peak_mb']:.1f} MiB"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--child")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--part", choices=["a", "b", "all"], default="all")
    a = ap.parse_args()
    torch.set_num_threads(2)
    if a.child:
        print(json.dumps(nl_child(a.child, a.steps)))
        return
    if a.part in ("a", "all"):
        throughput(steps=5 if a.quick else 20, rounds=3 if a.quick else 5)
    if a.part in ("b", "all"):
        nested(steps=4 if a.quick else 32)


if __name__ == "__main__":
    main()
