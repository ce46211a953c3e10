"""KD, DKD and NegL: golden values against an independent numpy reference, invariants, T² gradients, safety."""

import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from fer_core.config import validate_config
from fer_core.errors import ConfigError
from fer_core.losses._registry import LOSSES
from fer_core.losses.dkd import DKDConfig, DKDLoss, dkd_divergences, dkd_loss
from fer_core.losses.kd import KDConfig, KDLoss, kd_divergence, kd_loss
from fer_core.losses.negl import NegLConfig, NegLLoss, complementary_probs, negl_loss, sample_complementary

S23 = [[1.0, 2.0, 0.5], [0.2, -1.0, 3.0]]
T23 = [[2.0, 0.5, 0.1], [0.0, 0.3, 2.5]]
Y23 = [1, 2]
RNG = np.random.default_rng(3)
S47 = RNG.normal(0, 2, (4, 7)).round(3).tolist()
T47 = RNG.normal(0, 2, (4, 7)).round(3).tolist()
Y47 = [0, 3, 6, 2]


def np_softmax(row, T):
    e = [math.exp(v / T) for v in row]
    s = sum(e)
    return [x / s for x in e]


def np_kl(p, q):
    return sum(a * math.log(a / b) for a, b in zip(p, q, strict=True) if a > 0)


def np_ce(row, y):
    return -math.log(np_softmax(row, 1.0)[y])


def np_kd(s, t, y, alpha, T):
    """Reference Hinton KD: plain python over rows."""
    kl = sum(np_kl(np_softmax(tr, T), np_softmax(sr, T)) for sr, tr in zip(s, t, strict=True)) / len(s)
    ce = sum(np_ce(sr, yi) for sr, yi in zip(s, y, strict=True)) / len(s)
    return (1 - alpha) * ce + alpha * T * T * kl


def np_dkd_row(s, t, y, T):
    """Reference TCKD/NCKD for one row from explicit probabilities (DKD paper, eqs. 1-4)."""
    ps, pt = np_softmax(s, T), np_softmax(t, T)
    bs, bt = [ps[y], 1 - ps[y]], [pt[y], 1 - pt[y]]
    tckd = np_kl(bt, bs)
    qs = [p / (1 - ps[y]) for i, p in enumerate(ps) if i != y]
    qt = [p / (1 - pt[y]) for i, p in enumerate(pt) if i != y]
    return tckd, np_kl(qt, qs)


def np_dkd(s, t, y, alpha, beta, T, w_ce):
    rows = [np_dkd_row(sr, tr, yi, T) for sr, tr, yi in zip(s, t, y, strict=True)]
    ce = sum(np_ce(sr, yi) for sr, yi in zip(s, y, strict=True)) / len(s)
    tckd = sum(r[0] for r in rows) / len(s)
    nckd = sum(r[1] for r in rows) / len(s)
    return w_ce * ce + alpha * T * T * tckd + beta * T * T * nckd


def tt(x):
    return torch.tensor(x, dtype=torch.float64)


@pytest.mark.parametrize(("s", "t", "y"), [(S23, T23, Y23), (S47, T47, Y47)])
@pytest.mark.parametrize(("alpha", "T"), [(0.5, 1.0), (0.3, 2.0), (0.9, 4.0)])
def test_kd_matches_reference(s, t, y, alpha, T):
    out = kd_loss(tt(s), tt(t), torch.tensor(y), alpha=alpha, T=T)
    assert out["loss"].item() == pytest.approx(np_kd(s, t, y, alpha, T), rel=1e-10)
    assert out["ce"].item() == pytest.approx(np_kd(s, t, y, 0.0, T), rel=1e-10)


@pytest.mark.parametrize(("s", "t", "y"), [(S23, T23, Y23), (S47, T47, Y47)])
@pytest.mark.parametrize(
    ("alpha", "beta", "T", "w_ce"), [(0.5, 4.0, 2.0, 0.5), (1.0, 8.0, 4.0, 1.0), (0.2, 0.0, 1.0, 0.0)]
)
def test_dkd_matches_reference(s, t, y, alpha, beta, T, w_ce):
    out = dkd_loss(tt(s), tt(t), torch.tensor(y), epoch=5, alpha=alpha, beta=beta, T=T, w_ce=w_ce, warmup_epochs=0)
    assert out["loss"].item() == pytest.approx(np_dkd(s, t, y, alpha, beta, T, w_ce), rel=1e-10)


def test_dkd_golden_2x3():
    # row 0 by hand at T=1, y=1: p_s = softmax(1, 2, .5), p_t = softmax(2, .5, .1)
    tckd, nckd = dkd_divergences(tt(S23), tt(T23), torch.tensor(Y23), T=1.0)
    es, et = [math.e**1, math.e**2, math.e**0.5], [math.e**2, math.e**0.5, math.e**0.1]
    bs, bt = es[1] / sum(es), et[1] / sum(et)
    want_t = bt * math.log(bt / bs) + (1 - bt) * math.log((1 - bt) / (1 - bs))
    qs0, qt0 = es[0] / (es[0] + es[2]), et[0] / (et[0] + et[2])
    want_n = qt0 * math.log(qt0 / qs0) + (1 - qt0) * math.log((1 - qt0) / (1 - qs0))
    assert tckd[0].item() == pytest.approx(want_t, rel=1e-12)
    assert nckd[0].item() == pytest.approx(want_n, rel=1e-12)


def test_zero_when_student_equals_teacher():
    z = tt(S47)
    y = torch.tensor(Y47)
    assert kd_loss(z, z.clone(), y, alpha=1.0, T=3.0)["loss"].item() == pytest.approx(0.0, abs=1e-12)
    out = dkd_loss(z, z.clone(), y, epoch=1, alpha=1.0, beta=8.0, T=3.0, w_ce=0.0)
    assert out["loss"].item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("T", [1.0, 2.0, 5.0])
def test_dkd_identity_kd_equals_tckd_plus_weighted_nckd(T):
    s, t, y = tt(S47), tt(T47), torch.tensor(Y47)
    tckd, nckd = dkd_divergences(s, t, y, T)
    pt_target = torch.softmax(t / T, -1).gather(1, y[:, None]).squeeze(1)
    torch.testing.assert_close(kd_divergence(s, t, T), tckd + (1 - pt_target) * nckd, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("T", [1.0, 4.0, 10.0])
def test_kd_gradient_is_analytic_T_times_prob_gap(T):
    # d/dz_s [T²·mean_b KL(p_t^T ‖ p_s^T)] = T·(p_s^T − p_t^T)/B; dropping T² would give (p_s − p_t)/(T·B)
    s = tt(S47).requires_grad_(True)
    t = tt(T47)
    kd_loss(s, t, torch.tensor(Y47), alpha=1.0, T=T)["loss"].backward()
    want = T * (torch.softmax(s.detach() / T, -1) - torch.softmax(t / T, -1)) / s.shape[0]
    torch.testing.assert_close(s.grad, want, rtol=1e-10, atol=1e-13)


def _grad_norm(fn, T):
    s = tt(S47).requires_grad_(True)
    fn(s, T).backward()
    return s.grad.norm().item()


@pytest.mark.parametrize(
    "term",
    [
        lambda s, T: kd_loss(s, tt(T47), torch.tensor(Y47), alpha=1.0, T=T)["loss"],
        lambda s, T: dkd_loss(s, tt(T47), torch.tensor(Y47), 1, alpha=1.0, beta=0.0, T=T, w_ce=0.0)["loss"],
        lambda s, T: dkd_loss(s, tt(T47), torch.tensor(Y47), 1, alpha=0.0, beta=1.0, T=T, w_ce=0.0)["loss"],
    ],
    ids=["kd", "tckd", "nckd"],
)
def test_gradient_magnitude_invariant_in_T_thanks_to_T_squared(term):
    # the gradient of KL at temperature T scales like 1/T² for large T; ×T² keeps it O(1). Without T² the ratio is ~1/4.
    ratio = _grad_norm(term, 80.0) / _grad_norm(term, 40.0)
    assert ratio == pytest.approx(1.0, abs=0.05)


def test_confident_student_is_finite():
    s = torch.tensor([[50.0, -50.0, -50.0], [-50.0, 50.0, -50.0]], dtype=torch.float32, requires_grad=True)
    t = torch.tensor([[-50.0, 50.0, -50.0], [-50.0, -50.0, 50.0]])
    y = torch.tensor([1, 2])
    for fn in (
        lambda: kd_loss(s, t, y, alpha=0.5, T=1.0)["loss"],
        lambda: dkd_loss(s, t, y, 1, alpha=1.0, beta=8.0, T=1.0, w_ce=1.0)["loss"],
        lambda: negl_loss(s, torch.tensor([0, 1])),
    ):
        s.grad = None
        v = fn()
        v.backward()
        assert torch.isfinite(v) and v.item() > 10
        assert torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0


def test_dkd_two_classes_nckd_zero():
    s, t, y = tt([[1.0, -1.0], [0.3, 2.0]]), tt([[-1.0, 2.0], [0.0, 0.0]]), torch.tensor([0, 1])
    tckd, nckd = dkd_divergences(s, t, y, 2.0)
    assert torch.all(nckd == 0)
    torch.testing.assert_close(tckd, kd_divergence(s, t, 2.0))


def test_dkd_warmup_scales_distillation_terms():
    s, t, y = tt(S47), tt(T47), torch.tensor(Y47)
    full = dkd_loss(s, t, y, epoch=10, w_ce=0.5, warmup_epochs=4)
    half = dkd_loss(s, t, y, epoch=2, w_ce=0.5, warmup_epochs=4)
    zero = dkd_loss(s, t, y, epoch=0, w_ce=0.5, warmup_epochs=4)
    kd_part = full["tckd"] + full["nckd"]
    assert zero["loss"].item() == pytest.approx(0.5 * full["ce"].item())
    assert half["loss"].item() == pytest.approx(0.5 * full["ce"].item() + 0.5 * kd_part.item())
    assert full["loss"].item() == pytest.approx(0.5 * full["ce"].item() + kd_part.item())


def test_multi_teacher_weights_average_per_teacher_terms():
    s, y = tt(S47), torch.tensor(Y47)
    t1, t2 = tt(T47), tt(T47).flip(1)
    both = kd_loss(s, torch.stack([t1, t2], 1), y, alpha=1.0, T=2.0, teacher_weights=tt([[0.25, 0.75]] * 4))
    one, two = kd_loss(s, t1, y, alpha=1.0, T=2.0), kd_loss(s, t2, y, alpha=1.0, T=2.0)
    assert both["kd"].item() == pytest.approx(0.25 * one["kd"].item() + 0.75 * two["kd"].item())


def test_negl_value_and_sampling():
    s = tt(S47)
    comp = torch.tensor([1, 0, 0, 6])
    want = -sum(math.log(1 - np_softmax(r, 1.0)[c]) for r, c in zip(S47, comp.tolist(), strict=True)) / 4
    assert negl_loss(s, comp).item() == pytest.approx(want, rel=1e-6)
    y = torch.randint(0, 7, (2000,), generator=torch.Generator().manual_seed(0))
    probs = complementary_probs(7)
    a = sample_complementary(y, probs, torch.Generator().manual_seed(5))
    b = sample_complementary(y, probs, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and not torch.any(a == y)
    assert set(a.tolist()) == set(range(7))


def test_negl_teacher_mode_follows_confusion():
    conf = np.eye(3) * 50
    conf[0, 2] = 9.0  # class 0 is confused with 2 nine times as often as with 1
    conf[0, 1] = 1.0
    probs = complementary_probs(3, conf)
    np.testing.assert_allclose(probs.numpy(), [[0, 0.1, 0.9], [0.5, 0, 0.5], [0.5, 0.5, 0]])  # rows 1, 2: uniform
    draws = sample_complementary(torch.zeros(4000, dtype=torch.long), probs, torch.Generator().manual_seed(1))
    assert 0.87 < (draws == 2).float().mean().item() < 0.93
    loss = NegLLoss(3, weight=0.5, mode="teacher", confusion=conf, seed=0)
    out = loss(tt(S23), torch.tensor(Y23))
    assert out["loss"].item() == pytest.approx(0.5 * out["negl"].item())
    with pytest.raises(ConfigError, match="confusion"):
        NegLLoss(3, mode="teacher")


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (KDConfig, {"alpha": 1.5}),
        (KDConfig, {"alpha": -0.1}),
        (KDConfig, {"T": 0.0}),
        (DKDConfig, {"beta": -1.0}),
        (DKDConfig, {"alpha": -1.0}),
        (DKDConfig, {"T": -2.0}),
        (DKDConfig, {"warmup_epochs": -1}),
        (NegLConfig, {"weight": -0.1}),
        (NegLConfig, {"mode": "random"}),
    ],
)
def test_config_validation(model, data):
    with pytest.raises(ConfigError):
        validate_config(data, model)
    with pytest.raises(ValidationError):
        model(**data)


def test_modules_registered_and_refuse_bad_args():
    assert {"kd", "dkd", "negl"} <= set(LOSSES.names())
    assert LOSSES.get("kd") is KDLoss and LOSSES.get("dkd") is DKDLoss and LOSSES.get("negl") is NegLLoss
    with pytest.raises(ConfigError):
        KDLoss(alpha=2.0)
    with pytest.raises(ConfigError):
        DKDLoss(T=0.0)
    out = DKDLoss.from_config(DKDConfig())(tt(S47), tt(T47), torch.tensor(Y47), epoch=0)
    assert set(out) == {"loss", "ce", "tckd", "nckd"}
