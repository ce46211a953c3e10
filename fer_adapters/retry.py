"""Retry only what can succeed on a second try: never ferflow's own refusals."""

from __future__ import annotations

from typing import Any

from fer_core.errors import FerError


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry network, server and resource errors; never a :class:`FerError`.

    A bad file, an unknown backbone or a failed gate fails the same way every time, so retrying it only leaves
    more failed runs behind.
    """
    try:
        state.result()
    except FerError:
        return False
    except Exception:  # noqa: BLE001 - anything else (I/O, server, OOM) may be transient
        return True
    return True
