"""Any timm architecture by name with its keyword arguments, checked by building it at the profile's input size."""

import pytest
import torch

from fer_core.errors import ConfigError
from fer_core.models import ModelConfig, check_model_config, create_backbone, create_model, reparameterize

TINY_RESNET = {"channels": [8, 16, 32, 64]}  # ResNet width as timm's `channels` (the real x0.5 is 32..256)


def test_kwargs_reach_timm_and_set_the_width():
    m = create_model(ModelConfig(name="resnet18", kwargs=TINY_RESNET))
    assert m.head.in_features == 64 and m.backbone.layer1[0].conv1.out_channels == 8
    assert m(torch.zeros(2, 1, 32, 32)).shape == (2, 7)


def test_bad_and_reserved_kwargs_are_refused_with_the_valid_ones():
    with pytest.raises(ConfigError, match=r"'width'.*valid: \[.*'channels'.*'stem_type'"):
        create_model(ModelConfig(name="resnet18", kwargs={"width": 0.5}))
    with pytest.raises(ConfigError, match=r"\['in_chans'\] are set by ferflow"):
        create_model(ModelConfig(name="resnet18", kwargs={"in_chans": 3}))


def test_an_unknown_name_lists_close_timm_names():
    with pytest.raises(ConfigError, match=r"close timm names: \[.*'resnet18'"):
        check_model_config(ModelConfig(name="resnet19"), where="student.train.model")


def test_unregistered_resnet_gets_the_stem_adapter_from_its_layout():
    kw = {**TINY_RESNET}
    plain = create_backbone(ModelConfig(name="resnet10t", kwargs=kw))
    small = create_backbone(ModelConfig(name="resnet10t", kwargs=kw, small_input_stem=True))
    x = torch.zeros(1, 1, 48, 48)
    assert plain.forward_features(x).shape[-1] == 2 and small.forward_features(x).shape[-1] == 3


def test_the_check_builds_at_the_profile_input_size_and_names_the_field():
    check_model_config(ModelConfig(name="test_convnext", img_size=32), where="student.train.model")
    # patchify /4 then three /2 downsamplings: 8 px leaves a 1x1 map before the last 2x2-kernel downsampling
    with pytest.raises(ConfigError, match=r"^teachers\[t\]\.train\.model: test_convnext fails on a 8 px input"):
        check_model_config(ModelConfig(name="test_convnext", img_size=8), where="teachers[t].train.model")


def test_repvgg_small_stem_reparameterises_to_the_same_function():
    torch.manual_seed(0)
    m = create_model(ModelConfig(name="repvgg_a0", small_input_stem=True, img_size=32)).eval()
    assert all(tuple(c.stride) == (1, 1) for c in m.backbone.stem.modules() if isinstance(c, torch.nn.Conv2d))
    fused = reparameterize(m)
    convs = sum(isinstance(c, torch.nn.Conv2d) for c in m.modules())
    assert sum(isinstance(c, torch.nn.Conv2d) for c in fused.modules()) < convs  # branches became one conv
    assert sum(isinstance(c, torch.nn.Conv2d) for c in m.modules()) == convs  # the source model is untouched
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        a, b = m(x), fused(x)
    assert torch.allclose(a, b, rtol=1e-4, atol=1e-5 * float(a.abs().max()))
