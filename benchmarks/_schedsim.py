"""Discrete-event list scheduler: units with dependencies and resource demands placed on GPU and CPU workers.

Pure and deterministic (no clock, no randomness, no I/O). A unit becomes ready when every unit it depends on has
finished; at each event time the ready units are taken in priority order and each starts on the first worker with
enough free resources for it (a unit never spans workers, as a Ray task never spans nodes). Units that do not fit
wait; smaller ones behind them may start (backfilling).

Priorities:
    ``fifo``: submission order (the order of ``units``).
    ``lpt``: longest processing time first (ties: submission order).
    ``cp``: critical path first: the longest chain of durations from the unit to the end of the graph.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from fer_core.errors import ConfigError

POLICIES: tuple[str, ...] = ("fifo", "lpt", "cp")
_EPS = 1e-9  # events this close in time are one instant: float sums of durations must not reorder ties


@dataclass(frozen=True)
class Unit:
    """One schedulable piece of work.

    Attributes:
        name: unique id.
        duration_s: run time once started, seconds (>= 0).
        gpu: GPUs it holds while running (it only starts on a worker with that many free).
        cpu: CPUs it holds while running.
        deps: names of the units that must finish before it starts.
        group: free label for reports (``"teacher"``, ``"student"``, ``"cpu"``, ...).
    """

    name: str
    duration_s: float
    gpu: int = 0
    cpu: int = 1
    deps: tuple[str, ...] = ()
    group: str = ""


@dataclass(frozen=True)
class Worker:
    """A node's capacity: ``gpu`` GPUs and ``cpu`` CPUs."""

    name: str
    gpu: int
    cpu: int


@dataclass(frozen=True)
class Placement:
    unit: str
    worker: str
    start: float
    end: float


@dataclass(frozen=True)
class Schedule:
    """The simulated run: one placement per unit, in start order (ties: priority order)."""

    placements: tuple[Placement, ...]
    units: tuple[Unit, ...]
    workers: tuple[Worker, ...]

    @property
    def makespan(self) -> float:
        return max((p.end for p in self.placements), default=0.0)

    def of(self, name: str) -> Placement:
        """The placement of unit ``name``."""
        for p in self.placements:
            if p.unit == name:
                return p
        raise KeyError(name)

    def span(self, names: Iterable[str]) -> tuple[float, float]:
        """``(first start, last end)`` over the units ``names``; ``(0, 0)`` when empty."""
        wanted = set(names)
        sel = [p for p in self.placements if p.unit in wanted]
        return (min(p.start for p in sel), max(p.end for p in sel)) if sel else (0.0, 0.0)

    def gpu_busy_s(self) -> float:
        """GPU-seconds held by units: sum of duration x GPUs."""
        gpus = {u.name: u.gpu for u in self.units}
        return sum((p.end - p.start) * gpus[p.unit] for p in self.placements)

    def gpu_utilisation(self) -> float:
        """Busy GPU-time / (all GPUs x the GPU-bearing span).

        The GPU-bearing span runs from the first start to the last end of any unit that holds a GPU, so CPU-only
        stages before the first GPU unit (ingest) and after the last (package, report) do not count against it, while
        CPU-only stages between GPU stages (the ensemble tuning) and idle GPUs in a stage do. 0 without GPU units.
        """
        total = sum(w.gpu for w in self.workers)
        t0, t1 = self.span(u.name for u in self.units if u.gpu > 0)
        return self.gpu_busy_s() / (total * (t1 - t0)) if total and t1 > t0 else 0.0

    def gpu_utilisation_run(self) -> float:
        """Busy GPU-time / (all GPUs x the whole makespan): the stricter figure, CPU-only stages included."""
        total = sum(w.gpu for w in self.workers)
        return self.gpu_busy_s() / (total * self.makespan) if total and self.makespan > 0 else 0.0


def validate(units: Sequence[Unit], workers: Sequence[Worker]) -> None:
    """Reject graphs that cannot run: duplicate names, unknown deps, cycles, negative durations, units no worker fits.

    Raises:
        ConfigError: naming the unit, the offending value and the fix.
    """
    names = [u.name for u in units]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"unit names must be unique; repeated: {dup}")
    known = set(names)
    for u in units:
        if u.duration_s < 0 or u.gpu < 0 or u.cpu < 0:
            raise ConfigError(f"unit {u.name!r}: duration, gpu and cpu must be >= 0, got {u}")
        missing = [d for d in u.deps if d not in known]
        if missing:
            raise ConfigError(f"unit {u.name!r} depends on unknown unit(s) {missing}; add them or drop the deps")
        if not any(w.gpu >= u.gpu and w.cpu >= u.cpu for w in workers):
            have = [(w.name, w.gpu, w.cpu) for w in workers]
            raise ConfigError(
                f"unit {u.name!r} needs gpu={u.gpu}, cpu={u.cpu} on one worker but no worker has that "
                f"(workers as (name, gpu, cpu): {have}); add a worker with those resources"
            )
    _topological(units)


def _topological(units: Sequence[Unit]) -> list[str]:
    """Kahn's order of the unit names; a leftover means a cycle."""
    indeg = {u.name: len(u.deps) for u in units}
    children: dict[str, list[str]] = {u.name: [] for u in units}
    for u in units:
        for d in u.deps:
            children[d].append(u.name)
    order = [u.name for u in units if indeg[u.name] == 0]
    for n in order:  # grows while iterating: each released child is appended
        for c in children[n]:
            indeg[c] -= 1
            if indeg[c] == 0:
                order.append(c)
    if len(order) != len(units):
        stuck = sorted(n for n, k in indeg.items() if k > 0)
        raise ConfigError(f"the dependencies form a cycle through {stuck}; remove one edge of the cycle")
    return order


def _priorities(units: Sequence[Unit], policy: str) -> dict[str, tuple[float, int]]:
    """Sort key per unit (smaller starts first); the submission index breaks every tie."""
    if policy == "fifo":
        return {u.name: (0.0, i) for i, u in enumerate(units)}
    if policy == "lpt":
        return {u.name: (-u.duration_s, i) for i, u in enumerate(units)}
    if policy == "cp":
        by_name = {u.name: u for u in units}
        children: dict[str, list[str]] = {u.name: [] for u in units}
        for u in units:
            for d in u.deps:
                children[d].append(u.name)
        level: dict[str, float] = {}
        for n in reversed(_topological(units)):  # children before parents
            level[n] = by_name[n].duration_s + max((level[c] for c in children[n]), default=0.0)
        return {u.name: (-level[u.name], i) for i, u in enumerate(units)}
    raise ConfigError(f"unknown scheduling policy {policy!r}; allowed: {list(POLICIES)}")


def _pick_worker(u: Unit, workers: Sequence[Worker], free: list[list[int]]) -> int | None:
    """First worker with room; CPU-only units prefer workers with fewer GPUs, so they do not sit on a GPU node."""
    fits = [i for i, w in enumerate(workers) if free[i][0] >= u.gpu and free[i][1] >= u.cpu]
    if not fits:
        return None
    return min(fits, key=lambda i: (workers[i].gpu, i)) if u.gpu == 0 else fits[0]


def simulate(units: Sequence[Unit], workers: Sequence[Worker], policy: str = "fifo") -> Schedule:
    """Run the list scheduler to completion.

    Args:
        units: the graph, in submission order (the ``fifo`` order).
        workers: the cluster; a unit runs on exactly one worker.
        policy: ``fifo``, ``lpt`` or ``cp`` (see the module docstring).

    Returns:
        The schedule (every unit placed exactly once).

    Raises:
        ConfigError: an invalid graph (see :func:`validate`) or an unknown policy.
    """
    validate(units, workers)
    prio = _priorities(units, policy)
    by_name = {u.name: u for u in units}
    waiting = {u.name: len(u.deps) for u in units}
    children: dict[str, list[str]] = {u.name: [] for u in units}
    for u in units:
        for d in u.deps:
            children[d].append(u.name)
    free = [[w.gpu, w.cpu] for w in workers]
    ready = sorted((prio[u.name], u.name) for u in units if not u.deps)
    running: list[tuple[float, int, str, int]] = []  # (end, start sequence, unit, worker index)
    placed: list[Placement] = []
    now = 0.0
    while ready or running:
        still: list[tuple[tuple[float, int], str]] = []
        for key, name in ready:
            u = by_name[name]
            wi = _pick_worker(u, workers, free)
            if wi is None:
                still.append((key, name))
                continue
            free[wi][0] -= u.gpu
            free[wi][1] -= u.cpu
            heapq.heappush(running, (now + u.duration_s, len(placed), name, wi))
            placed.append(Placement(name, workers[wi].name, now, now + u.duration_s))
        ready = still
        if not running:
            break  # validate() guarantees every unit fits an empty worker, so nothing is left waiting here
        now = running[0][0]
        while running and running[0][0] <= now + _EPS:
            _, _, name, wi = heapq.heappop(running)
            free[wi][0] += by_name[name].gpu
            free[wi][1] += by_name[name].cpu
            for c in children[name]:
                waiting[c] -= 1
                if waiting[c] == 0:
                    ready.append((prio[c], c))
        ready.sort()
    return Schedule(tuple(placed), tuple(units), tuple(workers))


def gpu_cluster(n_gpu_workers: int, cpu_per_gpu_worker: int = 4, cpu_pool: int = 4) -> list[Worker]:
    """``n_gpu_workers`` nodes of one GPU and ``cpu_per_gpu_worker`` CPUs, plus one CPU-only node of ``cpu_pool``."""
    gpus = [Worker(f"gpu{i}", 1, cpu_per_gpu_worker) for i in range(n_gpu_workers)]
    return gpus + ([Worker("cpu", 0, cpu_pool)] if cpu_pool > 0 else [])
