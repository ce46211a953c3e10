"""The CUDA code paths on a real GPU: device batches, bf16 AMP, real OOM back-off, Nested Learning memory, resume.

Every test needs CUDA (``-m gpu``; skipped without it). Sizes follow configs/fer2013_gpu.yaml (48 px stored, 112 px in).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fer_core.data.dataset import ArrayDataset, TrainAugment
from fer_core.models import ModelConfig, load_checkpoint
from fer_core.preprocess import PreprocessSpec
from fer_core.train import TrainConfig, TrainingDivergedError, train

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
CPU_REF = TrainAugment(flip=True, shift=0.1, rotate_deg=10.0, scale=0.1, erase_p=0.25)


def faces(n: int, seed: int = 0, aug: TrainAugment | None = None) -> ArrayDataset:
    """Class c: mean brightness 20 + 32 c plus noise, 48 px grey (learnable, flip/shift invariant)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 7
    px = (20 + 32 * y[:, None, None] + rng.integers(0, 24, (n, 48, 48))).astype(np.uint8)
    return ArrayDataset(px, y, [f"g{seed}-{i}" for i in range(n)], PreprocessSpec(resize_interpolation="cubic"), aug)


def cfg(**kw) -> TrainConfig:
    base = dict(model=ModelConfig(name="resnet18", img_size=112), epochs=2, batch_size=64, lr=2e-3, warmup_epochs=0.2,
                device="cuda", topk=1)  # fmt: skip
    return TrainConfig(**(base | kw))


def test_device_batches_on_cuda_equal_the_cpu_ones():
    ds = faces(64, aug=TrainAugment())  # flip + integer shift: a pure gather, exact on any device
    gpu = ds.to("cuda")
    idx = np.arange(0, 64, 3)
    a, ya = ds.get_batch(idx, train=True, rng=np.random.default_rng(5))
    b, yb = gpu.get_batch(idx, train=True, rng=np.random.default_rng(5))
    assert b.is_cuda and yb.is_cuda and torch.equal(a, b.cpu()) and torch.equal(ya, yb.cpu())
    warp = ds.with_augment(CPU_REF.model_copy(update={"erase_p": 0.0})).for_input(112)
    c, _ = warp.get_batch(idx, train=True, rng=np.random.default_rng(5))
    d, _ = warp.to("cuda").get_batch(idx, train=True, rng=np.random.default_rng(5))
    level = 2 / 255  # one grey level after normalisation (std 0.5): kernels may round a few pixels the other way
    assert (c - d.cpu()).abs().max() <= level + 1e-5 and ((c - d.cpu()).abs() > 1e-5).float().mean() < 0.01


def test_bf16_amp_trains_and_restores_cudnn_benchmark(tmp_path):
    before = torch.backends.cudnn.benchmark
    res = train(cfg(amp=True), faces(512, aug=CPU_REF), faces(128, 1), tmp_path)
    assert torch.backends.cudnn.benchmark == before
    assert res.history[-1]["train/loss"] < res.history[0]["train/loss"] and np.isfinite(res.final_metrics["loss"])
    model, _ = load_checkpoint(res.last_checkpoint)
    assert all(p.dtype == torch.float32 for p in model.parameters())  # autocast, not a bf16 model


def test_a_real_oom_backs_off_and_keeps_the_effective_batch(tmp_path):
    """A batch that cannot fit a capped allocator: the step halves its micro-batch until it fits, on real OOMs."""
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction(4 * 2**30 / torch.cuda.get_device_properties(0).total_memory)
    try:
        res = train(cfg(epochs=1, batch_size=1024, model=ModelConfig(name="resnet18", img_size=224), amp=False),
                    faces(1024), faces(64, 1), tmp_path)  # fmt: skip
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
    assert res.oom_events and res.micro_batch < 1024 and res.micro_batch * res.accum_steps >= 1024
    assert all(e["effective_batch"] == 1024 for e in res.oom_events) and np.isfinite(res.history[0]["train/loss"])


def test_nested_learning_peak_memory_is_within_1_5x_plain_kd(tmp_path):
    from fer_core.distill import DistillConfig, make_distill_criterion
    from fer_core.nested import NestedConfig, train_nested

    tr, va = faces(1024), faces(128, 1)
    rng = np.random.default_rng(0)
    dcfg = DistillConfig(strategy="pairwise", teachers=("a", "b"), loss={"kind": "kd", "alpha": 0.7, "T": 2.0})
    kd = make_distill_criterion(dcfg, rng.normal(size=(len(tr), 2, 7)).astype(np.float32), tr.sample_ids)
    student = cfg(epochs=1, batch_size=128, model=ModelConfig(name="mobilenetv3_large_100", img_size=112))
    peaks = {}
    for name in ("kd", "nested"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        if name == "kd":
            train(student, tr, va, tmp_path / name, criterion=kd)
        else:
            train_nested(NestedConfig(gates={"enabled": False}), student, tr, va, kd, tmp_path / name)
        peaks[name] = torch.cuda.max_memory_allocated() / 2**20
    assert peaks["nested"] <= 1.5 * peaks["kd"], peaks


class Killed(Exception):
    pass


def test_resume_after_a_kill_matches_an_uninterrupted_run(tmp_path):
    run = cfg(epochs=3, deterministic=True, batch_size=128)
    tr, va = faces(512, aug=CPU_REF), faces(128, 1)
    full = train(run, tr, va, tmp_path / "full")

    def kill(step, micro):
        if step == 9:  # mid epoch 2 (4 steps per epoch)
            raise Killed

    with pytest.raises(Killed):
        train(run, tr, va, tmp_path / "run", fault_injector=kill)
    resumed = train(run, tr, va, tmp_path / "run")
    assert resumed.start_epoch == 2
    a, _ = load_checkpoint(full.last_checkpoint)
    b, _ = load_checkpoint(resumed.last_checkpoint)
    for (k, va_), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.allclose(va_.float(), vb.float(), atol=1e-5), k  # deterministic kernels: equal in practice


def test_the_nan_guard_names_the_step_on_cuda_with_deferred_reads(tmp_path):
    calls = []

    def criterion(logits, targets, idx, epoch):
        calls.append(1)
        loss = torch.nn.functional.cross_entropy(logits, targets)
        return {"loss": loss * float("nan") if len(calls) == 3 else loss}

    with pytest.raises(TrainingDivergedError) as e:
        train(cfg(epochs=1, log_every=50), faces(512), faces(64, 1), tmp_path, criterion=criterion)
    assert e.value.step == 2 and len(calls) == 8  # read back at the epoch's end, named by its own step


def test_compiled_channels_last_forward_trains(tmp_path):
    res = train(cfg(epochs=1, compile=True, channels_last=True), faces(512, aug=CPU_REF), faces(64, 1), tmp_path)
    assert np.isfinite(res.history[0]["train/loss"])
