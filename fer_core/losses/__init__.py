"""Loss functions, one module per concept; each registers itself in :data:`fer_core.losses._registry.LOSSES` or, for
distillation losses, :data:`~fer_core.losses._registry.DISTILL_LOSSES`. Every module here is imported on first use of
the package, so a new loss is one new file."""

import importlib
import pkgutil

from fer_core.losses._registry import DISTILL_LOSSES, LOSSES, DistillLoss, loss_config_for

for _m in pkgutil.iter_modules(__path__):
    if not _m.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_m.name}")

__all__ = ["DISTILL_LOSSES", "LOSSES", "DistillLoss", "loss_config_for"]
