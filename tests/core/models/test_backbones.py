"""Backbone registry sweep: output shape, finite values, a gradient for every parameter; stems; errors."""

import pytest
import timm
import torch

from fer_core.errors import CheckpointMismatchError, ConfigError
from fer_core.models import BACKBONES, ModelConfig, create_backbone, create_model

TINY = [n for n in BACKBONES.names() if n.startswith("test_")]
FULL = [n for n in BACKBONES.names() if not n.startswith("test_")]


def _forward_backward(name: str, head: str = "linear", size: int = 32) -> None:
    torch.manual_seed(0)
    model = create_model(ModelConfig(name=name, img_size=size, head=head, small_input_stem=True))
    model.train()
    x = torch.randn(2, 1, size, size)
    y = torch.tensor([0, 3])
    out = model(x, y)
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()
    out.float().pow(2).mean().backward()  # an objective that reaches every logit, hence every parameter
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert no_grad == []
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("name", TINY)
def test_tiny_backbones_forward_and_gradients(name):
    _forward_backward(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", FULL)
def test_full_backbones_forward_and_gradients(name):
    _forward_backward(name)


def test_registry_covers_the_required_names_and_timm_knows_them():
    required = {"resnet18", "efficientnet_b3", "efficientnet_b0", "convnext_tiny", "convnext_atto",
                "mobilenetv3_large_100", "mobilenetv3_small_050", "mobilenetv3_small_100",
                "test_resnet", "test_efficientnet", "test_convnext"}  # fmt: skip
    assert set(BACKBONES.names()) == required
    assert required <= set(timm.list_models())


def test_arcface_head_forward_and_gradients():
    _forward_backward("test_resnet", head="arcface")


@pytest.mark.parametrize(("name", "plain", "small"), [("test_resnet", 2, 3), ("test_efficientnet", 2, 3),
                                                       ("test_convnext", 1, 3)])  # fmt: skip
def test_small_input_stem_grows_the_final_map_and_keeps_parameters(name, plain, small):
    a = create_backbone(ModelConfig(name=name))
    b = create_backbone(ModelConfig(name=name, small_input_stem=True))
    x = torch.randn(1, 1, 48, 48)
    assert a.forward_features(x).shape[-1] == plain
    assert b.forward_features(x).shape[-1] == small
    assert {k: v.shape for k, v in a.state_dict().items()} == {k: v.shape for k, v in b.state_dict().items()}


def test_unknown_backbone_lists_valid_names():
    with pytest.raises(ConfigError) as e:
        create_model(ModelConfig(name="resnet19"))
    assert "resnet19" in str(e.value) and "mobilenetv3_small_050" in str(e.value) and "test_resnet" in str(e.value)


def test_rgb_input_and_class_count():
    m = create_model(ModelConfig(name="test_resnet", in_chans=3, num_classes=5))
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 5)


def test_pretrained_path_loads_local_weights_only(tmp_path):
    src = create_backbone(ModelConfig(name="test_efficientnet"))
    torch.save(src.state_dict(), tmp_path / "w.pth")
    m = create_model(ModelConfig(name="test_efficientnet", pretrained_path=str(tmp_path / "w.pth")))
    assert torch.equal(m.backbone.conv_stem.weight, src.conv_stem.weight)
    with pytest.raises(ConfigError, match="does not exist"):
        create_model(ModelConfig(name="test_efficientnet", pretrained_path=str(tmp_path / "missing.pth")))
    with pytest.raises(CheckpointMismatchError, match="missing"):
        create_model(ModelConfig(name="test_resnet", pretrained_path=str(tmp_path / "w.pth")))
