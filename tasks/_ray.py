"""Ray glue: connect to the configured cluster or start a bounded local one."""

from __future__ import annotations

import os

import ray

from tasks.settings import Settings


def ensure_ray(settings: Settings | None = None, num_cpus: int | None = None) -> None:
    """Initialise Ray once per process: ``FERFLOW_RAY_ADDRESS`` if set, else a local node with a bounded store."""
    if ray.is_initialized():
        return
    settings = settings or Settings.from_env()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if settings.ray_address:
        ray.init(address=settings.ray_address, ignore_reinit_error=True, log_to_driver=False)
        return
    ray.init(
        num_cpus=num_cpus or os.cpu_count(),
        object_store_memory=settings.ray_object_store_mb * 1024 * 1024,
        include_dashboard=False,
        ignore_reinit_error=True,
        log_to_driver=False,
        configure_logging=False,
    )
