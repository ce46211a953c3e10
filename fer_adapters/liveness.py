"""Dead runs marked: a RUNNING MLflow run of this host whose process is gone becomes KILLED, saying why.

Every run ferflow creates carries ``ferflow.host`` and ``ferflow.pid`` (``fer_adapters.runs.ferflow_run``). A run whose
process was killed (SIGKILL, OOM killer, a lost machine) never ends itself; the next stage run or ``stack up`` on the
same host calls :func:`mark_dead_runs`. A resumed run links to the run it continues with ``ferflow.resumed_from``.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from pathlib import Path

from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from fer_adapters.tracking import EXPERIMENT, configure_tracking

HOST_TAG = "ferflow.host"
PID_TAG = "ferflow.pid"
STAGE_TAG = "ferflow.stage"
CONFIG_HASH_TAG = "ferflow.config_hash"
KILLED_REASON_TAG = "ferflow.killed_reason"
RESUMED_FROM_TAG = "ferflow.resumed_from"
_CLOCK_SLACK_S = 2.0  # a process started this much after its run began is another process that reused the pid


def _client(tracking_uri: str | None) -> MlflowClient:
    if tracking_uri is None:
        tracking_uri = configure_tracking()
    return MlflowClient(tracking_uri)


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _search(client: MlflowClient, filters: list[str], view: int = ViewType.ACTIVE_ONLY) -> list:
    exp = client.get_experiment_by_name(EXPERIMENT)
    if exp is None:
        return []
    runs, token = [], None
    while True:
        page = client.search_runs([exp.experiment_id], " and ".join(filters), run_view_type=view, max_results=1000,
                                  order_by=["attributes.start_time DESC"], page_token=token)  # fmt: skip
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def process_start_time(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), from ``/proc``; ``None`` where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[19])  # field 22 (starttime) counted after the ``(comm)`` field
        btime = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                     if line.startswith("btime "))  # fmt: skip
    except (OSError, IndexError, ValueError, StopIteration):
        return None
    return btime + ticks / os.sysconf("SC_CLK_TCK")


def death_reason(pid: int, run_start_s: float) -> str:
    """Why the process of a run is dead, or ``""`` when it still runs (``pid`` alive and not reused since).

    Args:
        pid: the run's ``ferflow.pid``.
        run_start_s: the run's start time (seconds since the epoch).
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return f"process {pid} no longer exists"
    except PermissionError:
        pass  # it exists, under another user
    started = process_start_time(pid)
    if started is not None and started > run_start_s + _CLOCK_SLACK_S:
        when = dt.datetime.fromtimestamp(started, dt.UTC).isoformat(timespec="seconds")
        return f"pid {pid} now belongs to another process (started {when}, after the run began)"
    return ""


def mark_dead_runs(stage: str | None = None, *, tracking_uri: str | None = None) -> list[str]:
    """Mark KILLED every RUNNING run of experiment ``ferflow`` on this host whose process is gone.

    Runs of other hosts are never touched (their pids mean nothing here), nor runs without a numeric pid tag.

    Args:
        stage: only runs of this ``ferflow.stage`` (default: every stage).
        tracking_uri: MLflow tracking URI (default: the configured one, ``fer_adapters.tracking.configure_tracking``).

    Returns:
        The ids of the runs marked KILLED; each got a ``ferflow.killed_reason`` tag.
    """
    client = _client(tracking_uri)
    host = socket.gethostname()
    filters = ["attributes.status = 'RUNNING'", f"tags.`{HOST_TAG}` = {_quote(host)}"]
    if stage is not None:
        filters.append(f"tags.`{STAGE_TAG}` = {_quote(stage)}")
    marked = []
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    for run in _search(client, filters):
        pid = run.data.tags.get(PID_TAG, "")
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        why = death_reason(int(pid), run.info.start_time / 1000.0)
        if not why:
            continue
        reason = f"{why} on {host}; marked KILLED at {now} by pid {os.getpid()}"
        client.set_tag(run.info.run_id, KILLED_REASON_TAG, reason)
        client.set_terminated(run.info.run_id, "KILLED")
        marked.append(run.info.run_id)
    return marked


def predecessor_runs(config_hash: str, stage: str, *, tags: dict[str, str] | None = None,
                     tracking_uri: str | None = None) -> list[str]:  # fmt: skip
    """Runs a resumed run continues: KILLED or FAILED runs of the same stage and config, newest first.

    Args:
        config_hash: ``ferflow.config_hash`` of the new run.
        stage: its ``ferflow.stage``.
        tags: more tags that must match (e.g. ``{"ferflow.seed": "0"}`` for one unit of a stage).
        tracking_uri: MLflow tracking URI (default: the configured one).

    Returns:
        Run ids; the first is the one to put in the successor's ``ferflow.resumed_from`` (:func:`resumed_from_tags`).
    """
    client = _client(tracking_uri)
    filters = [f"tags.`{CONFIG_HASH_TAG}` = {_quote(config_hash)}", f"tags.`{STAGE_TAG}` = {_quote(stage)}"]
    filters += [f"tags.`{k}` = {_quote(v)}" for k, v in (tags or {}).items()]
    return [r.info.run_id for r in _search(client, filters) if r.info.status in ("KILLED", "FAILED")]


def resumed_from_tags(config_hash: str, stage: str, *, tags: dict[str, str] | None = None,
                      tracking_uri: str | None = None) -> dict[str, str]:  # fmt: skip
    """``{"ferflow.resumed_from": <newest predecessor>}`` for a new run's tags, or ``{}`` when it has none."""
    found = predecessor_runs(config_hash, stage, tags=tags, tracking_uri=tracking_uri)
    return {RESUMED_FROM_TAG: found[0]} if found else {}
