"""Distillation from precomputed teacher logits: configs, multi-teacher strategies and the engine criterion."""

from fer_core.distill.config import DistillConfig
from fer_core.distill.criterion import Criterion, DistillCriterion, make_distill_criterion
from fer_core.distill.strategies import STRATEGIES, TeacherStrategy

__all__ = ["STRATEGIES", "Criterion", "DistillConfig", "DistillCriterion", "TeacherStrategy", "make_distill_criterion"]
