"""The device loop on CPU: deferred reads change nothing but when the host looks, the NaN guard still names the step
that diverged, and the engine feeds the model its input size and channels from the packed data."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from fer_core.models import ModelConfig, load_checkpoint
from fer_core.models.checkpoint import read_checkpoint
from fer_core.sink import ListSink
from fer_core.train import TrainConfig, TrainingDivergedError, train
from fer_core.train.config import RUNTIME_FIELDS
from fer_core.train.step import PendingCheck, StepOutput, resolve_outputs
from tests.core.train._data import TinyCNN, separable

BASE = TrainConfig(model=ModelConfig(name="test_resnet", img_size=16), epochs=2, batch_size=8, lr=3e-3,
                   warmup_epochs=0.5, num_threads=1, deterministic=True, topk=1)  # fmt: skip


@pytest.fixture(scope="module")
def data():
    return separable(4, seed=0), separable(2, seed=1)


def _weights(path):
    model, _ = load_checkpoint(path)
    return model.state_dict()


def test_reading_every_50_steps_gives_the_run_of_reading_every_step(data, tmp_path):
    every, s1 = ListSink(), ListSink()
    lazy = train(BASE.model_copy(update={"log_every": 50}), *data, tmp_path / "lazy", sink=every)
    eager = train(BASE.model_copy(update={"log_every": 1}), *data, tmp_path / "eager", sink=s1)
    timing = {"train/img_per_s"}
    assert [{k: v for k, v in r.items() if k not in timing} for r in lazy.history] == [
        {k: v for k, v in r.items() if k not in timing} for r in eager.history]  # fmt: skip
    for (k, a), b in zip(_weights(lazy.last_checkpoint).items(), _weights(eager.last_checkpoint).values(), strict=True):
        assert torch.equal(a, b), k
    assert every.series("grad_norm/p95") == s1.series("grad_norm/p95") and len(every.series("train/data_frac")) == 2
    assert all(0 <= v < 1 for v in every.series("train/data_frac"))


@pytest.mark.parametrize("log_every", [1, 50])
def test_a_nan_several_steps_before_the_read_is_named_by_its_own_step(data, tmp_path, log_every):
    calls = []

    def criterion(logits, targets, idx, epoch):
        calls.append(epoch)
        loss = nn.functional.cross_entropy(logits, targets)
        return {"loss": loss * float("nan") if len(calls) == 3 else loss}  # step 1, second micro-batch

    cfg = BASE.model_copy(update={"log_every": log_every, "grad_log_every": 50, "accum_steps": 2, "epochs": 1})
    with pytest.raises(TrainingDivergedError) as e:
        train(cfg, *data, tmp_path, criterion=criterion)
    assert e.value.step == 1 and e.value.epoch == 0 and len(e.value.sample_ids) == 4  # the micro-batch's rows
    assert "loss is nan" in str(e.value) and not (tmp_path / "last.pt").exists()
    # deferred: the loop ran on to the epoch's end (28 rows: 3 steps of 2 micro-batches, 1 of 1) before it read back
    assert len(calls) == (7 if log_every == 50 else 3)


def test_resolve_outputs_reads_in_step_order_and_passes_resolved_ones():
    t = torch.tensor
    ok = StepOutput({"loss": t(0.5, dtype=torch.float64)}, t(2.0), torch.zeros(2),
                    [PendingCheck(t(0.5), "loss", 7, 1, ["a", "b"])])  # fmt: skip
    done = StepOutput({"loss": 0.25}, 1.5, torch.zeros(2))  # e.g. a Nested Learning window step, read at once
    checks = [PendingCheck(t(0.1), "loss", 9, 1, ["c"]), PendingCheck(t(float("inf")), "gradient norm", 9, 1, ["c"])]
    bad_norm = StepOutput({"loss": t(0.1)}, t(float("inf")), torch.zeros(2), checks)
    a, b = resolve_outputs([ok, done])
    assert a.terms == {"loss": 0.5} and a.grad_norm == 2.0 and a.checks == [] and b.terms == {"loss": 0.25}
    with pytest.raises(TrainingDivergedError, match="gradient norm is inf") as e:
        resolve_outputs([ok, done, bad_norm])
    assert e.value.step == 9 and e.value.sample_ids == ["c"]


class _Recorder(nn.Module):
    """TinyCNN on 3 channels that records the input shapes it is fed."""

    def __init__(self):
        super().__init__()
        self.net = TinyCNN()
        self.net.body[0] = nn.Conv2d(3, 8, 3, padding=1)
        self.shapes = set()

    def forward(self, x):
        self.shapes.add(tuple(x.shape[1:]))
        return self.net(x)


def test_the_model_gets_its_img_size_and_channels_from_packed_grey_data(data, tmp_path):
    model = _Recorder()
    cfg = BASE.model_copy(update={"epochs": 1, "model": ModelConfig(name="test_resnet", img_size=24, in_chans=3)})
    res = train(cfg, *data, tmp_path, model=model)
    assert model.shapes == {(3, 24, 24)}  # training and validation batches, resized from 16 px on the data's device
    assert data[0].spec.size == (16, 16) and data[0].pixels.shape[1:] == (1, 16, 16)  # the caller's data unchanged
    meta = read_checkpoint(res.last_checkpoint)["meta"]
    assert meta["img_size"] == 24 and tuple(meta["mean"]) == (0.5, 0.5, 0.5)
    assert math.isfinite(res.history[0]["train/loss"])


def test_device_loop_settings_are_runtime_fields_and_resume_the_same_run(data, tmp_path):
    assert {"log_every", "channels_last", "compile"} <= RUNTIME_FIELDS
    cfg = BASE.model_copy(update={"epochs": 1})
    train(cfg, *data, tmp_path)
    again = train(cfg.model_copy(update={"log_every": 3, "channels_last": False}), *data, tmp_path)
    assert again.start_epoch == 1  # same identity: the finished run is found, nothing retrained


@pytest.mark.slow
def test_compiled_forward_trains_like_the_eager_one(data, tmp_path):
    pytest.importorskip("torch._inductor")
    cfg = BASE.model_copy(update={"epochs": 1, "deterministic": False})
    eager = train(cfg, *data, tmp_path / "eager")
    try:
        compiled = train(cfg.model_copy(update={"compile": True}), *data, tmp_path / "compiled")
    except Exception as e:  # no C++ toolchain for inductor on this host
        pytest.skip(f"torch.compile unavailable here: {type(e).__name__}: {str(e)[:120]}")
    assert compiled.history[0]["train/loss"] == pytest.approx(eager.history[0]["train/loss"], rel=1e-3)
    assert np.isfinite(compiled.final_metrics["loss"])
