"""Multi-teacher strategies: calibration, fusion maths, hash split, class-aware weights, registry errors."""

import hashlib

import numpy as np
import pytest
import torch

from fer_core.distill import STRATEGIES, DistillConfig, make_distill_criterion
from fer_core.distill.strategies.four_way import ClassAwareFusion, class_weights
from fer_core.distill.strategies.split import assign_teachers
from fer_core.errors import ConfigError
from fer_core.losses.kd import kd_loss

N, C = 6, 4
RNG = np.random.default_rng(0)
TEACH = RNG.normal(0, 2, (N, 2, C)).astype(np.float32)
IDS = [f"id{i}" for i in range(N)]
STUDENT = torch.tensor(RNG.normal(0, 1, (3, C)), dtype=torch.float32)
Y = torch.tensor([0, 2, 3])
IDX = torch.tensor([4, 0, 2])
F1 = np.array([[0.8, 0.2, 0.5, 0.0], [0.2, 0.2, 0.5, 0.0]])


KD_T1 = {"kind": "kd", "alpha": 1.0, "T": 1.0}


def crit(strategy, **kw):
    cfg = DistillConfig(strategy=strategy, teachers=("a", "b"), loss=KD_T1, **kw)
    return make_distill_criterion(cfg, TEACH, IDS, class_f1=F1 if strategy == "four_way" else None)


def test_registry_names_and_unknown_strategy():
    assert {"single", "pairwise", "fused", "split", "four_way", "fourway_split"} <= set(STRATEGIES.names())
    with pytest.raises(ConfigError, match=r"unknown distillation strategy 'nope'.*pairwise"):
        make_distill_criterion(DistillConfig(strategy="nope", teachers=("a",)), TEACH[:, :1], IDS)


def test_single_applies_calibration_temperature_and_looks_up_rows_by_idx():
    cfg = DistillConfig(strategy="single", teachers=("a",), teacher_temperatures=(2.0,), loss={"kind": "kd", "T": 3.0})
    out = make_distill_criterion(cfg, TEACH[:, :1], IDS)(STUDENT, Y, IDX, 0)
    want = kd_loss(STUDENT, torch.from_numpy(TEACH[IDX.numpy(), 0] / 2.0), Y, alpha=0.5, T=3.0)
    torch.testing.assert_close(out["loss"], want["loss"])


def test_pairwise_prob_fusion_is_the_weighted_mixture():
    c = crit("pairwise", weights=(1.0, 3.0))
    fused, w = c.strategy(torch.from_numpy(TEACH[IDX.numpy()]), Y, IDX)
    p = torch.softmax(torch.from_numpy(TEACH[IDX.numpy()]), -1)
    torch.testing.assert_close(torch.softmax(fused[:, 0], -1), 0.25 * p[:, 0] + 0.75 * p[:, 1])
    assert fused.shape == (3, 1, C) and torch.all(w == 1)


def test_pairwise_logit_fusion():
    c = crit("pairwise", fuse="logit", teacher_temperatures=(1.0, 2.0))
    fused, _ = c.strategy(torch.from_numpy(TEACH[IDX.numpy()]), Y, IDX)
    t = torch.from_numpy(TEACH[IDX.numpy()])
    torch.testing.assert_close(fused[:, 0], 0.5 * t[:, 0] + 0.25 * t[:, 1])


def test_fused_upper_bounds_pairwise_by_convexity():
    # KL(Σ w p_k ‖ q) ≤ Σ w KL(p_k ‖ q): KL is convex in the teacher argument, so fused ≥ pairwise, and they differ
    pair = crit("pairwise")(STUDENT, Y, IDX, 0)["kd"].item()
    fused = crit("fused")(STUDENT, Y, IDX, 0)["kd"].item()
    per_teacher = [kd_loss(STUDENT, torch.from_numpy(TEACH[IDX.numpy(), k]), Y, 1.0, 1.0)["kd"].item() for k in (0, 1)]
    assert fused == pytest.approx(np.mean(per_teacher), rel=1e-6)
    assert fused > pair + 1e-3


def test_split_hash_assignment_is_deterministic_and_weighted():
    ids = [f"sample-{i}" for i in range(4000)]
    a = assign_teachers(ids, np.array([0.25, 0.75]))
    u0 = int(hashlib.sha256(b"sample-0").hexdigest()[:8], 16) / 2**32
    assert a[0] == (0 if u0 < 0.25 else 1)
    assert np.array_equal(a, assign_teachers(ids, np.array([0.25, 0.75])))
    assert 0.22 < np.mean(a == 0) < 0.28
    assert np.array_equal(assign_teachers(ids[::-1], np.array([0.25, 0.75])), a[::-1])  # row order does not matter


def test_split_uses_one_teacher_per_sample():
    c = crit("split")
    k = assign_teachers(IDS, np.array([0.5, 0.5]))[IDX.numpy()]
    teacher = torch.from_numpy(TEACH[IDX.numpy(), k])
    torch.testing.assert_close(c(STUDENT, Y, IDX, 0)["kd"], kd_loss(STUDENT, teacher, Y, 1.0, 1.0)["kd"])


def test_four_way_class_weights_by_hand():
    w = class_weights(F1, np.array([0.5, 0.5]))
    # class 0: ratios 0.8/0.5, 0.2/0.5 → √1.6, √0.4 → normalised 2/3, 1/3
    np.testing.assert_allclose(w[0], [2 / 3, 1 / 3])
    np.testing.assert_allclose(w[1], [0.5, 0.5])
    np.testing.assert_allclose(w[3], [0.5, 0.5])  # nobody gets class 3 right: keep the prior
    c = crit("four_way")
    fused, _ = c.strategy(torch.from_numpy(TEACH[IDX.numpy()]), Y, IDX)
    p = torch.softmax(torch.from_numpy(TEACH[IDX.numpy()]), -1)
    torch.testing.assert_close(torch.softmax(fused[0, 0], -1), (2 / 3) * p[0, 0] + (1 / 3) * p[0, 1])  # y = 0


def test_four_way_needs_valid_f1():
    with pytest.raises(ConfigError, match="class_f1"):
        ClassAwareFusion(["a", "b"], [1, 1], [1, 1])
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        ClassAwareFusion(["a", "b"], [1, 1], [1, 1], class_f1=F1 * 2)


@pytest.mark.parametrize(
    ("name", "k", "weights", "temps", "match"),
    [
        ("single", 2, [1, 1], [1, 1], "at most 1"),
        ("pairwise", 1, [1], [1], "at least 2"),
        ("fused", 2, [1], [1, 1], "one weight"),
        ("fused", 2, [-1, 2], [1, 1], "≥ 0"),
        ("fused", 2, [1, 1], [1, 0], "> 0"),
    ],
)
def test_strategy_argument_errors(name, k, weights, temps, match):
    with pytest.raises(ConfigError, match=match):
        STRATEGIES.get(name)(["a", "b"][:k], weights, temps)
