"""Online distillation: teachers score the student's augmented batch; equal to offline exactly when nothing augments."""

import numpy as np
import pytest
import torch
from torch import nn

from fer_core.data.dataset import TrainAugment
from fer_core.distill import DistillConfig, load_teachers, make_distill_criterion, make_online_distill_criterion
from fer_core.errors import CheckpointMismatchError, ConfigError
from fer_core.losses.kd import kd_loss
from fer_core.models import CheckpointMeta, ModelConfig, create_model, save_checkpoint
from fer_core.train import TrainConfig, train
from tests.core.train._data import TinyCNN, separable


class HalfDiff(nn.Module):
    """Logit 0 = 10·(mean of the left half − mean of the right half): a horizontal flip negates it.

    The dropout makes any forward in training mode random, so a teacher left training would show.
    """

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(10.0))
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = x.shape[-1] // 2
        d = x[..., :w].mean(dim=(1, 2, 3)) - x[..., w:].mean(dim=(1, 2, 3))
        z = torch.zeros(len(x), 7)
        z[:, 0] = self.scale * d
        return self.drop(z)


CFG = DistillConfig(teachers=("half",), strategy="single", loss={"kind": "kd", "alpha": 0.5, "T": 2.0})
ONLINE = CFG.model_copy(update={"mode": "online"})


def _cached(teacher: nn.Module, data) -> np.ndarray:
    teacher.eval()
    with torch.no_grad():
        x, _ = data.get_batch(np.arange(len(data)))
        return teacher(x).numpy()[:, None, :]  # [N, K=1, C], from the un-augmented rows


def test_online_equals_offline_on_unaugmented_inputs_and_sees_a_flip():
    data = separable(2, seed=3)
    teacher = HalfDiff()
    offline = make_distill_criterion(CFG, _cached(teacher, data), data.sample_ids)
    teacher.train()  # the criterion must pin eval mode (dropout would change every logit)
    online = make_online_distill_criterion(ONLINE, [teacher], data.sample_ids)
    rows = np.arange(len(data))
    x, y = data.get_batch(rows)
    idx = torch.from_numpy(rows)
    z = torch.randn(len(rows), 7, generator=torch.Generator().manual_seed(0))
    same = online(z, y, idx, 0, inputs=x)
    assert all(torch.equal(same[k], v) for k, v in offline(z, y, idx, 0).items())
    flipped = online(z, y, idx, 0, inputs=x.flip(-1))
    t = torch.from_numpy(_cached(teacher, data)[:, 0])
    t[:, 0] = -t[:, 0]  # by hand: the flip negates the teacher's logit 0, nothing else
    assert flipped["loss"] == pytest.approx(float(kd_loss(z, t, y, 0.5, 2.0)["loss"]), rel=1e-6)
    assert float(flipped["kd"]) != pytest.approx(float(same["kd"]), rel=1e-3)
    assert not teacher.training and not teacher.scale.requires_grad


def test_the_engine_passes_its_batch_online_matches_offline_exactly_when_augmentation_is_off(tmp_path):
    data, val = separable(2, seed=0), separable(1, seed=1)
    base = TrainConfig(model=ModelConfig(name="test_resnet", img_size=16), epochs=1, batch_size=7, lr=3e-3,
                       num_threads=1, deterministic=True, topk=1)  # fmt: skip

    def run(augment: TrainAugment, online: bool, name: str) -> float:
        teacher = HalfDiff()
        with torch.no_grad():
            teacher.scale.fill_(30.0)
        crit = (make_online_distill_criterion(ONLINE, [teacher], data.sample_ids) if online
                else make_distill_criterion(CFG, _cached(teacher, data), data.sample_ids))  # fmt: skip
        torch.manual_seed(0)
        cfg = base.model_copy(update={"augment": augment})
        return train(cfg, data, val, tmp_path / name, criterion=crit, model=TinyCNN()).history[-1]["train/kd"]

    off = TrainAugment(flip=False, shift=0.0)
    assert run(off, True, "on-plain") == run(off, False, "off-plain")
    flip = TrainAugment(flip=True, shift=0.0)
    assert run(flip, True, "on-flip") != run(flip, False, "off-flip")


def test_each_builder_refuses_the_other_mode_and_a_missing_input():
    data = separable(1, seed=0)
    with pytest.raises(ConfigError, match="make_online_distill_criterion"):
        make_distill_criterion(ONLINE, np.zeros((len(data), 1, 7)), data.sample_ids)
    with pytest.raises(ConfigError, match="mode: online"):
        make_online_distill_criterion(CFG, [HalfDiff()], data.sample_ids)
    with pytest.raises(ConfigError, match="one model per name"):
        make_online_distill_criterion(ONLINE, [HalfDiff(), HalfDiff()], data.sample_ids)
    crit = make_online_distill_criterion(ONLINE, [HalfDiff()], data.sample_ids)
    with pytest.raises(ConfigError, match="inputs"):
        crit(torch.zeros(2, 7), torch.zeros(2, dtype=torch.long), torch.arange(2), 0)


def test_load_teachers_refuses_a_teacher_of_another_input_spec(tmp_path):
    cfg = ModelConfig(name="test_resnet", img_size=16)
    path = save_checkpoint(tmp_path / "t.pt", create_model(cfg), CheckpointMeta.for_model(cfg, mean=(0.5,), std=(0.5,)))
    (model,) = load_teachers([path], 16, 1, (0.5,), (0.5,))
    assert not model.training
    with pytest.raises(CheckpointMismatchError, match="t.pt"):
        load_teachers([path], 16, 1, (0.4,), (0.5,))
