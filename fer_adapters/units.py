"""Units of work placed on Ray by the resources their stage declares.

A unit (teacher x seed, student x seed, Nested Learning x seed) is one Prefect task run in the flow process that
submits one Ray task and waits for it. Prefect keeps the run state (its API is only needed where the flow runs);
Ray decides where the work runs, re-runs it on another node when its worker dies (``max_retries``), and shares the
cluster with the Tune sweeps. ``docs/orchestration.md`` says why this and not prefect-ray's task runner.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import ray

from fer_adapters.placement import PLACEMENT, PROFILE
from fer_adapters.ray_cluster import ensure_ray
from fer_core.errors import ConfigError
from fer_spec.profile import ResourcesSpec

T = TypeVar("T")


def unit_threads(res: ResourcesSpec) -> int:
    """Torch threads of a unit: its CPU share (at least one), so concurrent units never oversubscribe a node."""
    return max(1, int(res.cpu))


def check_placeable(stage: str, res: ResourcesSpec) -> bool:
    """Refuse, before anything is submitted, a request the cluster can never satisfy (Ray would wait forever).

    Returns:
        Whether GPUs are used: False only when the stage asks for a GPU, the cluster has none and the profile
        allows CPU fallback.

    Raises:
        ConfigError: a GPU, a custom resource or more CPUs than any cluster total, naming what exists and the fix.
    """
    ensure_ray()
    total = ray.cluster_resources()
    have = {k: v for k, v in total.items() if not k.startswith(("node:", "memory", "object_store_memory"))}
    gpu_ok = True
    if res.gpu > 0 and total.get("GPU", 0) < res.gpu:
        if not res.allow_cpu_fallback:
            raise ConfigError(
                f"stage {stage!r}: each unit asks for {res.gpu:g} GPU but the Ray cluster has "
                f"{total.get('GPU', 0):g} (resources: {have}); nothing was trained. Add a GPU worker to the cluster "
                f"(infra/README.md) or set {stage}.resources.allow_cpu_fallback: true to train on CPU"
            )
        gpu_ok = False
    for name, amount in {"CPU": res.cpu, **res.custom}.items():
        if total.get(name, 0) < amount:
            raise ConfigError(
                f"stage {stage!r}: each unit asks for {amount:g} {name} but the Ray cluster has "
                f"{total.get(name, 0):g} (resources: {have}); nothing was trained. Lower {stage}.resources or add "
                "a node that has it"
            )
    return gpu_ok


@contextlib.contextmanager
def placed(resources: dict[str, Any], profile: str = "") -> Iterator[None]:
    """Inside a Ray worker (a unit or a Tune trial): record the node, the resources and the profile for the run's
    tags."""
    tags = {
        "ferflow.worker_node": f"{ray.get_runtime_context().get_node_id()} {socket.gethostname()}",
        "ferflow.resources": json.dumps(resources, sort_keys=True),
    }
    token, ptoken = PLACEMENT.set(tags), PROFILE.set(profile)
    try:
        yield
    finally:
        PLACEMENT.reset(token)
        PROFILE.reset(ptoken)


@ray.remote
def _run_unit(fn: Callable[..., Any], args: tuple, kwargs: dict, resources: dict[str, Any], profile: str) -> Any:
    """Ray side of a unit: record where it runs (and for which profile), then call ``fn``."""
    with placed(resources, profile):
        return fn(*args, **kwargs)


def run_unit(stage: str, name: str, res: ResourcesSpec, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn(*args, **kwargs)`` as one Ray task placed by ``res`` and return its result.

    The unit's own errors (ferflow refusals, training divergence) surface unchanged and are not re-run by Ray;
    a worker or node that dies is re-run elsewhere up to ``res.max_retries`` times.

    Raises:
        ConfigError: the cluster cannot satisfy ``res`` (see :func:`check_placeable`).
    """
    gpu_ok = check_placeable(stage, res)
    opts = res.ray_options(gpu_available=gpu_ok)
    resources = {"cpu": opts["num_cpus"], "gpu": opts["num_gpus"], **opts["resources"]}
    if not gpu_ok:
        resources["cpu_fallback"] = True
    ref = _run_unit.options(
        **opts, name=f"{stage}:{name}", max_retries=res.max_retries, retry_exceptions=False
    ).remote(fn, args, kwargs, resources, PROFILE.get())
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:  # the unit's own error, as raised (a refusal stays a refusal)
        raise (e.cause if isinstance(e.cause, Exception) else e) from None
