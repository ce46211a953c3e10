"""Backbone registry over timm architectures and :func:`create_model` (never downloads: ``pretrained=False``).

Small-input stems (``ModelConfig.small_input_stem``) halve the stem's downsampling so a 48 px face ends as a 3x3
feature map instead of ~2x2 (ResNet, EfficientNet, MobileNetV3) or 1x1 (ConvNeXt):
- ResNet: the stem max-pool is removed (total stride 32 -> 16); weights are unchanged.
- EfficientNet / MobileNetV3: the stem convolution runs at stride 1 (32 -> 16); weights are unchanged.
- ConvNeXt: the 4x4 patchify convolution runs at stride 2 with padding 1 (32 -> 16); weights are unchanged.
- RepVGG / ByobNet (a single stem block): its stride-2 convolutions run at stride 1 (32 -> 16).
Because no parameter changes shape, pretrained weights still load after the stem is adapted. Any other timm name is
built as well; its stem adapter is found from its layout (:func:`stem_adapter`).
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from pathlib import Path

import timm
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


def _block_stem(m: nn.Module) -> None:
    for conv in m.stem.modules():
        if isinstance(conv, nn.Conv2d) and tuple(conv.stride) == (2, 2):
            conv.stride = (1, 1)


def stem_adapter(name: str, backbone: nn.Module) -> StemAdapter:
    """The small-input stem adapter of ``name``: the registered one, else one recognised from the layout.

    Raises:
        ConfigError: no adapter fits (the message names the supported layouts).
    """
    if name in BACKBONES:
        return BACKBONES.get(name)
    if isinstance(getattr(backbone, "maxpool", None), nn.MaxPool2d):
        return _resnet_stem
    if isinstance(getattr(backbone, "conv_stem", None), nn.Conv2d):
        return _conv_stem
    stem = getattr(backbone, "stem", None)
    if isinstance(stem, nn.Sequential) and isinstance(stem[0], nn.Conv2d) and tuple(stem[0].stride) == (4, 4):
        return _convnext_stem
    if isinstance(stem, nn.Module) and not isinstance(stem, nn.Sequential):
        if any(isinstance(c, nn.Conv2d) and tuple(c.stride) == (2, 2) for c in stem.modules()):
            return _block_stem
    raise ConfigError(
        f"small_input_stem: no stem adapter for {name!r} ({type(backbone).__name__}); supported: a stem max-pool "
        f"(ResNet), conv_stem (EfficientNet/MobileNet), a 4x4 patchify stem (ConvNeXt), a stem block (RepVGG); "
        f"registered: {BACKBONES.names()}; or set small_input_stem: false"
    )


def check_timm_name(name: str) -> None:
    """Raises ConfigError unless timm knows ``name`` (the message lists close names and the registered ones)."""
    if timm.is_model(name):
        return
    close = difflib.get_close_matches(name, timm.list_models(), n=8, cutoff=0.6)
    raise ConfigError(f"unknown backbone {name!r}: not a timm architecture; close timm names: {close}; "
                      f"registered (small-input stems): {BACKBONES.names()}")  # fmt: skip


_RESERVED = ("pretrained", "num_classes", "in_chans", "drop_rate", "features_only")


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
    from fer_core.models.checkpoint import read_checkpoint  # here: checkpoint imports this module

    state = read_checkpoint(p, what="pretrained_path")  # refuses pickled objects as a CheckpointMismatchError
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
        ConfigError: unknown backbone name (the message lists close and registered names), keyword arguments the
            architecture does not take (its valid ones listed), no stem adapter, or a missing weights file.
    """
    check_timm_name(cfg.name)
    reserved = sorted(set(cfg.kwargs) & set(_RESERVED))
    if reserved:
        raise ConfigError(f"model.kwargs {reserved} are set by ferflow (ModelConfig fields or fixed); remove them")
    try:
        backbone = timm.create_model(cfg.name, pretrained=False, num_classes=0, in_chans=cfg.in_chans, **cfg.kwargs)
    except TypeError as e:
        valid = _valid_kwargs(cfg.name)
        raise ConfigError(f"model {cfg.name!r} refuses kwargs {cfg.kwargs}: {e}; valid: {valid}") from e
    if cfg.small_input_stem:
        stem_adapter(cfg.name, backbone)(backbone)
    if cfg.pretrained_path:
        _load_local_weights(backbone, cfg.pretrained_path)
    return backbone


def _valid_kwargs(name: str) -> list[str]:
    """The keyword arguments of ``name``'s model class (from a default build)."""
    cls = type(timm.create_model(name, pretrained=False, num_classes=0))
    params = inspect.signature(cls.__init__).parameters
    return sorted(p for p in params if p not in ("self", "args", "kwargs", *_RESERVED))


def create_model(cfg: ModelConfig) -> FERModel:
    """Build the FER model a config describes.

    Args:
        cfg: backbone name, classes, input channels, head and stem options.

    Returns:
        A :class:`FERModel` whose ``forward(x [B, C_in, H, W], labels=None)`` returns logits ``[B, num_classes]``.

    Raises:
        ConfigError: as :func:`create_backbone`.
    """
    return FERModel(create_backbone(cfg), cfg)
