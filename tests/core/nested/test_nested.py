"""Nested Learning through the engine: meta-gradients, learning, contract-3.3 checkpoints, resume, gates, device."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from fer_core.config import validate_config
from fer_core.data.dataset import ArrayDataset
from fer_core.errors import ConfigError, GateFailedError
from fer_core.models import ModelConfig, load_checkpoint
from fer_core.models.checkpoint import read_checkpoint
from fer_core.nested import MetaSource, NestedConfig, NestedStepRunner, train_nested
from fer_core.nested.train import _optimizer
from fer_core.preprocess import PreprocessSpec
from fer_core.sink import ListSink
from fer_core.train import TrainConfig, train
from tests.core.train._data import separable

C = 3


def bands(n, seed):
    """Class c lights up horizontal band c of a 12×12 image: linearly separable through the noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, n)
    px = rng.integers(0, 90, (n, 12, 12))
    for i, c in enumerate(y):
        px[i, 4 * c : 4 * c + 4] += 120
    return ArrayDataset(px.astype(np.uint8), y, [f"s{seed}-{i}" for i in range(n)], PreprocessSpec(size=(12, 12)))


def ce(logits, targets, idx, epoch):
    return {"loss": F.cross_entropy(logits, targets)}


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(144, 16), nn.ReLU(), nn.Linear(16, C))


TRAIN, VAL = bands(160, 0), bands(60, 1)
MLP_TC = TrainConfig(model=ModelConfig(name="test_resnet", num_classes=C, img_size=12), epochs=3, batch_size=16,
                     lr=5e-3, warmup_epochs=0.2, num_threads=1, deterministic=True, topk=1)  # fmt: skip
RESNET_TC = TrainConfig(model=ModelConfig(name="test_resnet", img_size=16), epochs=3, batch_size=8, lr=1e-2,
                        warmup_epochs=0.5, num_threads=1, deterministic=True, topk=1)  # fmt: skip
QUICK = {"meta_batch_size": 16, "augment": False, "gates": {"enabled": False}}


@pytest.fixture(scope="module")
def faces():
    return separable(5, seed=0), separable(2, seed=1)


class Killed(Exception):
    pass


@pytest.mark.parametrize("unroll", [1, 2])
def test_memory_parameters_receive_nonzero_meta_gradients(unroll):
    model = mlp()
    ncfg = NestedConfig(meta_every=2, unroll=unroll, checkpoint_activations=unroll == 2, **QUICK)
    opt = _optimizer(ncfg, model, MLP_TC)
    runner = NestedStepRunner(model, opt, LambdaLR(opt, lambda s: 1.0), ce, torch.device("cpu"), micro_batch=8,
                              nested=ncfg, meta=MetaSource(TRAIN, np.arange(16), 16, 0))  # fmt: skip
    phi0 = [p.detach().clone() for p in opt.memory.parameters()]
    w0 = model[1].weight.detach().clone()
    rows = np.arange(16, 32)
    x, y = TRAIN.get_batch(rows)
    for gstep in range(2 - unroll, 2):  # the window's steps: positions meta_every - unroll .. meta_every - 1
        runner.step(x, y, torch.from_numpy(rows), [str(r) for r in rows], 0, gstep)
    grads = [p.grad for p in opt.memory.parameters()]
    assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)
    assert all(not torch.equal(a, b) for a, b in zip(phi0, opt.memory.parameters(), strict=True))
    assert not torch.equal(w0, model[1].weight) and opt.meta_steps == 1 and opt.t == unroll and not opt.in_window


def test_nested_run_learns_passes_its_gates_and_logs_memory(tmp_path):
    sink = ListSink()
    gates = {"epoch": 3, "max_val_loss": 1.0, "min_macro_f1": 0.8}
    ncfg = NestedConfig(meta_every=4, accum_steps=2, memory_log_every=5, **(QUICK | {"gates": gates}))
    res = train_nested(ncfg, MLP_TC, TRAIN, VAL, ce, tmp_path, sink, model=mlp())
    losses = sink.series("train/loss")
    assert len(losses) == 3 and losses[-1] < 0.5 * losses[0]
    assert res.final_metrics["macro_f1"] >= 0.8 and res.final_metrics["loss"] <= 1.0
    # 144 inner rows (16 held out) / batch 16 = 9 steps per epoch; windows close at steps 3, 7 (+4 per 4 steps)
    assert res.inner_steps == 27 and res.meta_steps == 6 and res.accum_steps == 2
    assert sink.series("mem/rss_peak_mb") and all(v > 0 for v in sink.series("mem/rss_peak_mb"))
    assert res.peak_memory_mb > 0 and np.isfinite(sink.series("meta/loss")[-1])
    state = read_checkpoint(res.last_checkpoint)["train_state"]["optimizer"]["deep_memory"]
    assert state["meta_steps"] == 6 and set(state["memory"])


def test_checkpoint_is_contract_3_3_and_validation_matches_normal_training(faces, tmp_path):
    ncfg = NestedConfig(epochs=1, meta_every=2, **QUICK)
    res = train_nested(ncfg, RESNET_TC, *faces, None, tmp_path / "nl", dataset_sha256="d" * 64)
    plain = train(RESNET_TC.model_copy(update={"epochs": 1}), *faces, tmp_path / "plain")
    model, meta = load_checkpoint(res.last_checkpoint, expected=RESNET_TC.model)
    assert meta.classes[:2] == ("angry", "disgust") and meta.epoch == 0 and meta.dataset_sha256 == "d" * 64
    assert meta.config["epochs"] == 1 and meta.config["nested"]["meta_every"] == 2
    assert meta.metrics == res.final_metrics and model(torch.zeros(2, 1, 16, 16)).shape == (2, 7)
    assert set(res.final_metrics) == set(plain.final_metrics)
    assert set(plain.history[0]) <= set(res.history[0])  # the same row, plus meta/* and mem/*
    assert {p.parent.name for ps in res.best_checkpoints.values() for p in ps} == {"macro_f1", "minority_f1"}


def test_killed_run_resumes_from_last_pt_like_an_uninterrupted_one(faces, tmp_path):
    ncfg = NestedConfig(meta_every=3, unroll=2, checkpoint_activations=True, **QUICK)
    full = train_nested(ncfg, RESNET_TC, *faces, None, tmp_path / "full")

    def kill(step, micro):
        if step == 7:  # epoch 1's last step (4 steps per epoch), the second step of a meta window
            raise Killed

    with pytest.raises(Killed):
        train_nested(ncfg, RESNET_TC, *faces, None, tmp_path / "run", fault_injector=kill)
    resumed = train_nested(ncfg, RESNET_TC, *faces, None, tmp_path / "run")
    assert resumed.start_epoch == 1 and len(resumed.history) == 3
    a, _ = load_checkpoint(full.last_checkpoint)
    b, _ = load_checkpoint(resumed.last_checkpoint)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k
    assert resumed.final_metrics == full.final_metrics
    timing = {"train/img_per_s", "mem/peak_mb"}  # wall-clock and process figures, the rest must replay exactly
    assert [{k: v for k, v in r.items() if k not in timing} for r in resumed.history] == [
        {k: v for k, v in r.items() if k not in timing} for r in full.history]  # fmt: skip
    assert (resumed.meta_steps, resumed.inner_steps) == (full.meta_steps, full.inner_steps) == (5, 12)
    mem = [read_checkpoint(r.last_checkpoint)["train_state"]["optimizer"]["deep_memory"] for r in (full, resumed)]
    assert all(torch.equal(mem[0]["memory"][k], mem[1]["memory"][k]) for k in mem[0]["memory"])
    other = ncfg.model_copy(update={"meta_every": 2, "unroll": 1})
    with pytest.raises(ConfigError, match="plug-in config"):
        train_nested(other, RESNET_TC, *faces, None, tmp_path / "run")


def test_meta_every_4_does_fewer_meta_steps_than_1(tmp_path):
    tc = MLP_TC.model_copy(update={"epochs": 1})
    r1 = train_nested(NestedConfig(meta_every=1, **QUICK), tc, TRAIN, VAL, ce, tmp_path / "k1", model=mlp())
    r4 = train_nested(NestedConfig(meta_every=4, **QUICK), tc, TRAIN, VAL, ce, tmp_path / "k4", model=mlp())
    assert r1.inner_steps == r4.inner_steps == 9  # 144 inner rows / 16
    assert r1.meta_steps == 9 and r4.meta_steps == 2  # windows at steps 3 and 7; step 8 is plain


def test_failed_gates_write_nothing(tmp_path):
    tc = MLP_TC.model_copy(update={"epochs": 1, "lr": 1e-6})
    strict = NestedConfig(**QUICK | {"gates": {"epoch": 1, "min_macro_f1": 0.99, "max_val_loss": 0.01}})
    with pytest.raises(GateFailedError, match=r"val loss .* > 0.01.*nothing was written"):
        train_nested(strict, tc, TRAIN, VAL, ce, tmp_path / "out", model=mlp())
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.pt"))


def test_run_fields_override_the_train_config_and_gates_become_smoke_gates():
    ncfg = NestedConfig(epochs=2, lr=0.5, seed=7, gates={"epoch": 2, "max_val_loss": 2.0, "min_macro_f1": 0.3})
    cfg = ncfg.train_config(RESNET_TC)
    assert (cfg.epochs, cfg.lr, cfg.seed, cfg.batch_size, cfg.device) == (2, 0.5, 7, 8, "auto")
    assert (cfg.smoke.check_epochs, cfg.smoke.max_val_loss, cfg.smoke.min_macro_f1) == (2, 2.0, 0.3)
    assert NestedConfig(gates={"enabled": False}).train_config(RESNET_TC).smoke is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_the_device_is_the_engines_choice(tmp_path):
    with pytest.raises(ConfigError, match="device='cuda' but CUDA is not available"):
        train_nested(NestedConfig(device="cuda", **QUICK), MLP_TC, TRAIN, VAL, ce, tmp_path, model=mlp())
    res = train_nested(NestedConfig(epochs=1, **QUICK), MLP_TC, TRAIN, VAL, ce, tmp_path / "auto", model=mlp())
    assert read_checkpoint(res.last_checkpoint)["train_state"]["optimizer"]["deep_memory"]["m"].device.type == "cpu"


@pytest.mark.parametrize(
    "data", [{"unroll": 5, "meta_every": 4}, {"meta_every": 0}, {"memory_layers": 0}, {"meta_holdout": 1.0}]
)
def test_config_validation(data):
    with pytest.raises(ConfigError):
        validate_config(data, NestedConfig)
