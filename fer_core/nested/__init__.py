"""Nested Learning: a deep optimizer whose momentum is a learned memory, meta-trained under memory bounds."""

from fer_core.nested.config import NestedConfig, NestedGates
from fer_core.nested.memory import MemoryMLP, memory_snapshot
from fer_core.nested.optimizer import DeepMemoryOptimizer
from fer_core.nested.train import NestedResult, evaluate_model, train_nested

__all__ = [
    "DeepMemoryOptimizer",
    "MemoryMLP",
    "NestedConfig",
    "NestedGates",
    "NestedResult",
    "evaluate_model",
    "memory_snapshot",
    "train_nested",
]
