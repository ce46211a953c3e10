"""Models: the backbone registry, :func:`create_model`, the ArcFace head and checkpoints (contract 3.3)."""

from fer_core.models.arcface import ArcFaceHead
from fer_core.models.backbones import BACKBONES, create_backbone, create_model, stem_adapter
from fer_core.models.check import check_model_config
from fer_core.models.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint
from fer_core.models.config import ArcFaceConfig, ModelConfig
from fer_core.models.model import FERModel
from fer_core.models.reparam import has_reparam, reparameterize

__all__ = [
    "BACKBONES",
    "ArcFaceConfig",
    "ArcFaceHead",
    "CheckpointMeta",
    "FERModel",
    "ModelConfig",
    "check_model_config",
    "create_backbone",
    "create_model",
    "has_reparam",
    "load_checkpoint",
    "reparameterize",
    "save_checkpoint",
    "stem_adapter",
]
