"""What every flow shares: the output root and the parameter resolution."""

from __future__ import annotations

from tasks.settings import Settings


def out_root() -> str:
    """Run outputs live under ``$FERFLOW_HOME/runs`` in content-addressed folders."""
    root = Settings.from_env().home / "runs"
    root.mkdir(parents=True, exist_ok=True)
    return str(root)
