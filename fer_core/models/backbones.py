"""Backbone registry over timm architectures and :func:`create_model` (never downloads: ``pretrained=False``).

Small-input stems (``ModelConfig.small_input_stem``) halve the stem's downsampling so a 48 px face ends as a 3x3
feature map instead of ~2x2 (ResNet, EfficientNet, MobileNetV3) or 1x1 (ConvNeXt):
- ResNet: the stem max-pool is removed (total stride 32 -> 16); weights are unchanged.
- EfficientNet / MobileNetV3: the stem convolution runs at stride 1 (32 -> 16); weights are unchanged.
- ConvNeXt: the 4x4 patchify convolution runs at stride 2 with padding 1 (32 -> 16); weights are unchanged.
Because no parameter changes shape, pretrained weights still load after the stem is adapted.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import timm
import torch
from torch import nn

from fer_core.errors import CheckpointMismatchError, ConfigError
from fer_core.models.config import ModelConfig
from fer_core.models.model import FERModel
from fer_core.registry import Registry

StemAdapter = Callable[[nn.Module], None]
BACKBONES: Registry[StemAdapter] = Registry("backbone")


def _resnet_stem(m: nn.Module) -> None:
    m.maxpool = nn.Identity()


def _conv_stem(m: nn.Module) -> None:
    m.conv_stem.stride = (1, 1)


def _convnext_stem(m: nn.Module) -> None:
    conv = m.stem[0]
    conv.stride = (2, 2)
    conv.padding = (1, 1)


_FAMILIES: dict[StemAdapter, tuple[str, ...]] = {
    _resnet_stem: ("resnet18", "test_resnet"),
    _conv_stem: (
        "efficientnet_b0",
        "efficientnet_b3",
        "mobilenetv3_large_100",
        "mobilenetv3_small_050",
        "mobilenetv3_small_100",
        "test_efficientnet",
    ),
    _convnext_stem: ("convnext_tiny", "convnext_atto", "test_convnext"),
}
for _adapter, _names in _FAMILIES.items():
    for _name in _names:
        BACKBONES.add(_name, _adapter)


def _load_local_weights(backbone: nn.Module, path: str) -> None:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"pretrained_path {p} does not exist; give a local timm state_dict file (no downloads)")
    state = torch.load(p, map_location="cpu", weights_only=True)  # noqa: TID251 - backbone weights, not a checkpoint
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    own = backbone.state_dict()
    # timm classifier weights are dropped: the backbone is built with num_classes=0.
    state = {k: v for k, v in state.items() if k in own or not k.startswith(("fc.", "classifier.", "head.fc."))}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointMismatchError(
            f"pretrained weights {p} do not fit backbone {type(backbone).__name__}: "
            f"{len(missing)} missing (e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]})"
        )
    backbone.load_state_dict(state)


def create_backbone(cfg: ModelConfig) -> nn.Module:
    """The timm backbone alone (pooled features ``[B, D]``), stem adapted when ``cfg.small_input_stem``.

    Raises:
        ConfigError: unknown backbone name (the message lists the valid names) or a missing weights file.
    """
    adapter = BACKBONES.get(cfg.name)
    backbone = timm.create_model(cfg.name, pretrained=False, num_classes=0, in_chans=cfg.in_chans)
    if cfg.small_input_stem:
        adapter(backbone)
    if cfg.pretrained_path:
        _load_local_weights(backbone, cfg.pretrained_path)
    return backbone


def create_model(cfg: ModelConfig) -> FERModel:
    """Build the FER model a config describes.

    Args:
        cfg: backbone name, classes, input channels, head and stem options.

    Returns:
        A :class:`FERModel` whose ``forward(x [B, C_in, H, W], labels=None)`` returns logits ``[B, num_classes]``.

    Raises:
        ConfigError: unknown backbone (valid names listed) or a missing ``pretrained_path``.
    """
    return FERModel(create_backbone(cfg), cfg)
