"""Ray glue: connect to the configured cluster or start a bounded local one on loopback, once per process."""

from __future__ import annotations

import logging
import os
import socket
import threading

import ray
from ray.job_config import JobConfig

from fer_adapters.store import Store
from fer_core.errors import ServerUnreachableError
from fer_spec.settings import Settings

# Variables a unit needs on whatever node it lands: where ferflow keeps state and which servers it talks to.
# FERFLOW_HOME is not among them: on a node it is that node's own cache.
FORWARDED_ENV = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_S3_ENDPOINT_URL",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "FERFLOW_ARTIFACTS",
)

_lock = threading.Lock()


class _NoThreadSigtermNote(logging.Filter):
    """Flows start Ray from a worker thread, where Ray cannot install its SIGTERM handler and says so every run;
    the flow's own process handles termination, so the note is noise on the terminal."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "SIGTERM handler is not set" not in record.getMessage()


def forwarded_env(settings: Settings) -> dict[str, str]:
    """The driver's settings as environment variables for Ray workers (the job's runtime environment)."""
    from fer_adapters.cache import code_version_of_checkout

    env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
    env["FERFLOW_CODE_VERSION"] = code_version_of_checkout()
    env["FERFLOW_STORE"] = Store(settings.store, settings.home).uri  # resolved: a node's own home never changes it
    env.setdefault("MLFLOW_TRACKING_URI", settings.tracking_uri)
    return env


def job_name() -> str:
    """The Ray job's name (the dashboard's Jobs table shows ``metadata.job_name`` in its Name column): the flow run
    that connects, e.g. ``ferflow · tiny · pipeline``, instead of every job reading ``python -m prefect.engine``."""
    try:
        from prefect.runtime import flow_run

        name = flow_run.name
    except Exception:  # noqa: BLE001 - outside Prefect (a benchmark, a test) there is no flow run to name
        name = None
    return f"ferflow · {name}" if name else "ferflow"


def ensure_ray(settings: Settings | None = None, num_cpus: int | None = None) -> None:
    """Initialise Ray once per process (thread-safe: stage units submit from several threads).

    ``FERFLOW_RAY_ADDRESS`` when set (a cluster: the local stack's or a real one), else a local node sized to the
    machine (``num_cpus`` slots, default every core) with a bounded object store, bound to 127.0.0.1 like the stack.
    """
    with _lock:
        if ray.is_initialized():
            return
        logging.getLogger("ray._private.worker").addFilter(_NoThreadSigtermNote())
        settings = settings or Settings.from_env()
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        runtime_env = {"env_vars": forwarded_env(settings)}
        if settings.ray_address:
            _require_reachable(settings.ray_address)
            loopback = settings.ray_address.rsplit(":", 1)[0] in ("127.0.0.1", "localhost")
            ray.init(
                address=settings.ray_address,
                runtime_env=runtime_env,
                job_config=JobConfig(metadata={"job_name": job_name()}),
                ignore_reinit_error=True,
                log_to_driver=False,
                configure_logging=False,
                **({"_node_ip_address": "127.0.0.1"} if loopback else {}),
            )
            return
        ray.init(
            address="local",  # never join a cluster some other process left running on this machine
            num_cpus=num_cpus or os.cpu_count(),
            object_store_memory=settings.ray_object_store_mb * 1024 * 1024,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            runtime_env=runtime_env,
            job_config=JobConfig(metadata={"job_name": job_name()}),
            ignore_reinit_error=True,
            log_to_driver=False,
            configure_logging=False,
        )


def _require_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Refuse at once a Ray address nobody answers on (``ray.init`` would retry for minutes).

    Raises:
        ServerUnreachableError: the host:port does not accept a TCP connection.
    """
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return
    except (OSError, ValueError) as e:
        raise ServerUnreachableError(
            f"Ray cluster at FERFLOW_RAY_ADDRESS={address} does not answer ({e}); start it (`ferflow stack up`) or "
            "unset FERFLOW_RAY_ADDRESS to run an embedded local Ray"
        ) from None
