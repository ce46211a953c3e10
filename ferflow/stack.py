"""The local stack behind `ferflow stack up|down|status`: Prefect server + worker, MLflow server, Ray head on loopback.

Every component runs as the leader of its own session, so `stack_down` can stop exactly the processes `stack_up`
started (Ray's raylet, GCS and workers included) and nothing else: it never calls `ray stop`, which would kill every
Ray process of the user. State (pids, commands, ports, start-up times) lives in ``$FERFLOW_HOME/stack/state.json``,
logs in ``$FERFLOW_HOME/stack/<component>.log``.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import BaseModel

from fer_core.errors import ConfigError, FerError
from fer_core.io import atomic_write_json, atomic_write_text
from fer_spec.settings import Settings
from ferflow import _stack_procs as procs

COMPONENTS: tuple[str, ...] = ("prefect", "worker", "mlflow", "ray")
WORK_POOLS: tuple[str, ...] = ("cpu", "gpu")
#: What each pool's page in the Prefect UI says (the pool is where a person looks first when a run does not start).
POOL_DESCRIPTIONS: dict[str, str] = {
    "cpu": "ferflow's CPU flow runs: ingest, ensemble sweep, calibrate, package, report, replicate and the pipeline. "
           "`ferflow stack up` starts a worker for this pool; units inside a run are placed on Ray.",
    "gpu": "ferflow's GPU stage deployments (teachers, distill, distill sweep, nested). \"Not Ready\" means no worker "
           "polls it: the local stack starts only a cpu worker. Run the `pipeline` deployment instead, or start a "
           "worker on a GPU machine: `prefect worker start --pool gpu` (infra/README.md, GPU pool).",
}  # fmt: skip
HOST = "127.0.0.1"


class StackError(FerError):
    """A stack component did not start, did not become healthy, or its port is taken."""


class ComponentStatus(BaseModel):
    """One component as `stack_status` sees it.

    Attributes:
        name: ``prefect``, ``worker``, ``mlflow`` or ``ray``.
        pid: session leader pid recorded by `stack_up` (None if never started).
        pids: live processes of its session right now.
        alive: the session still has live processes.
        healthy: its health check answers (HTTP endpoint, worker heartbeat, ``ray status``).
        url: where clients reach it.
        startup_s: seconds from spawn to healthy, measured by `stack_up`.
        detail: why it is unhealthy, or a short note.
        log: its log file.
    """

    name: str
    pid: int | None = None
    pids: list[int] = []
    alive: bool = False
    healthy: bool = False
    url: str | None = None
    startup_s: float | None = None
    detail: str = ""
    log: str | None = None


class StackStatus(BaseModel):
    """The whole stack: one `ComponentStatus` per recorded component and the environment clients need."""

    home: str
    components: dict[str, ComponentStatus]
    env: dict[str, str]
    uis: dict[str, str] = {}

    @property
    def healthy(self) -> bool:
        """True when at least one component is recorded and every recorded one is healthy."""
        return bool(self.components) and all(c.healthy for c in self.components.values())

    def export_lines(self) -> str:
        """``export NAME=value`` lines for a shell (values quoted)."""
        return "\n".join(f"export {k}={json.dumps(v)}" for k, v in sorted(self.env.items()))

    def ui_lines(self) -> str:
        """Where a person opens each web UI, one line each (``Prefect UI  http://...``)."""
        width = max((len(k) for k in self.uis), default=0)
        return "\n".join(f"{name:<{width}}  {url}" for name, url in self.uis.items())

    def table(self) -> str:
        """The status as a person reads it: one line per component, then the UIs."""
        if not self.components:
            return f"no stack recorded in {self.home}; start one with `ferflow stack up`"
        lines = [f"stack in {self.home}: {'healthy' if self.healthy else 'NOT healthy'}"]
        for c in self.components.values():
            state = "healthy" if c.healthy else ("alive, unhealthy" if c.alive else "down")
            took = f", up in {c.startup_s} s" if c.startup_s is not None else ""
            lines.append(f"  {c.name:<8} {state:<16} {c.url or '-'}  (pid {c.pid}{took}) {c.detail}".rstrip())
        if self.uis:
            lines += ["", *self.ui_lines().splitlines()]
        return "\n".join(lines)


def stack_dir(settings: Settings) -> Path:
    """``$FERFLOW_HOME/stack``: state file, logs, PID files and the Ray token."""
    return settings.home / "stack"


def _state_path(settings: Settings) -> Path:
    return stack_dir(settings) / "state.json"


_ENTRY_FIELDS: dict[str, type | tuple[type, ...]] = {"pid": int, "start_ticks": int, "boot_id": str}


def read_state(path: Path) -> dict:
    """The stack's ``state.json``, checked: a ``components`` mapping of known names, each with the fields that
    identify its process (``pid``, ``start_ticks``, ``boot_id``).

    Raises:
        ConfigError: unreadable JSON, or a missing or mistyped field (named, with the way out).
    """
    if not path.exists():
        return {"components": {}}
    fix = f"stop any stack process by the pids in {path.parent}/*.pid, then delete the file"
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"stack state {path} is unreadable ({e}); {fix}") from e
    if not isinstance(state, dict) or not isinstance(state.get("components"), dict):
        raise ConfigError(f"stack state {path} lacks its 'components' mapping; {fix}")
    for name, entry in state["components"].items():
        if name not in COMPONENTS or not isinstance(entry, dict):
            raise ConfigError(f"stack state {path}: component {name!r} is not one of {list(COMPONENTS)} with a "
                              f"mapping of fields; {fix}")  # fmt: skip
        for field, kind in _ENTRY_FIELDS.items():
            value = entry.get(field)
            if not isinstance(value, kind) or isinstance(value, bool):
                got = "missing" if field not in entry else f"{value!r}"
                raise ConfigError(f"stack state {path}: components.{name}.{field} is {got} (want "
                                  f"{kind.__name__}); {fix}")  # fmt: skip
    return state


def _load_state(settings: Settings) -> dict:
    return read_state(_state_path(settings))


def _save_state(settings: Settings, state: dict) -> None:
    atomic_write_json(_state_path(settings), state)


def _exe(name: str) -> str:
    """The console script ``name`` of this interpreter's environment (falls back to PATH)."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        raise StackError(f"executable {name!r} not found beside {sys.executable} nor on PATH; install ferflow's deps")
    return found


def _ray_token_path(settings: Settings) -> Path:
    return stack_dir(settings) / "ray_auth_token"


def _ray_temp_dir(settings: Settings) -> Path:
    # Ray puts unix sockets under its temp dir; a deep FERFLOW_HOME would pass the 107-byte socket path limit.
    digest = hashlib.sha256(str(settings.home).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"ferflow-ray-{digest}"


def stack_env(settings: Settings) -> dict[str, str]:
    """Environment a client exports to use the stack (the same values `stack_up` returns).

    Returns:
        ``FERFLOW_HOME``, ``PREFECT_API_URL``, ``MLFLOW_TRACKING_URI``, ``FERFLOW_RAY_ADDRESS``, ``RAY_AUTH_MODE``,
        in token mode ``RAY_AUTH_TOKEN_PATH``, and ``FERFLOW_PROJECT_DIR`` (the checkout deployments pull from) when
        it is set or ferflow runs from a checkout.
    """
    env = {
        "FERFLOW_HOME": str(settings.home),
        "PREFECT_API_URL": f"http://{HOST}:{settings.prefect_port}/api",
        "MLFLOW_TRACKING_URI": f"http://{HOST}:{settings.mlflow_port}",
        "FERFLOW_RAY_ADDRESS": settings.ray_address or f"{HOST}:{settings.ray_port}",  # an external cluster wins
        "RAY_AUTH_MODE": settings.ray_auth_mode,
        # Ray resolves a 127.0.0.1 address to the machine's interface address before connecting; with this off it
        # keeps drivers and workers on loopback, where the stack's head listens (single-machine stack).
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    }
    if settings.ray_auth_mode == "token":
        env["RAY_AUTH_TOKEN_PATH"] = str(_ray_token_path(settings))
    project = os.environ.get("FERFLOW_PROJECT_DIR") or _checkout_dir()
    if project:
        env["FERFLOW_PROJECT_DIR"] = project
    return env


#: The variables of :func:`stack_env` a client sets to use each component (commands adopt them while it is healthy).
_CLIENT_VARS: dict[str, tuple[str, ...]] = {
    "prefect": ("PREFECT_API_URL",),
    "mlflow": ("MLFLOW_TRACKING_URI",),
    "ray": ("FERFLOW_RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"),
}


def _client_env(name: str, settings: Settings) -> dict[str, str]:
    env = stack_env(settings)
    return {k: env[k] for k in _CLIENT_VARS.get(name, ()) if k in env}


def _checkout_dir() -> str | None:
    """The repository checkout holding prefect.yaml (its `pull` step reads FERFLOW_PROJECT_DIR), if we run from one."""
    root = Path(__file__).resolve().parents[1]
    return str(root) if (root / "prefect.yaml").is_file() else None


def _base_env(settings: Settings) -> dict[str, str]:
    """Environment every component (and every flow run the worker launches) starts with."""
    env = dict(os.environ)
    env.update(stack_env(settings))
    env.update(
        {
            "PREFECT_HOME": str(settings.home / "prefect"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{settings.home / 'prefect' / 'prefect.db'}",
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "RAY_USAGE_STATS_ENABLED": "0",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _command(name: str, settings: Settings, artifacts: str) -> list[str]:
    """The start command of one component (all bound to loopback)."""
    if name == "prefect":
        return [_exe("prefect"), "server", "start", "--host", HOST, "--port", str(settings.prefect_port),
                "--analytics-off", "--no-background"]  # fmt: skip
    if name == "worker":
        return [_exe("prefect"), "--no-prompt", "worker", "start", "--pool", "cpu", "--type", "process",
                "--name", f"ferflow-cpu-{settings.prefect_port}", "--no-create-pool-if-not-found"]  # fmt: skip
    if name == "mlflow":
        return [_exe("mlflow"), "server", "--host", HOST, "--port", str(settings.mlflow_port), "--workers", "1",
                "--backend-store-uri", f"sqlite:///{settings.home / 'mlflow-server.db'}",
                "--artifacts-destination", artifacts,
                "--allowed-hosts", f"{HOST}:{settings.mlflow_port},localhost:{settings.mlflow_port}"]  # fmt: skip
    if name == "ray":
        lo, hi = ray_worker_ports(settings)
        return [_exe("ray"), "start", "--head", "--block", "--port", str(settings.ray_port),
                "--node-ip-address", HOST, "--dashboard-host", HOST,
                "--dashboard-port", str(settings.ray_dashboard_port),
                "--object-store-memory", str(settings.ray_object_store_mb * 1024 * 1024),
                "--num-cpus", str(settings.ray_num_cpus), "--disable-usage-stats",
                "--min-worker-port", str(lo), "--max-worker-port", str(hi),
                # The dashboard agent's default port (52365) is fixed: a second stack on the machine would collide.
                "--dashboard-agent-listen-port", str(procs.free_port()),
                "--temp-dir", str(_ray_temp_dir(settings))]  # fmt: skip
    raise ConfigError(f"unknown stack component {name!r}; choose from {list(COMPONENTS)}")


def ray_worker_ports(settings: Settings, width: int = 1000) -> tuple[int, int]:
    """A worker-port range for the Ray head that holds none of ferflow's own ports.

    Ray's default range (10002-19999) swallowed any ``FERFLOW_RAY_PORT`` (or Prefect/MLflow/dashboard port) chosen in
    it, and the head then failed with "Address already in use"; the first ``width``-port block from 10002 up that
    holds none of them is used instead.
    """
    taken = {settings.prefect_port, settings.mlflow_port, settings.ray_port, settings.ray_dashboard_port}
    lo = 10002
    while any(lo <= p < lo + width for p in taken):
        lo += width
    if lo + width - 1 > 65535:
        raise ConfigError(f"no free {width}-port range for Ray's workers above 10002 outside ferflow's ports {taken}")
    return lo, lo + width - 1


def _url(name: str, settings: Settings) -> str | None:
    return {
        "prefect": f"http://{HOST}:{settings.prefect_port}/api",
        "mlflow": f"http://{HOST}:{settings.mlflow_port}",
        "ray": f"{HOST}:{settings.ray_port}",
    }.get(name)


def _port(name: str, settings: Settings) -> int | None:
    return {"prefect": settings.prefect_port, "mlflow": settings.mlflow_port, "ray": settings.ray_port}.get(name)


def _api_json(url: str, payload: dict | None = None, timeout_s: float = 5.0):
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 - loopback URL we built
        return json.loads(resp.read() or b"null")


def _worker_online(settings: Settings) -> tuple[bool, str]:
    url = f"{_url('prefect', settings)}/work_pools/cpu/workers/filter"
    try:
        workers = _api_json(url, {})
    except (OSError, ValueError) as e:
        return False, f"cannot list workers of pool 'cpu': {e}"
    mine = f"ferflow-cpu-{settings.prefect_port}"
    online = [w["name"] for w in workers if str(w.get("status", "")).upper() == "ONLINE"]
    if mine in online:
        return True, f"worker {mine} ONLINE in pool 'cpu'"
    return False, f"worker {mine} not ONLINE in pool 'cpu' (online: {online})"


def _ray_healthy(settings: Settings, env: dict[str, str]) -> tuple[bool, str]:
    try:
        out = subprocess.run([_exe("ray"), "status", "--address", _url("ray", settings) or ""], env=env,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    except subprocess.TimeoutExpired:
        return False, "`ray status` timed out"
    return out.returncode == 0, "ray status ok" if out.returncode == 0 else (out.stderr or out.stdout)[-400:]


def dashboard_url(settings: Settings) -> str:
    """Where the local stack's Ray dashboard serves (loopback only)."""
    return f"http://{HOST}:{settings.ray_dashboard_port}"


def _dashboard_serves(settings: Settings) -> tuple[bool, str]:
    """The advertised dashboard port must answer: Ray is healthy only when its dashboard is too."""
    url = dashboard_url(settings)
    if not procs.http_ok(url + "/"):
        return False, f"ray status ok, but the dashboard does not answer at {url} (is ray[default] installed?)"
    login = f"; log in with the token in {_ray_token_path(settings)}" if settings.ray_auth_mode == "token" else ""
    return True, f"ray status ok; dashboard {url}{login}"


def _health(name: str, settings: Settings, env: dict[str, str]) -> tuple[bool, str]:
    """(healthy, detail) of one component; cheap checks first."""
    if name == "prefect":
        ok = procs.http_ok(f"{_url('prefect', settings)}/health")
        return ok, "/api/health ok" if ok else "/api/health does not answer"
    if name == "mlflow":
        ok = procs.http_ok(f"{_url('mlflow', settings)}/health")
        return ok, "/health ok" if ok else "/health does not answer"
    if name == "worker":
        return _worker_online(settings)
    if name == "ray":
        if not procs.port_open(settings.ray_port):
            return False, f"GCS port {settings.ray_port} closed"
        ok, detail = _ray_healthy(settings, env)
        return (ok, detail) if not ok else _dashboard_serves(settings)
    raise ConfigError(f"unknown stack component {name!r}; choose from {list(COMPONENTS)}")


def _record(entry: dict) -> procs.Spawned:
    return procs.Spawned(pid=entry["pid"], start_ticks=entry["start_ticks"], boot_id=entry["boot_id"])


def _ensure_work_pools(settings: Settings, env: dict[str, str]) -> None:
    """Create the process pools `cpu` and `gpu` on the stack's server if missing (`prefect work-pool create`)."""
    api = _url("prefect", settings)
    running = []
    for pool in WORK_POOLS:
        if procs.http_ok(f"{api}/work_pools/{pool}"):
            continue
        cmd = [_exe("prefect"), "--no-prompt", "work-pool", "create", pool, "--type", "process"]
        running.append((pool, subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)))
    for pool, proc in running:
        out, _ = proc.communicate(timeout=120)
        if proc.returncode != 0 or not procs.http_ok(f"{api}/work_pools/{pool}"):
            raise StackError(f"could not create work pool {pool!r} on {api}: {out.decode(errors='replace')[-600:]}")
    describe_pools(api)


def describe_pools(api: str) -> None:
    """Give each of ferflow's work pools its description (``prefect work-pool create`` cannot set one)."""
    for pool, text in POOL_DESCRIPTIONS.items():
        if (_api_json(f"{api}/work_pools/{pool}") or {}).get("description") != text:
            req = urllib.request.Request(f"{api}/work_pools/{pool}", data=json.dumps({"description": text}).encode(),
                                         headers={"Content-Type": "application/json"}, method="PATCH")  # fmt: skip
            with urllib.request.urlopen(req, timeout=10):  # noqa: S310 - loopback URL we built
                pass


def _wait_healthy(name: str, settings: Settings, env: dict[str, str], rec: procs.Spawned, timeout_s: float) -> str:
    """Poll until healthy; raise StackError with the log tail if the process dies or the timeout passes."""
    log = stack_dir(settings) / f"{name}.log"
    deadline = time.monotonic() + timeout_s
    detail = ""
    while time.monotonic() < deadline:
        if not procs.owned_members(rec):
            raise StackError(f"stack component {name!r} exited during start-up; log {log}:\n{procs.log_tail(log)}")
        ok, detail = _health(name, settings, env)
        if ok:
            return detail
        time.sleep(0.5)
    procs.stop_session(rec)
    raise StackError(
        f"stack component {name!r} not healthy after {timeout_s:.0f} s ({detail}); stopped it. "
        f"Log {log}:\n{procs.log_tail(log)}"
    )


def _check_port_free(name: str, settings: Settings) -> None:
    port = _port(name, settings)
    if port is not None and procs.port_open(port):
        var = {"prefect": "FERFLOW_PREFECT_PORT", "mlflow": "FERFLOW_MLFLOW_PORT", "ray": "FERFLOW_RAY_PORT"}[name]
        raise StackError(f"port {port} for {name!r} is already in use on {HOST}; free it or set {var} to another port")


def _launch(name: str, settings: Settings, artifacts: str, env: dict[str, str], state: dict) -> procs.Spawned:
    _check_port_free(name, settings)
    cmd = _command(name, settings, artifacts)
    log = stack_dir(settings) / f"{name}.log"
    rec = procs.spawn(cmd, env, log, cwd=settings.home)
    atomic_write_text(stack_dir(settings) / f"{name}.pid", f"{rec.pid}\n")
    state["components"][name] = {"pid": rec.pid, "start_ticks": rec.start_ticks, "boot_id": rec.boot_id,
                                 "cmd": cmd, "port": _port(name, settings), "url": _url(name, settings),
                                 "log": str(log), "spawned_at": time.time(), "startup_s": None,
                                 "client_env": _client_env(name, settings)}  # fmt: skip
    _save_state(settings, state)
    return rec


def _prepare(settings: Settings, artifacts: str) -> None:
    stack_dir(settings).mkdir(parents=True, exist_ok=True)
    (settings.home / "prefect").mkdir(parents=True, exist_ok=True)
    if not artifacts.startswith("s3://"):
        Path(artifacts).mkdir(parents=True, exist_ok=True)
    token = _ray_token_path(settings)
    if settings.ray_auth_mode == "token" and not token.exists():
        atomic_write_text(token, secrets.token_hex(32))
        token.chmod(0o600)


def stack_up(
    settings: Settings,
    components: Sequence[str] = COMPONENTS,
    artifacts: str | None = None,
    timeout_s: float = 90.0,
    on_event: Callable[[str], None] | None = None,
) -> StackStatus:
    """Start the selected components on loopback and wait until each is healthy; skip those already healthy.

    Prefect, MLflow and Ray start side by side; the work pools `cpu` and `gpu` (process type) are created once the
    Prefect API answers, then the `cpu` worker starts.

    Args:
        settings: ports, home and Ray options (`Settings.from_env()`).
        components: subset of ``("prefect", "worker", "mlflow", "ray")``; ``worker`` needs ``prefect``.
        artifacts: MLflow artifact destination (local folder or ``s3://bucket/prefix``); default ``settings.artifacts``.
            For S3 the server needs ``MLFLOW_S3_ENDPOINT_URL`` (if not AWS) and the ``AWS_*`` variables.
        timeout_s: per-component health timeout in seconds (Prefect takes 12-30 s on a small machine).
        on_event: called with a one-line progress message (the CLI prints them).

    Returns:
        The `stack_status` after start-up; ``.env`` holds the variables to export.

    Raises:
        ConfigError: an unknown component, or ``worker`` without ``prefect`` running or requested.
        StackError: a port is taken, or a component exited or stayed unhealthy (its log tail is in the message).
    """
    say = on_event or (lambda _msg: None)
    wanted = [c for c in COMPONENTS if c in components]
    unknown = sorted(set(components) - set(COMPONENTS))
    if unknown:
        raise ConfigError(f"unknown stack component(s) {unknown}; choose from {list(COMPONENTS)}")
    artifacts = artifacts or settings.artifacts
    _prepare(settings, artifacts)
    env = _base_env(settings)
    state = _load_state(settings)
    current = stack_status(settings).components
    todo = [c for c in wanted if not (c in current and current[c].healthy)]
    if "worker" in todo and "prefect" not in wanted and not current.get("prefect", ComponentStatus(name="")).healthy:
        raise ConfigError("component 'worker' needs 'prefect': add it to components or start it first")
    for name in todo:
        if name in current and current[name].alive:
            say(f"{name}: recorded but unhealthy, restarting")
            procs.stop_session(_record(state["components"][name]))
    started: dict[str, procs.Spawned] = {}
    try:
        for name in todo:
            if name != "worker":
                started[name] = _launch(name, settings, artifacts, env, state)
        for name in ("prefect", "mlflow", "ray"):
            if name in started:
                _finish(name, settings, env, started[name], state, timeout_s, say)
        if "prefect" in wanted:
            _ensure_work_pools(settings, env)
            say(
                f"work pools {list(WORK_POOLS)} ready; only 'cpu' gets a worker here, so deployments on pool 'gpu' "
                "show Not Ready until a GPU machine runs `prefect worker start --pool gpu` (infra/README.md)"
            )
        if "worker" in todo:
            started["worker"] = _launch("worker", settings, artifacts, env, state)
            _finish("worker", settings, env, started["worker"], state, timeout_s, say)
    except BaseException:
        # A later component failed: stop what this call started, leave what was already running.
        say(f"start-up failed: stopping what this call started ({', '.join(started) or 'nothing'})")
        stack_down(settings, components=list(started))
        raise
    status = stack_status(settings)
    return status


def _finish(name, settings, env, rec, state, timeout_s, say) -> None:
    detail = _wait_healthy(name, settings, env, rec, timeout_s)
    entry = state["components"][name]
    entry["startup_s"] = round(time.time() - entry["spawned_at"], 2)
    _save_state(settings, state)
    say(f"{name}: healthy in {entry['startup_s']} s ({detail}), pid {rec.pid}, log {entry['log']}")


def stack_down(settings: Settings, grace_s: float = 15.0, components: Sequence[str] = COMPONENTS) -> list[str]:
    """Stop exactly what `stack_up` recorded (worker first, Ray last); idempotent.

    Each component's whole session gets SIGTERM, then SIGKILL after ``grace_s`` for any straggler; a record from
    another boot or whose pid now names another process is dropped without signalling anything.

    Args:
        settings: the stack's home.
        grace_s: seconds to wait after SIGTERM before SIGKILL.
        components: the subset to stop (default all); ``stack_up`` with the same subset restarts them.

    Returns:
        Names of the components that still had live processes and were stopped.

    Raises:
        ConfigError: an unknown component name.
    """
    unknown = sorted(set(components) - set(COMPONENTS))
    if unknown:
        raise ConfigError(f"unknown stack component(s) {unknown}; choose from {list(COMPONENTS)}")
    state = _load_state(settings)
    stopped = []
    for name in ("worker", "prefect", "mlflow", "ray"):
        entry = state["components"].get(name)
        if entry is None or name not in components:
            continue
        if procs.stop_session(_record(entry), grace_s=grace_s):
            stopped.append(name)
        del state["components"][name]
        (stack_dir(settings) / f"{name}.pid").unlink(missing_ok=True)
        _save_state(settings, state)
    if "ray" in components:
        shutil.rmtree(_ray_temp_dir(settings), ignore_errors=True)
    return stopped


def stack_status(settings: Settings) -> StackStatus:
    """Report every recorded component: live processes of its session and whether its health check answers."""
    state = _load_state(settings)
    env = _base_env(settings)
    out: dict[str, ComponentStatus] = {}
    for name in COMPONENTS:
        entry = state["components"].get(name)
        if entry is None:
            continue
        pids = procs.owned_members(_record(entry))
        healthy, detail = _health(name, settings, env) if pids else (False, "not running")
        out[name] = ComponentStatus(name=name, pid=entry["pid"], pids=pids, alive=bool(pids), healthy=healthy,
                                    url=entry.get("url"), startup_s=entry.get("startup_s"), detail=detail,
                                    log=entry.get("log"))  # fmt: skip
    return StackStatus(home=str(settings.home), components=out, env=stack_env(settings), uis=_uis(settings, out))


def _uis(settings: Settings, components: dict[str, ComponentStatus]) -> dict[str, str]:
    """The web UIs of the healthy components."""
    urls = {"prefect": ("Prefect UI", f"http://{HOST}:{settings.prefect_port}"),
            "mlflow": ("MLflow UI", f"http://{HOST}:{settings.mlflow_port}"),
            "ray": ("Ray dashboard", dashboard_url(settings))}  # fmt: skip
    return dict(urls[n] for n in urls if n in components and components[n].healthy)
