"""Model configuration: backbone name, head type (linear or ArcFace), input spec and small-input stem."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from fer_core.config import FrozenModel


class ArcFaceConfig(FrozenModel):
    """Additive angular margin head (Deng et al., CVPR 2019) and its epoch schedule.

    Attributes:
        s: logit scale applied to the cosines.
        m: full angular margin in radians.
        warmup_epochs: epochs trained on plain scaled cosines (margin 0) before the margin starts.
        margin_epochs: epochs over which the margin ramps linearly from 0 to ``m`` after warm-up (0: full ``m`` at
            once).
    """

    s: float = Field(30.0, gt=0)
    m: float = Field(0.35, ge=0, lt=1.5)
    warmup_epochs: int = Field(0, ge=0)
    margin_epochs: int = Field(0, ge=0)


class ModelConfig(FrozenModel):
    """What :func:`fer_core.models.create_model` builds.

    Attributes:
        name: any timm architecture (``timm.list_models()``); ``small_input_stem`` needs a registered one
            (``fer_core.models.BACKBONES``) or a recognised stem (ResNet-like max-pool, ``conv_stem``, patchify,
            RepVGG/ByobNet).
        num_classes: output classes.
        in_chans: 1 (grey) or 3 (RGB).
        img_size: square input side in pixels (metadata and input checks; timm CNNs accept any size).
        head: ``"linear"`` or ``"arcface"``.
        arcface: ArcFace parameters (used when ``head == "arcface"``).
        small_input_stem: halve the stem's downsampling so 48-64 px inputs do not end as a ~2x2 feature map.
        drop_rate: dropout before the head.
        pretrained_path: a local weights file (timm backbone state_dict) loaded into the backbone; never downloaded.
        kwargs: keyword arguments of the timm architecture (e.g. ResNet ``channels: [32, 64, 128, 256]`` for half
            width, ``stem_type: deep``, ``drop_path_rate``); checked by :func:`fer_core.models.check_model_config`.
    """

    name: str
    num_classes: int = Field(7, ge=2)
    in_chans: Literal[1, 3] = 1
    img_size: int = Field(48, ge=8)
    head: Literal["linear", "arcface"] = "linear"
    arcface: ArcFaceConfig = ArcFaceConfig()
    small_input_stem: bool = False
    drop_rate: float = Field(0.0, ge=0, lt=1)
    pretrained_path: str | None = None
    kwargs: dict[str, Any] = {}
