"""Dead runs: a real process creates a RUNNING MLflow run and is SIGKILLed; the next call marks the run KILLED."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap

import pytest
from mlflow.tracking import MlflowClient

from fer_adapters.liveness import (
    KILLED_REASON_TAG,
    RESUMED_FROM_TAG,
    death_reason,
    mark_dead_runs,
    predecessor_runs,
    resumed_from_tags,
)

_CHILD = textwrap.dedent("""
    import os, socket, sys, time
    from mlflow.tracking import MlflowClient
    client = MlflowClient(sys.argv[1])
    exp = client.get_experiment_by_name("ferflow").experiment_id
    run = client.create_run(exp, tags={"ferflow.host": socket.gethostname(), "ferflow.pid": str(os.getpid()),
                                       "ferflow.stage": "train_teachers", "ferflow.config_hash": "abc"})
    print(run.info.run_id, flush=True)
    time.sleep(600)
""")


def _run(client, exp, **tags):
    return client.create_run(exp, tags={"ferflow.host": socket.gethostname(), **tags}).info.run_id


@pytest.mark.slow  # ~26 s here: a fresh MLflow SQLite store migrates, and the child imports mlflow
def test_killed_process_run_is_marked_and_linked(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("ferflow", artifact_location=(tmp_path / "art").as_uri())
    child = subprocess.Popen([sys.executable, "-c", _CHILD, uri], stdout=subprocess.PIPE, text=True)
    try:
        dead_id = child.stdout.readline().strip()
        assert client.get_run(dead_id).info.status == "RUNNING"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    live_id = _run(client, exp, **{"ferflow.pid": str(os.getpid()), "ferflow.stage": "train_teachers"})
    other_host = client.create_run(exp, tags={"ferflow.host": "elsewhere", "ferflow.pid": str(child.pid),
                                              "ferflow.stage": "train_teachers"}).info.run_id  # fmt: skip
    other_stage = _run(client, exp, **{"ferflow.pid": str(child.pid), "ferflow.stage": "ingest"})

    assert mark_dead_runs("train_teachers", tracking_uri=uri) == [dead_id]
    dead = client.get_run(dead_id)
    assert dead.info.status == "KILLED"
    assert f"process {child.pid} no longer exists" in dead.data.tags[KILLED_REASON_TAG]
    assert socket.gethostname() in dead.data.tags[KILLED_REASON_TAG]
    # a live process, another host and another stage are left alone
    assert [client.get_run(r).info.status for r in (live_id, other_host, other_stage)] == ["RUNNING"] * 3
    assert mark_dead_runs("train_teachers", tracking_uri=uri) == []  # idempotent
    assert mark_dead_runs(tracking_uri=uri) == [other_stage]  # every stage

    assert predecessor_runs("abc", "train_teachers", tracking_uri=uri) == [dead_id]
    assert resumed_from_tags("abc", "train_teachers", tracking_uri=uri) == {RESUMED_FROM_TAG: dead_id}
    assert resumed_from_tags("other", "train_teachers", tracking_uri=uri) == {}


def test_reused_pid_counts_as_dead():
    # a run that began before the process now holding its pid started was another process's run: the pid was reused
    assert death_reason(os.getpid(), run_start_s=0.0).startswith(f"pid {os.getpid()} now belongs to another process")
    import time

    assert death_reason(os.getpid(), run_start_s=time.time()) == ""
