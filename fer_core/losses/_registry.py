"""The loss registry (name → loss module class)."""

from fer_core.registry import Registry

LOSSES: Registry = Registry("loss")
