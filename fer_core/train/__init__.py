"""Training: the engine, its config, the class-balanced sampler and batched prediction."""

from fer_core.train.config import LossConfig, SmokeGates, TrainConfig
from fer_core.train.engine import TrainResult, train
from fer_core.train.errors import TrainingDivergedError
from fer_core.train.predict import predict_logits
from fer_core.train.protocols import Criterion, TrainData
from fer_core.train.sampler import ClassBalancedBatchSampler

__all__ = [
    "ClassBalancedBatchSampler",
    "Criterion",
    "LossConfig",
    "SmokeGates",
    "TrainConfig",
    "TrainData",
    "TrainResult",
    "TrainingDivergedError",
    "predict_logits",
    "train",
]
