"""Start-up of the commands that run flows: reuse the local stack's Prefect server, else start the embedded one early.

Only the stage commands call :func:`prepare_prefect`; ``--help``, ``validate``, ``evaluate``, ``score`` and the
other local tools never import Prefect, Ray or MLflow.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import urllib.request
from pathlib import Path

_early: threading.Thread | None = None
_early_error: list[BaseException] = []


def ferflow_home() -> Path:
    """``$FERFLOW_HOME`` (default ``~/.ferflow``); read here without importing the settings module."""
    return Path(os.environ.get("FERFLOW_HOME", Path.home() / ".ferflow")).expanduser()


def embedded_defaults() -> None:
    """Environment defaults read by Prefect and Ray at import time (an explicit setting always wins)."""
    os.environ.setdefault("PREFECT_HOME", str(ferflow_home() / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def local_stack_prefect(home: Path, timeout_s: float = 1.0) -> str | None:
    """The API URL of the Prefect server ``ferflow stack up`` recorded in ``home``, if it answers its health check.

    Args:
        home: the ferflow home holding ``stack/state.json``.
        timeout_s: how long the health request may take (loopback: milliseconds when up).
    """
    try:
        state = json.loads((home / "stack" / "state.json").read_text(encoding="utf-8"))
        url = state["components"]["prefect"]["url"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(url, str) or not url.startswith("http://127.0.0.1:"):
        return None
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout_s) as resp:  # noqa: S310 - loopback URL
            return url if resp.status == 200 else None
    except (OSError, ValueError):
        return None


def _start_ephemeral() -> None:
    try:
        from prefect.server.api.server import SubprocessASGIServer

        SubprocessASGIServer().start()  # the instance Prefect's client reuses (one per process, port None)
    except BaseException as e:  # noqa: BLE001 - re-raised in the main thread by wait_for_prefect
        _early_error.append(e)


def prepare_prefect(say=None) -> str:
    """Point Prefect at a server before any flow module is imported.

    With ``PREFECT_API_URL`` set, that server is used. Else a healthy local stack of this home is reused. Else the
    embedded (temporary) server Prefect would start on the first flow call is started now, in a thread, so its
    start-up overlaps the import of the flow modules; :func:`wait_for_prefect` joins it.

    Args:
        say: called with a one-line note for the user (stderr), or ``None``.

    Returns:
        ``"env"``, ``"stack"`` or ``"embedded"``.
    """
    global _early
    embedded_defaults()
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    mode = "env"
    if os.environ.get("PREFECT_API_URL"):
        require_reachable("Prefect", os.environ["PREFECT_API_URL"], "PREFECT_API_URL")
    else:
        url = local_stack_prefect(ferflow_home())
        if url is not None:
            os.environ["PREFECT_API_URL"] = url
            mode = "stack"
            if say:
                say(f"using the local stack's Prefect server at {url}")
    from prefect.settings import get_current_settings

    if get_current_settings().api.url:
        return mode
    if _early is None:
        _early = threading.Thread(target=_start_ephemeral, name="ferflow-prefect-start", daemon=True)
        _early.start()
    return "embedded"


def wait_for_prefect() -> None:
    """Join the early start of the embedded server (no-op otherwise).

    Raises:
        ServerUnreachableError: the embedded server did not start (the reason from Prefect in the message).
    """
    if _early is not None:
        _early.join()
    if _early_error:
        from fer_core.errors import ServerUnreachableError

        e = _early_error[0]
        raise ServerUnreachableError(f"the embedded Prefect server did not start: {type(e).__name__}: "
                                     f"{str(e)[:500]}; start the local stack (ferflow stack up) or set "
                                     "PREFECT_API_URL to a running server") from e  # fmt: skip


def require_reachable(name: str, url: str, variable: str, timeout_s: float = 5.0) -> None:
    """Refuse to start when the server a variable names does not answer at all (any HTTP status counts as up).

    Raises:
        ServerUnreachableError: naming the server, the URL, the variable and the reason.
    """
    import urllib.error

    from fer_core.errors import ServerUnreachableError

    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=timeout_s):  # noqa: S310 - user's URL
            return
    except urllib.error.HTTPError:
        return  # it answered: authentication or routing is the client's business
    except (OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise ServerUnreachableError(f"{name} server {url} (from {variable}) does not answer: {reason}; start it "
                                     f"(ferflow stack up) or unset {variable} to run embedded") from e  # fmt: skip


def quiet_logging() -> None:
    """Keep refusals free of tracebacks in Prefect's run loggers (see ``ferflow._errors``)."""
    from ferflow._errors import quiet_prefect_refusals

    quiet_prefect_refusals()


def stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
