"""Where the current unit runs, for its MLflow run's tags (no Ray import: MLflow glue stays light)."""

from __future__ import annotations

import contextvars
import socket

# Set inside a Ray worker while it runs a unit or a Tune trial (fer_adapters.units.placed).
PLACEMENT: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("ferflow_placement", default=None)


def placement_tags() -> dict[str, str]:
    """``ferflow.worker_node`` / ``ferflow.resources`` of the unit running in this context (else: the driver)."""
    here = PLACEMENT.get()
    if here is not None:
        return dict(here)
    return {"ferflow.worker_node": f"driver {socket.gethostname()}", "ferflow.resources": "{}"}
