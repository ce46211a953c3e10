"""Nested Learning: a deep optimizer whose momentum is a learned memory, meta-trained under memory bounds.

It trains through the engine (:func:`fer_core.train.train`): :class:`DeepMemoryOptimizer` is its optimizer and
:class:`NestedStepRunner` its step runner; :func:`train_nested` plugs them in.
"""

from fer_core.nested.config import NestedConfig, NestedGates
from fer_core.nested.memory import MemoryMLP, memory_snapshot
from fer_core.nested.optimizer import DeepMemoryOptimizer
from fer_core.nested.steps import MetaSource, NestedStepRunner
from fer_core.nested.train import NestedResult, train_nested

__all__ = [
    "DeepMemoryOptimizer",
    "MemoryMLP",
    "MetaSource",
    "NestedConfig",
    "NestedGates",
    "NestedResult",
    "NestedStepRunner",
    "memory_snapshot",
    "train_nested",
]
