"""Nested Learning: meta-gradients reach the memory, training learns a separable task, K controls meta cost."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fer_core.config import validate_config
from fer_core.data.dataset import ArrayDataset
from fer_core.errors import ConfigError, GateFailedError
from fer_core.models.checkpoint import read_checkpoint
from fer_core.nested import NestedConfig, train_nested
from fer_core.nested.steps import NestedStepper
from fer_core.preprocess import PreprocessSpec
from fer_core.sink import ListSink

C = 3


def make_data(n, seed):
    """Class c lights up horizontal band c of a 12×12 image: linearly separable through the noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, n)
    px = rng.integers(0, 90, (n, 12, 12))
    for i, c in enumerate(y):
        px[i, 4 * c : 4 * c + 4] += 120
    return ArrayDataset(px.astype(np.uint8), y, [f"s{seed}-{i}" for i in range(n)], PreprocessSpec(size=(12, 12)))


def ce_criterion(logits, targets, idx, epoch):
    return {"loss": F.cross_entropy(logits, targets)}


def tiny_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(144, 16), nn.ReLU(), nn.Linear(16, C))


def cfg(**kw):
    base = dict(epochs=3, batch_size=16, lr=5e-3, meta_batch_size=16, device="cpu", augment=False, memory_log_every=5)
    base["gates"] = {"epoch": 3, "max_val_loss": 1.0, "min_macro_f1": 0.8}
    return NestedConfig(**(base | kw))


TRAIN, VAL = make_data(160, 0), make_data(60, 1)


@pytest.mark.parametrize("unroll", [1, 2])
def test_memory_parameters_receive_nonzero_meta_gradients(unroll):
    model = tiny_model()
    c = cfg(meta_every=2, unroll=unroll, checkpoint_activations=unroll == 2)
    st = NestedStepper(model, ce_criterion, TRAIN, np.arange(16), c, torch.device("cpu"), np.random.default_rng(0))
    before = [p.detach().clone() for p in st.memory.parameters()]
    w0 = model[1].weight.detach().clone()
    st.meta_window([[np.arange(16, 32)] for _ in range(unroll)], epoch=0)
    grads = [p.grad for p in st.memory.parameters()]
    assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)
    assert all(not torch.equal(a, b) for a, b in zip(before, st.memory.parameters(), strict=True))
    assert not torch.equal(w0, model[1].weight) and st.meta_steps == 1 and st.inner_steps == unroll


def test_loss_decreases_on_separable_problem_and_writes_outputs(tmp_path):
    sink = ListSink()
    res = train_nested(cfg(meta_every=4, accum_steps=2), tiny_model(), TRAIN, VAL, ce_criterion, tmp_path, sink)
    losses = sink.series("train/loss")
    assert losses[-1] < 0.5 * losses[0]
    assert res.final_metrics["val/macro_f1"] >= 0.8 and res.final_metrics["val/loss"] <= 1.0
    assert res.checkpoint_path.is_file() and res.metrics_path.is_file()
    state = read_checkpoint(res.checkpoint_path)["train_state"]
    assert set(state["memory_state"]) and state["nested_config"]["meta_every"] == 4
    assert sink.series("mem/rss_peak_mb") and all(v > 0 for v in sink.series("mem/rss_peak_mb"))


def test_meta_every_4_does_fewer_meta_steps_than_1(tmp_path):
    quick = dict(epochs=1, gates={"enabled": False})
    r1 = train_nested(cfg(meta_every=1, **quick), tiny_model(), TRAIN, VAL, ce_criterion, tmp_path / "k1")
    r4 = train_nested(cfg(meta_every=4, **quick), tiny_model(), TRAIN, VAL, ce_criterion, tmp_path / "k4")
    assert r1.inner_steps == r4.inner_steps == 9  # 144 inner rows / 16
    assert r1.meta_steps == 9 and r4.meta_steps == 2  # meta windows end at steps 4 and 8; step 9 is plain
    assert r4.meta_steps < r1.meta_steps


def test_failed_gate_writes_nothing(tmp_path):
    strict = cfg(epochs=1, lr=1e-6, gates={"epoch": 1, "min_macro_f1": 0.99, "max_val_loss": 0.01})
    with pytest.raises(GateFailedError, match="nothing was written"):
        train_nested(strict, tiny_model(), TRAIN, VAL, ce_criterion, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize(
    "data", [{"unroll": 5, "meta_every": 4}, {"meta_every": 0}, {"memory_layers": 0}, {"meta_holdout": 1.0}]
)
def test_config_validation(data):
    with pytest.raises(ConfigError):
        validate_config(data, NestedConfig)
