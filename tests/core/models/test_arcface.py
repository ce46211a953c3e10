"""ArcFace head: hand-checked margin, plain scaled cosines at inference/warm-up, the epoch schedule."""

import math

import pytest
import torch

from fer_core.models import ArcFaceConfig, ArcFaceHead, ModelConfig, create_model


def _head(s=30.0, m=0.35):
    head = ArcFaceHead(2, 2, s=s, m=m)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 0.5]]))  # norms differ: the head must normalise
    return head


def test_margin_on_the_target_matches_hand_computation():
    a = 0.3
    feat = torch.tensor([[3 * math.cos(a), 3 * math.sin(a)]])
    head = _head().train()
    out = head(feat, torch.tensor([0]))
    assert out[0, 0].item() == pytest.approx(30 * math.cos(a + 0.35), abs=1e-4)
    assert out[0, 1].item() == pytest.approx(30 * math.sin(a), abs=1e-4)  # non-target: plain cosine


def test_inference_and_unlabelled_training_give_scaled_cosines():
    a = 0.3
    feat = torch.tensor([[math.cos(a), math.sin(a)]])
    expected = torch.tensor([[30 * math.cos(a), 30 * math.sin(a)]])
    head = _head()
    assert torch.allclose(head.eval()(feat, torch.tensor([0])), expected, atol=1e-4)
    assert torch.allclose(head.train()(feat), expected, atol=1e-4)
    head.set_margin(0.0)
    assert torch.allclose(head(feat, torch.tensor([0])), expected, atol=1e-4)


def test_target_logit_stays_monotone_past_pi_minus_m():
    head = _head(s=1.0, m=0.5).train()
    angles = torch.linspace(0.0, math.pi, 200)
    feat = torch.stack([torch.cos(angles), torch.sin(angles)], 1)
    tgt = head(feat, torch.zeros(200, dtype=torch.long))[:, 0]
    assert (tgt[1:] <= tgt[:-1] + 1e-6).all()


def test_epoch_schedule_warmup_then_ramp():
    cfg = ModelConfig(name="test_resnet", head="arcface",
                      arcface=ArcFaceConfig(m=0.4, warmup_epochs=2, margin_epochs=2))  # fmt: skip
    model = create_model(cfg)
    margins = []
    for e in range(6):
        model.set_epoch(e)
        margins.append(model.head.margin)
    assert margins == pytest.approx([0.0, 0.0, 0.2, 0.4, 0.4, 0.4])
    flat = create_model(cfg.model_copy(update={"arcface": ArcFaceConfig(m=0.4)}))
    flat.set_epoch(0)
    assert flat.head.margin == pytest.approx(0.4)
