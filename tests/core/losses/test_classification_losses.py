"""Classification losses: hand-computed values on tiny logits, registry and config union, degenerate counts."""

import math

import numpy as np
import pytest
import torch
from pydantic import TypeAdapter

from fer_core.errors import ConfigError
from fer_core.losses._registry import LOSSES
from fer_core.losses.ce import CELoss, ce_loss
from fer_core.losses.class_balanced import ClassBalancedLoss, class_balanced_loss, class_balanced_weights
from fer_core.losses.focal import FocalLoss, focal_loss
from fer_core.losses.logit_adjust import LogitAdjustLoss, logit_adjust_loss
from fer_core.train.config import LossConfig

# p = softmax([ln 2, 0]) = [2/3, 1/3]
LOGITS = torch.tensor([[math.log(2.0), 0.0]])
T0 = torch.tensor([0])


def test_cross_entropy_with_label_smoothing():
    assert ce_loss(LOGITS, T0).item() == pytest.approx(-math.log(2 / 3), abs=1e-6)
    # e = 0.2 over C = 2 -> target [0.9, 0.1]
    want = 0.9 * -math.log(2 / 3) + 0.1 * -math.log(1 / 3)
    assert CELoss(0.2)(LOGITS, T0)["loss"].item() == pytest.approx(want, abs=1e-6)


def test_focal_hand_value_and_gamma_zero_is_ce():
    want = (1 - 2 / 3) ** 2 * -math.log(2 / 3)
    assert focal_loss(LOGITS, T0, gamma=2.0).item() == pytest.approx(want, abs=1e-6)
    assert FocalLoss(0.0)(LOGITS, T0)["loss"].item() == pytest.approx(-math.log(2 / 3), abs=1e-6)


def test_class_balanced_weights_and_loss():
    # beta = 0.5: effective numbers (1 - 0.5^n) / 0.5 = [1, 1.75] for counts [1, 3]; w ∝ 1/E, sum to C = 2
    w = class_balanced_weights(np.array([1, 3]), beta=0.5)
    assert w == pytest.approx([2 / (1 + 1 / 1.75), 2 / 1.75 / (1 + 1 / 1.75)])
    logits = torch.cat([LOGITS, LOGITS])
    targets = torch.tensor([0, 1])
    l0, l1 = -math.log(2 / 3), -math.log(1 / 3)
    want = (w[0] * l0 + w[1] * l1) / (w[0] + w[1])
    got = class_balanced_loss(logits, targets, torch.tensor(w, dtype=torch.float32)).item()
    assert got == pytest.approx(want, abs=1e-6)
    mod = ClassBalancedLoss(np.array([1, 3]), beta=0.5)
    assert mod(logits, targets)["loss"].item() == pytest.approx(want, abs=1e-6)
    # beta -> 0 means every class weighs the same
    assert class_balanced_weights(np.array([1, 1000]), beta=0.0) == pytest.approx([1.0, 1.0])


def test_logit_adjustment_adds_tau_log_prior():
    # counts [1, 3] -> prior [0.25, 0.75]; zero logits + log prior -> p(target 0) = 0.25
    zeros = torch.zeros(1, 2)
    prior = torch.log(torch.tensor([0.25, 0.75]))
    assert logit_adjust_loss(zeros, T0, prior, tau=1.0).item() == pytest.approx(-math.log(0.25), abs=1e-6)
    mod = LogitAdjustLoss(np.array([1, 3]), tau=0.5)
    p0 = 0.25**0.5 / (0.25**0.5 + 0.75**0.5)
    assert mod(zeros, T0)["loss"].item() == pytest.approx(-math.log(p0), abs=1e-6)
    assert LogitAdjustLoss(np.array([1, 3]), tau=0.0)(LOGITS, T0)["loss"].item() == pytest.approx(-math.log(2 / 3))


def test_registry_config_union_and_gradients():
    counts = np.array([5, 1, 2, 9, 7, 3, 4])
    logits = torch.randn(6, 7, requires_grad=True)
    targets = torch.tensor([0, 1, 2, 3, 4, 6])
    raws = [{"kind": "ce", "label_smoothing": 0.1}, {"kind": "focal", "gamma": 1.0},
            {"kind": "class_balanced", "beta": 0.99, "gamma": 1.0}, {"kind": "logit_adjust", "tau": 1.0}]  # fmt: skip
    for raw in raws:
        cfg = TypeAdapter(LossConfig).validate_python(raw)
        crit = LOSSES.get(cfg.kind).from_config(cfg, counts)
        out = crit(logits, targets, torch.arange(6), 0)
        assert set(out) == {"loss"} and out["loss"].ndim == 0 and torch.isfinite(out["loss"])
        (g,) = torch.autograd.grad(out["loss"], logits)
        assert torch.isfinite(g).all() and g.abs().sum() > 0


def test_missing_class_counts_are_refused():
    with pytest.raises(ConfigError, match="counts"):
        class_balanced_weights(np.array([3, 0, 2]))
    with pytest.raises(ConfigError, match="counts"):
        LogitAdjustLoss(np.array([3, 0]))
