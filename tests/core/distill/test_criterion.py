"""make_distill_criterion: engine protocol, data-integrity errors, NegL composition, config validation."""

import numpy as np
import pytest
import torch

from fer_core.config import validate_config
from fer_core.distill import DistillConfig, make_distill_criterion
from fer_core.errors import ConfigError, DataIntegrityError
from fer_core.losses.dkd import DKDConfig, dkd_loss

RNG = np.random.default_rng(1)
TEACH = RNG.normal(0, 2, (8, 1, 7)).astype(np.float32)
IDS = [f"s{i}" for i in range(8)]


def test_engine_protocol_with_a_model_and_gradients():
    cfg = DistillConfig(teachers=("t",), loss=DKDConfig(warmup_epochs=2))
    crit = make_distill_criterion(cfg, TEACH, IDS)
    model = torch.nn.Linear(5, 7)
    x, y, idx = torch.randn(4, 5), torch.tensor([0, 1, 2, 6]), torch.tensor([7, 3, 0, 5])
    out = crit(model(x), y, idx, 1)
    assert set(out) == {"loss", "ce", "tckd", "nckd"} and out["loss"].dim() == 0
    out["loss"].backward()
    assert model.weight.grad.abs().sum() > 0
    want = dkd_loss(model(x), torch.from_numpy(TEACH[idx.numpy(), 0]), y, 1, warmup_epochs=2)
    torch.testing.assert_close(out["loss"], want["loss"])


def test_negl_adds_weighted_term():
    cfg = DistillConfig(teachers=("t",), loss={"kind": "kd"}, negl={"weight": 0.3, "seed": 4})
    out = make_distill_criterion(cfg, TEACH, IDS)(torch.randn(4, 7), torch.tensor([0, 1, 2, 3]), torch.arange(4), 0)
    assert out["loss"].item() == pytest.approx(
        0.5 * out["ce"].item() + 0.5 * out["kd"].item() + 0.3 * out["negl"].item(), rel=1e-5
    )


def test_teacher_mode_negl_uses_confusion():
    conf = np.eye(7) * 10 + 1
    cfg = DistillConfig(teachers=("t",), negl={"weight": 0.1, "mode": "teacher"})
    with pytest.raises(ConfigError, match="confusion"):
        make_distill_criterion(cfg, TEACH, IDS)
    crit = make_distill_criterion(cfg, TEACH, IDS, confusion=conf)
    assert torch.allclose(crit.negl.probs.sum(1), torch.ones(7, dtype=torch.float64))


def test_misaligned_or_bad_teacher_logits_refused():
    cfg = DistillConfig(teachers=("t",))
    with pytest.raises(DataIntegrityError, match="join the logits store"):
        make_distill_criterion(cfg, TEACH[:5], IDS)
    with pytest.raises(DataIntegrityError, match="teachers on axis 1"):
        make_distill_criterion(cfg, np.concatenate([TEACH, TEACH], 1), IDS)
    bad = TEACH.copy()
    bad[3, 0, 2] = np.nan
    with pytest.raises(DataIntegrityError, match=r"row 3 \(sample s3\)"):
        make_distill_criterion(cfg, bad, IDS)
    crit = make_distill_criterion(cfg, TEACH, IDS)
    with pytest.raises(DataIntegrityError, match="idx out of range"):
        crit(torch.randn(2, 7), torch.tensor([0, 1]), torch.tensor([0, 8]), 0)
    with pytest.raises(DataIntegrityError, match="classes"):
        crit(torch.randn(2, 5), torch.tensor([0, 1]), torch.tensor([0, 1]), 0)


@pytest.mark.parametrize(
    "data",
    [
        {"teachers": ["a", "b"], "weights": [1.0]},
        {"teachers": ["a"], "teacher_temperatures": [1.0, 2.0]},
        {"teachers": ["a"], "loss": {"kind": "kd", "alpha": 1.5}},
        {"teachers": ["a"], "loss": {"kind": "dkd", "beta": -1}},
        {"teachers": ["a"], "loss": {"kind": "ce"}},
        {"teachers": []},
    ],
)
def test_distill_config_validation(data):
    with pytest.raises(ConfigError):
        validate_config(data, DistillConfig)


def test_distill_config_tagged_loss():
    cfg = validate_config({"teachers": ["a"], "loss": {"kind": "kd", "T": 2.0}}, DistillConfig)
    assert cfg.loss.kind == "kd" and cfg.loss.T == 2.0
    assert DistillConfig.model_validate_json(cfg.model_dump_json()) == cfg
