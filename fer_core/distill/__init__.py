"""Distillation from precomputed teacher logits (offline) or teacher models run on the student's batch (online)."""

from fer_core.distill.config import DistillConfig
from fer_core.distill.criterion import Criterion, DistillCriterion, make_distill_criterion
from fer_core.distill.online import OnlineDistillCriterion, load_teachers, make_online_distill_criterion
from fer_core.distill.strategies import STRATEGIES, TeacherStrategy

__all__ = [
    "STRATEGIES",
    "Criterion",
    "DistillConfig",
    "DistillCriterion",
    "OnlineDistillCriterion",
    "TeacherStrategy",
    "load_teachers",
    "make_distill_criterion",
    "make_online_distill_criterion",
]
