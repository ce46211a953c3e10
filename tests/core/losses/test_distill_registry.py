"""The distillation-loss registry: one call shape, sweep grids, and a new loss added by one file alone."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fer_core.errors import ConfigError
from fer_core.losses import DISTILL_LOSSES, loss_config_for
from fer_core.losses.dkd import DKDConfig, dkd_loss
from fer_core.losses.kd import KDConfig, kd_loss

ROOT = Path(__file__).resolve().parents[3]


def test_kd_and_dkd_are_registered_and_called_in_one_shape():
    assert DISTILL_LOSSES.names() == ["dkd", "kd"]
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(5, 7, generator=g), torch.randn(5, 2, 7, generator=g)
    y, w = torch.tensor([0, 1, 2, 3, 4]), torch.full((5, 2), 0.5)
    kd = DISTILL_LOSSES.get("kd").fn(KDConfig(alpha=0.3, T=3.0), s, t, y, w, 0)
    assert torch.equal(kd["loss"], kd_loss(s, t, y, 0.3, 3.0, w)["loss"])
    dc = DKDConfig(alpha=1.0, beta=8.0, T=4.0, w_ce=1.0, warmup_epochs=4)
    dkd = DISTILL_LOSSES.get("dkd").fn(dc, s, t, y, w, 2)
    assert torch.equal(dkd["loss"], dkd_loss(s, t, y, 2, 1.0, 8.0, 4.0, 1.0, 4, w)["loss"])


def test_sweep_grid_iterates_only_the_axes_a_loss_reads():
    kd = DISTILL_LOSSES.sweep_configs("kd", [0.5, 0.7], [1.0, 8.0], [2.0])
    assert kd == [KDConfig(alpha=0.5, T=2.0), KDConfig(alpha=0.7, T=2.0)]  # beta is not a KD axis
    dkd = DISTILL_LOSSES.sweep_configs("dkd", [0.25], [1.0, 8.0], [2.0, 4.0])
    assert [(c.beta, c.T, c.w_ce) for c in dkd] == [(1.0, 2.0, 0.75), (1.0, 4.0, 0.75), (8.0, 2.0, 0.75),
                                                   (8.0, 4.0, 0.75)]  # fmt: skip
    with pytest.raises(ConfigError, match=r"valid: \['dkd', 'kd'\]"):
        loss_config_for("crd", 0.5, None, 2.0)
    with pytest.raises(ConfigError, match="invalid for loss 'kd'"):
        loss_config_for("kd", 1.5, None, 2.0)  # KD's alpha is a weight in [0, 1]


NEW_LOSS = '''"""Logit matching (MSE between student and teacher logits), a test loss."""
from typing import Literal

import torch

from fer_core.config import FrozenModel
from fer_core.losses._registry import DISTILL_LOSSES, DistillLoss


class MSEConfig(FrozenModel):
    kind: Literal["mse"] = "mse"
    alpha: float = 1.0


def _mse(cfg, student, teachers, targets, weights, epoch):
    per = ((student.unsqueeze(1) - teachers) ** 2).mean(-1)
    w = weights if weights is not None else torch.full(per.shape, 1.0 / per.shape[1])
    mse = (w * per).sum(1).mean()
    return {"loss": cfg.alpha * mse, "mse": mse}


DISTILL_LOSSES.add_loss(DistillLoss(MSEConfig, _mse, ("alpha",), lambda a, b, t: MSEConfig(alpha=a)))
'''

PROBE = """
import json, numpy as np, torch
from fer_core.distill import DistillConfig, make_distill_criterion
from fer_core.losses import DISTILL_LOSSES
cfg = DistillConfig.model_validate({"teachers": ["t"], "strategy": "single", "loss": {"kind": "mse", "alpha": 2.0}})
logits = np.zeros((2, 1, 7), np.float32); logits[:, 0, 0] = 1.0
crit = make_distill_criterion(cfg, logits, ["a", "b"])
out = crit(torch.zeros(2, 7), torch.zeros(2, dtype=torch.long), torch.arange(2), 0)
print(json.dumps({"names": DISTILL_LOSSES.names(), "loss": float(out["loss"]),
                  "sweep": [c.alpha for c in DISTILL_LOSSES.sweep_configs("mse", [0.1, 0.2], [9.0], [9.0])]}))
"""


def test_a_new_loss_is_one_file(tmp_path):
    shutil.copytree(ROOT / "fer_core", tmp_path / "fer_core", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "fer_core" / "losses" / "mse_kd.py").write_text(NEW_LOSS, encoding="utf-8")
    res = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout.strip().splitlines()[-1])
    # student 0 vs teacher (1, 0, ..., 0): MSE = 1/7 per row, times alpha 2
    assert got == {"names": ["dkd", "kd", "mse"], "loss": pytest.approx(2 / 7), "sweep": [0.1, 0.2]}
