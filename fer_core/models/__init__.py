"""Models: the backbone registry, :func:`create_model`, the ArcFace head and checkpoints (contract 3.3)."""

from fer_core.models.arcface import ArcFaceHead
from fer_core.models.backbones import BACKBONES, create_backbone, create_model
from fer_core.models.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint
from fer_core.models.config import ArcFaceConfig, ModelConfig
from fer_core.models.model import FERModel

__all__ = [
    "BACKBONES",
    "ArcFaceConfig",
    "ArcFaceHead",
    "CheckpointMeta",
    "FERModel",
    "ModelConfig",
    "create_backbone",
    "create_model",
    "load_checkpoint",
    "save_checkpoint",
]
