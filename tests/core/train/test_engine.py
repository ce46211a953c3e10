"""Training engine behaviour: learning, OOM back-off, divergence guard, resume, data errors, gates, checkpoints."""

import numpy as np
import pytest
import torch

from fer_core.errors import ConfigError, DataIntegrityError, GateFailedError
from fer_core.models import ModelConfig, load_checkpoint
from fer_core.models.checkpoint import read_checkpoint
from fer_core.sink import ListSink
from fer_core.train import SmokeGates, TrainConfig, TrainingDivergedError, train
from fer_core.train.step import is_oom
from tests.core.train._data import TinyCNN, separable

BASE = TrainConfig(model=ModelConfig(name="test_resnet", img_size=16), epochs=2, batch_size=14, lr=3e-3,
                   warmup_epochs=0.5, num_threads=1, deterministic=True, grad_log_every=2, topk=1)  # fmt: skip


@pytest.fixture(scope="module")
def data():
    return separable(4, seed=0), separable(2, seed=1)


class Killed(Exception):
    pass


def test_loss_goes_down_in_two_epochs_and_checkpoints_hold_the_last_epoch(data, tmp_path):
    sink = ListSink()
    res = train(BASE, *data, tmp_path, sink=sink, dataset_sha256="d" * 64)
    first, last = res.history[0], res.history[-1]
    assert last["train/loss"] < 0.9 * first["train/loss"]
    assert res.final_metrics["macro_f1"] == last["val/macro_f1"] and "minority_f1" in res.final_metrics
    assert {f"train_loss/{c}" for c in ("angry", "disgust")} <= set(last)
    model, meta = load_checkpoint(res.last_checkpoint, expected=BASE.model)
    assert meta.epoch == 1 and meta.metrics["macro_f1"] == res.final_metrics["macro_f1"]
    assert meta.dataset_sha256 == "d" * 64 and meta.config["batch_size"] == 14
    for paths in res.best_checkpoints.values():
        assert len(paths) == 1 and paths[0].is_file()
        assert len(list(paths[0].parent.iterdir())) == 1  # top-1: the other epoch was deleted
    # 4 steps, grad stats every 2 -> 2 windows, and one row per epoch
    assert len(sink.series("grad_norm/p95")) == 2 + 2 and len(sink.series("val/loss")) == 2
    assert res.throughput_img_s > 0 and res.oom_events == [] and res.accum_steps == 1


def test_injected_oom_backs_off_and_keeps_the_effective_batch(data, tmp_path):
    cfg = BASE.model_copy(update={"epochs": 1, "lr": 1e-2})

    def oom(step, micro):
        if step == 1 and micro > 4:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    torch.manual_seed(0)
    a = TinyCNN()
    b = TinyCNN()
    b.load_state_dict(a.state_dict())
    res = train(cfg, *data, tmp_path / "oom", model=a, fault_injector=oom)
    ref = train(cfg, *data, tmp_path / "ref", model=b)
    assert [(e["step"], e["old_micro_batch"], e["micro_batch"], e["effective_batch"]) for e in res.oom_events] == [
        (1, 14, 7, 14), (1, 7, 3, 14)]  # fmt: skip
    assert ref.oom_events == [] and res.history[0]["train/loss"] == pytest.approx(ref.history[0]["train/loss"], 1e-5)
    assert (res.micro_batch, res.accum_steps) == (3, 5)
    # BatchNorm-free model: the retried step with a split batch gives the same update as the whole batch
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.allclose(va, vb, atol=1e-5), k
    assert is_oom(RuntimeError("CUDA out of memory")) and not is_oom(RuntimeError("shape mismatch"))


def test_nan_loss_stops_with_step_epoch_and_sample_ids(data, tmp_path):
    seen = []

    def criterion(logits, targets, idx, epoch):
        seen.append(bool((torch.as_tensor(data[0].labels)[idx.cpu()] == targets.cpu()).all()))
        loss = torch.nn.functional.cross_entropy(logits, targets)
        return {"loss": loss * float("nan") if len(seen) == 3 else loss, "extra": loss.detach()}

    with pytest.raises(TrainingDivergedError) as e:
        train(BASE, *data, tmp_path, criterion=criterion)
    assert e.value.step == 2 and e.value.epoch == 1 and len(e.value.sample_ids) == 14
    assert e.value.sample_ids[0] in str(e.value) and "global step 2" in str(e.value)
    assert all(seen)  # idx are the dataset rows of the targets


def test_resume_after_a_kill_matches_an_uninterrupted_run(data, tmp_path):
    cfg = BASE.model_copy(update={"epochs": 3})
    full = train(cfg, *data, tmp_path / "full")

    def kill(step, micro):
        if step == 4:  # first step of epoch 2 (2 steps per epoch)
            raise Killed

    with pytest.raises(Killed):
        train(cfg, *data, tmp_path / "run", fault_injector=kill)
    resumed = train(cfg, *data, tmp_path / "run")
    assert resumed.start_epoch == 2 and len(resumed.history) == 3
    a, _ = load_checkpoint(full.last_checkpoint)
    b, _ = load_checkpoint(resumed.last_checkpoint)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k
    assert resumed.final_metrics == full.final_metrics
    with pytest.raises(ConfigError, match="different TrainConfig"):
        train(cfg.model_copy(update={"lr": 1e-4}), *data, tmp_path / "run")


class _Broken:
    """Wraps a dataset whose second batch fails to load."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0
        self.labels, self.sample_ids = inner.labels, inner.sample_ids

    def __len__(self):
        return len(self.inner)

    def get_batch(self, indices, train=False, rng=None):
        self.calls += 1
        if train and self.calls == 2:
            raise OSError("corrupt pixel block")
        return self.inner.get_batch(indices, train, rng)


def test_a_dataset_error_fails_loudly(data, tmp_path):
    with pytest.raises(DataIntegrityError, match="corrupt pixel block") as e:
        train(BASE, _Broken(data[0]), data[1], tmp_path)
    assert "global step 1" in str(e.value)
    assert not (tmp_path / "last.pt").exists()
    bad = separable(1)
    bad.labels[3] = 9
    with pytest.raises(DataIntegrityError, match="label 9"):
        train(BASE, bad, data[1], tmp_path)


def test_smoke_gates_fail_fast_and_write_nothing(data, tmp_path):
    strict = BASE.model_copy(update={"smoke": SmokeGates(check_epochs=1, min_loss_drop=0.99)})
    with pytest.raises(GateFailedError, match="train loss fell"):
        train(strict, *data, tmp_path / "a")
    assert not (tmp_path / "a").exists()
    spiky = BASE.model_copy(update={"smoke": SmokeGates(max_grad_norm=1e-6)})
    with pytest.raises(GateFailedError, match="gradient norm"):
        train(spiky, *data, tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_arcface_head_with_balanced_sampler_and_accumulation(data, tmp_path):
    cfg = BASE.model_copy(update={"epochs": 1, "balanced_sampler": True, "accum_steps": 2, "model": ModelConfig(
        name="test_resnet", img_size=16, head="arcface", small_input_stem=True)})  # fmt: skip
    res = train(cfg, *data, tmp_path)
    assert res.micro_batch == 7 and res.accum_steps == 2 and np.isfinite(res.history[0]["train/loss"])


def test_a_plugged_in_optimizer_is_used_saved_and_resumed_with_its_config(data, tmp_path):
    made = []

    def sgd(model, cfg):
        made.append(torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9))
        return made[-1]

    cfg = BASE.model_copy(update={"epochs": 1})
    res = train(cfg, *data, tmp_path, optimizer_factory=sgd, extra_config={"plugin": {"kind": "sgd"}})
    obj = read_checkpoint(res.last_checkpoint)
    assert obj["train_state"]["optimizer"]["param_groups"][0]["momentum"] == 0.9
    assert obj["meta"]["config"]["plugin"] == {"kind": "sgd"} and obj["meta"]["config"]["epochs"] == 1
    again = train(cfg, *data, tmp_path, optimizer_factory=sgd, extra_config={"plugin": {"kind": "sgd"}})
    assert again.start_epoch == 1 and len(made) == 2  # finished: resumed past the last epoch, nothing trained
    with pytest.raises(ConfigError, match="plug-in config"):
        train(cfg, *data, tmp_path, optimizer_factory=sgd, extra_config={"plugin": {"kind": "other"}})
    with pytest.raises(ConfigError, match="collide"):
        train(cfg, *data, tmp_path / "x", extra_config={"lr": 1.0})


def test_the_validation_loss_gate(data, tmp_path):
    gated = BASE.model_copy(update={"smoke": SmokeGates(check_epochs=1, min_loss_drop=0.0, max_val_loss=1e-3)})
    with pytest.raises(GateFailedError, match=r"val loss [0-9.]+ > 0.001"):
        train(gated, *data, tmp_path)
    assert not tmp_path.exists() or not any(tmp_path.rglob("*.pt"))


def test_the_configured_augmentation_is_what_training_steps_on(data, tmp_path):
    from fer_core.data.dataset import ArrayDataset, TrainAugment

    train_ds, val_ds = data
    none = TrainAugment(flip=False, shift=0)
    configured = train(BASE.model_copy(update={"augment": none}), train_ds, val_ds, tmp_path / "cfg")
    px = train_ds.pixels[:, 0].numpy()
    built_in = ArrayDataset(px, train_ds.labels, train_ds.sample_ids, train_ds.spec, none)
    same = train(BASE, built_in, val_ds, tmp_path / "data")
    default = train(BASE, train_ds, val_ds, tmp_path / "default")
    assert [h["train/loss"] for h in configured.history] == [h["train/loss"] for h in same.history]
    assert [h["train/loss"] for h in configured.history] != [h["train/loss"] for h in default.history]
    assert train_ds.train_augment == TrainAugment()  # the caller's dataset is not changed

    class Plain:  # training data without an augmentation config
        labels, sample_ids = train_ds.labels, train_ds.sample_ids

        def __len__(self):
            return len(train_ds)

        def get_batch(self, indices, train=False, rng=None):
            return train_ds.get_batch(indices, train, rng)

    with pytest.raises(ConfigError, match="takes no augmentation config"):
        train(BASE.model_copy(update={"augment": none}), Plain(), val_ds, tmp_path / "plain")
