"""Optimizer / schedule configs: decay groups, SGD-Nesterov, OneCycle lr and momentum at hand-computed steps."""

import math

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from fer_core.models import ModelConfig
from fer_core.train import TrainConfig, train
from fer_core.train.optim import build_optimizer, build_scheduler, param_groups
from tests.core.train._data import TinyCNN, separable

MODEL = ModelConfig(name="test_resnet", img_size=16)


def _net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2, 3))


def _cfg(**kw) -> TrainConfig:
    return TrainConfig.model_validate({"model": MODEL.model_dump(), "lr": 0.1, "weight_decay": 0.05, **kw})


def test_default_is_adamw_without_decay_on_1d_params():
    net = _net()
    opt = build_optimizer(net, _cfg())
    assert type(opt) is torch.optim.AdamW and opt.defaults["betas"] == (0.9, 0.999)
    decayed, rest = opt.param_groups
    # conv weight [2,1,3,3] and linear weight [3,2] decay; conv bias, BN weight/bias, linear bias do not
    assert [tuple(p.shape) for p in decayed["params"]] == [(2, 1, 3, 3), (3, 2)] and decayed["weight_decay"] == 0.05
    assert [tuple(p.shape) for p in rest["params"]] == [(2,), (2,), (2,), (3,)] and rest["weight_decay"] == 0.0


def test_decay_all_puts_every_parameter_in_one_decayed_group():
    groups = param_groups(_net(), 0.05, "all")
    assert len(groups) == 1 and len(groups[0]["params"]) == 6 and groups[0]["weight_decay"] == 0.05


def test_sgd_nesterov_and_the_step_it_takes():
    net = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(1.0)
    opt = build_optimizer(net, _cfg(optimizer={"kind": "sgd", "momentum": 0.9, "decay": "all"}))
    assert type(opt) is torch.optim.SGD and opt.defaults["nesterov"] is True
    net(torch.ones(1, 1)).sum().backward()  # grad 1; + L2 0.05*1 -> g = 1.05
    opt.step()
    # Nesterov first step: buf = g, update = g + 0.9*buf = 1.9 g -> w = 1 - 0.1*1.9*1.05
    assert net.weight.item() == pytest.approx(1 - 0.1 * 1.9 * 1.05)
    with pytest.raises(ValidationError, match="nesterov"):
        _cfg(optimizer={"kind": "sgd", "momentum": 0.0})


def test_onecycle_lr_and_beta1_at_start_peak_and_end():
    cfg = _cfg(epochs=2, schedule={"kind": "onecycle", "pct_start": 0.25})
    opt = build_optimizer(_net(), cfg)
    sched = build_scheduler(opt, cfg, steps_per_epoch=5)  # 10 steps, peak at step 0.25*10 - 1 = 1.5
    lrs, betas = [], []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        betas.append(opt.param_groups[0]["betas"][0])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.1 / 25) and betas[0] == pytest.approx(0.95)
    # warm phase ends at step 1.5: cos anneal from lr/25 to lr, at step 1 the fraction is 1/1.5
    assert lrs[1] == pytest.approx(0.1 + (0.1 / 25 - 0.1) * (1 + math.cos(math.pi / 1.5)) / 2)
    assert max(lrs) == lrs[2] and lrs[2] < 0.1
    assert lrs[-1] == pytest.approx(0.1 / 25 / 1e4)  # the last step reaches the final lr exactly
    assert min(betas) == betas[2]


def test_warmup_cosine_default_matches_the_old_schedule():
    cfg = _cfg(epochs=1, warmup_epochs=0.5)
    opt = build_optimizer(_net(), cfg)
    sched = build_scheduler(opt, cfg, steps_per_epoch=4)  # warm-up 2 steps, cosine over 2
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.05, 0.1, 0.1, 0.05])


def test_onecycle_refuses_an_explicit_warmup_and_unknown_kinds_list_the_valid_ones():
    with pytest.raises(ValidationError, match="pct_start"):
        _cfg(warmup_epochs=0.5, schedule={"kind": "onecycle"})
    # the default warm-up, which every dump of a onecycle config carries, validates again (unused by onecycle)
    one = _cfg(schedule={"kind": "onecycle"})
    assert type(one).model_validate(one.model_dump()) == one
    with pytest.raises(ValidationError, match="'adamw', 'sgd'"):
        _cfg(optimizer={"kind": "adam"})
    with pytest.raises(ValidationError, match="'warmup_cosine', 'onecycle'"):
        _cfg(schedule={"kind": "step"})


def test_engine_steps_onecycle_per_optimizer_step_and_resumes(tmp_path):
    cfg = _cfg(epochs=2, batch_size=7, lr=3e-3, num_threads=1, deterministic=True, topk=1,
               optimizer={"kind": "adamw", "decay": "all"}, schedule={"kind": "onecycle"})  # fmt: skip
    data = separable(4, seed=0), separable(1, seed=1)  # 28 rows / 7 = 4 steps per epoch, 8 in all
    torch.manual_seed(0)
    res = train(cfg, *data, tmp_path, model=TinyCNN())
    # after epoch 0 the schedule stands at step 4: anneal phase from step 0.3*8-1 = 1.4 to 7, pct = 2.6/5.6
    lo = 3e-3 / 25 / 1e4
    assert res.history[0]["lr"] == pytest.approx(lo + (3e-3 - lo) * (1 + math.cos(math.pi * 2.6 / 5.6)) / 2)
    again = train(cfg, *data, tmp_path, model=TinyCNN())  # a finished run resumes with nothing left to do
    assert again.start_epoch == 2 and again.history == res.history
