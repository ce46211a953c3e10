"""Profile-time model check: build the configured model and run it once at the profile's input size."""

from __future__ import annotations

import torch

from fer_core.errors import ConfigError, FerError
from fer_core.models.backbones import create_model
from fer_core.models.config import ModelConfig


def check_model_config(cfg: ModelConfig, where: str = "model") -> None:
    """Build ``cfg`` (never downloading) and forward a ``[2, in_chans, img_size, img_size]`` batch in eval mode.

    Args:
        cfg: the model config.
        where: the profile field, prefixed to the error message.

    Raises:
        ConfigError: unknown architecture (close and registered names listed), kwargs it does not take (valid ones
            listed), no small-input stem adapter, a missing weights file, or a forward that fails or does not
            return ``[2, num_classes]`` at this input size.
    """
    try:
        model = create_model(cfg).eval()
    except FerError as e:
        raise ConfigError(f"{where}: {e}") from e
    x = torch.zeros(2, cfg.in_chans, cfg.img_size, cfg.img_size)
    try:
        with torch.no_grad():
            out = model(x)
    except (RuntimeError, ValueError) as e:
        raise ConfigError(f"{where}: {cfg.name} fails on a {cfg.img_size} px input ({e}); use a larger img_size, "
                          "small_input_stem, or another backbone") from e  # fmt: skip
    if tuple(out.shape) != (2, cfg.num_classes):
        want = (2, cfg.num_classes)
        raise ConfigError(f"{where}: {cfg.name} returns {tuple(out.shape)} for 2 inputs, expected {want}")
