"""Start-up of the commands that run flows: reuse the local stack's Prefect server, else start the embedded one early.

Only the stage commands call :func:`prepare_prefect`; ``--help``, ``validate``, ``evaluate``, ``score`` and the
other local tools never import Prefect, Ray or MLflow.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

_embedded: subprocess.Popen | None = None
_embedded_url: str | None = None
_fallback: threading.Thread | None = None
_fallback_error: list[BaseException] = []


def ferflow_home() -> Path:
    """``$FERFLOW_HOME`` (default ``~/.ferflow``); read here without importing the settings module."""
    return Path(os.environ.get("FERFLOW_HOME", Path.home() / ".ferflow")).expanduser()


def embedded_defaults() -> None:
    """Environment defaults read by Prefect and Ray at import time (an explicit setting always wins)."""
    os.environ.setdefault("PREFECT_HOME", str(ferflow_home() / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # MLflow 3 sends usage telemetry by default (a consumer thread in every process): off, like Prefect's and Ray's.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def _healthy(name: str, url: object, timeout_s: float) -> bool:
    """A loopback component answers: Prefect and MLflow their ``/health`` with 200, Ray's head accepts on its port."""
    if not isinstance(url, str):
        return False
    if name == "ray":
        import socket

        host, _, port = url.rpartition(":")
        if host != "127.0.0.1" or not port.isdigit():
            return False
        try:
            with socket.create_connection((host, int(port)), timeout=timeout_s):
                return True
        except OSError:
            return False
    if not url.startswith("http://127.0.0.1:"):
        return False
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout_s) as resp:  # noqa: S310 - loopback URL
            return resp.status == 200
    except (OSError, ValueError):
        return False


def local_stack_env(home: Path, timeout_s: float = 1.0) -> dict[str, str]:
    """The client settings of the healthy components ``ferflow stack up`` recorded in ``home`` (none when down).

    A command that finds the stack up uses all of it, as a shell with the stack's ``export`` lines would: Prefect's
    API, MLflow's tracking server (the one its UI shows) and Ray's head.

    Args:
        home: the ferflow home holding ``stack/state.json``.
        timeout_s: how long each health check may take (loopback: milliseconds when up).
    """
    try:
        components = json.loads((home / "stack" / "state.json").read_text(encoding="utf-8"))["components"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    env: dict[str, str] = {}
    for name in ("prefect", "mlflow", "ray"):
        entry = components.get(name) if isinstance(components, dict) else None
        if not isinstance(entry, dict) or not _healthy(name, entry.get("url"), timeout_s):
            continue
        client = entry.get("client_env")
        if isinstance(client, dict):
            env.update({k: v for k, v in client.items() if isinstance(k, str) and isinstance(v, str)})
        elif name == "prefect":  # a stack started before client_env was recorded
            env["PREFECT_API_URL"] = entry["url"]
    return env


def prepare_prefect(say=None) -> str:
    """Point Prefect at a server before any flow module is imported.

    With ``PREFECT_API_URL`` set, that server is used. Else a healthy local stack of this home is reused (with its
    MLflow server and Ray head when those are up too, unless ``MLFLOW_TRACKING_URI`` / ``FERFLOW_RAY_ADDRESS`` say
    otherwise). Else the
    embedded server is started at once, as Prefect starts its temporary one (the same app and settings, loopback, no
    UI), but before the flow modules import, so its start-up overlaps theirs; :func:`wait_for_prefect` waits for it.

    Args:
        say: called with a one-line note for the user (stderr), or ``None``.

    Returns:
        ``"env"``, ``"stack"``, ``"embedded"`` or ``"prefect"`` (Prefect already configured in this process, e.g. a
        test harness or a profile setting: Prefect decides).
    """
    embedded_defaults()
    home = Path(os.environ["PREFECT_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    if os.environ.get("PREFECT_API_URL"):
        require_reachable("Prefect", os.environ["PREFECT_API_URL"], "PREFECT_API_URL")
        return "env"
    stack = local_stack_env(ferflow_home())
    url = stack.get("PREFECT_API_URL")
    if url is not None:
        adopted = [k for k, v in stack.items() if os.environ.setdefault(k, v) == v]
        if say:
            extra = [n for n, k in (("MLflow", "MLFLOW_TRACKING_URI"), ("Ray", "FERFLOW_RAY_ADDRESS")) if k in adopted]
            say(f"using the local stack's Prefect server at {url}" + (f" (and its {' and '.join(extra)})" if extra
                                                                      else ""))  # fmt: skip
        return "stack"
    profiles = home / "profiles.toml"
    if "prefect" in sys.modules or (profiles.is_file() and "PREFECT_API_URL" in profiles.read_text(errors="replace")):
        return _prefect_decides()
    _spawn_embedded()
    return "embedded"


def _prefect_decides() -> str:
    """Prefect is already configured here: use its API URL, or start its own temporary server in a thread."""
    global _fallback
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url and _fallback is None:
        _fallback = threading.Thread(target=_start_prefects_own, name="ferflow-prefect-start", daemon=True)
        _fallback.start()
    return "prefect"


def _start_prefects_own() -> None:
    try:
        from prefect.server.api.server import SubprocessASGIServer

        SubprocessASGIServer().start()  # the instance Prefect's client reuses (one per process, port None)
    except BaseException as e:  # noqa: BLE001 - re-raised in the main thread by wait_for_prefect
        _fallback_error.append(e)


def _spawn_embedded() -> None:
    """Start Prefect's server app on a free loopback port (as ``SubprocessASGIServer`` does) and export its URL."""
    global _embedded, _embedded_url
    import importlib.util
    import socket

    spec = importlib.util.find_spec("prefect")  # its location only: importing prefect costs seconds
    app_dir = str(Path(spec.submodule_search_locations[0]).parent)  # type: ignore[union-attr,index]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
    cmd = [sys.executable, "-m", "uvicorn", "--app-dir", app_dir, "--factory", "prefect.server.api.server:create_app",
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "error", "--lifespan", "on"]  # fmt: skip
    _embedded = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    _embedded_url = f"http://127.0.0.1:{port}/api"
    os.environ["PREFECT_API_URL"] = _embedded_url
    atexit.register(_stop_embedded)


def _stop_embedded() -> None:
    if _embedded is not None and _embedded.poll() is None:
        _embedded.terminate()
        try:
            _embedded.wait(timeout=5)
        except subprocess.TimeoutExpired:
            _embedded.kill()
            _embedded.wait()


def wait_for_prefect() -> None:
    """Wait until the embedded server answers its health check (no-op when another server is used).

    Raises:
        ServerUnreachableError: the embedded server exited or did not answer in time (Prefect's start-up timeout).
    """
    from fer_core.errors import ServerUnreachableError

    if _fallback is not None:
        _fallback.join()
    if _fallback_error:
        e = _fallback_error[0]
        raise ServerUnreachableError(f"the embedded Prefect server did not start: {type(e).__name__}: "
                                     f"{str(e)[:500]}; start the local stack (ferflow stack up) or set "
                                     "PREFECT_API_URL to a running server") from e  # fmt: skip
    if _embedded is None:
        return
    timeout_s = float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120"))
    deadline = time.monotonic() + timeout_s
    retried = False
    while time.monotonic() < deadline:
        if _embedded.poll() is not None and not retried:  # e.g. its port was taken in between: once more
            retried = True
            os.environ.pop("PREFECT_API_URL", None)
            _spawn_embedded()
            continue
        if _embedded.poll() is not None:
            raise ServerUnreachableError(f"the embedded Prefect server exited with code {_embedded.returncode} "
                                         f"during start-up (PREFECT_HOME {os.environ['PREFECT_HOME']}); start the "
                                         "local stack (ferflow stack up) or set PREFECT_API_URL")  # fmt: skip
        try:
            with urllib.request.urlopen(f"{_embedded_url}/health", timeout=2) as resp:  # noqa: S310 - loopback
                if resp.status == 200:
                    return
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    _stop_embedded()
    raise ServerUnreachableError(f"the embedded Prefect server did not answer within {timeout_s:.0f} s "
                                 "(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS); the machine may be overloaded: "
                                 "retry, raise the timeout, or start the local stack (ferflow stack up)")  # fmt: skip


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
