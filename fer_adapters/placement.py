"""Where the current unit runs, for its MLflow run's tags (no Ray import: MLflow glue stays light)."""

from __future__ import annotations

import contextvars
import socket

# Set inside a Ray worker while it runs a unit or a Tune trial (fer_adapters.units.placed).
PLACEMENT: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("ferflow_placement", default=None)


# The profile a stage runs (set by the stage flow; carried into Ray units and Tune trials by fer_adapters.units), so
# every MLflow run says which profile made it.
PROFILE: contextvars.ContextVar[str] = contextvars.ContextVar("ferflow_profile", default="")


def profile_tags() -> dict[str, str]:
    """``ferflow.profile`` of the stage running in this context (empty outside a profile's stage)."""
    name = PROFILE.get()
    return {"ferflow.profile": name} if name else {}


def placement_tags() -> dict[str, str]:
    """``ferflow.worker_node`` / ``ferflow.resources`` of the unit running in this context (else: the driver)."""
    here = PLACEMENT.get()
    if here is not None:
        return dict(here)
    return {"ferflow.worker_node": f"driver {socket.gethostname()}", "ferflow.resources": "{}"}
