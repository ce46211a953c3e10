"""predict_logits order and mode handling; per-class loss jump flags; gradient statistics; the lr schedule."""

import numpy as np
import pytest
import torch

from fer_core.models import ModelConfig, create_model
from fer_core.train import predict_logits
from fer_core.train.monitor import ClassLossTracker, norm_stats
from fer_core.train.schedule import WarmupCosine
from tests.core.train._data import separable


def test_predict_logits_in_data_order_independent_of_batch_size():
    data = separable(3)
    torch.manual_seed(0)
    model = create_model(ModelConfig(name="test_resnet", img_size=16)).train()
    a = predict_logits(model, data, batch_size=4)
    b = predict_logits(model, data, batch_size=100)
    assert model.training  # mode restored
    assert a.shape == (21, 7) and a.dtype == np.float32
    np.testing.assert_allclose(a, b, atol=1e-5)
    x, _ = data.get_batch(np.arange(len(data)))
    with torch.no_grad():
        np.testing.assert_allclose(a, model.eval()(x).numpy(), atol=1e-5)


def test_class_loss_jump_is_flagged_against_the_running_median():
    tr = ClassLossTracker(["a", "b"])
    for epoch, (la, lb) in enumerate([(1.0, 1.0), (0.8, 1.2), (0.6, 2.0), (1.5, 2.3)]):
        tr.update(torch.tensor([la, la, lb]), torch.tensor([0, 0, 1]))
        means, flags = tr.end_epoch(epoch)
        assert means["train_loss/a"] == pytest.approx(la)
        if epoch < 3:
            assert flags == []
    # epoch 3: a = 1.5 > 2 x median(1.0, 0.8, 0.6) = 1.6? no; b = 2.3 > 2 x median(1.0, 1.2, 2.0) = 2.4? no
    assert flags == []
    tr.update(torch.tensor([3.0]), torch.tensor([0]))
    _, flags = tr.end_epoch(4)
    assert flags == [{"epoch": 4, "class": "a", "loss": 3.0, "running_median": pytest.approx(0.9)}]


def test_norm_stats_and_schedule():
    s = norm_stats([1.0, 2.0, 3.0, 4.0])
    assert s["grad_norm/mean"] == 2.5 and s["grad_norm/max"] == 4.0 and s["grad_norm/p95"] == pytest.approx(3.85)
    f = WarmupCosine(warmup_steps=4, total_steps=12)
    assert [f(i) for i in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert f(8) == pytest.approx(0.5) and f(12) == pytest.approx(0.0)
