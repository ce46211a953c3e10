"""`stack_up` -> every component healthy and usable -> `stack_down` leaves no process of the recorded sessions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from ferflow import _stack_procs as procs
from ferflow.stack import COMPONENTS, stack_down, stack_status, stack_up
from tests.e2e.conftest import stack_settings

# ~60-80 s on a loaded 2-core machine: slow as well, so `make test` stays quick (`make test-slow` runs it).
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

_RAY_PROBE = """
import os, ray
ray.init(address=os.environ["FERFLOW_RAY_ADDRESS"], log_to_driver=False)
@ray.remote
def square(x):
    return x * x
print(sum(ray.get([square.remote(i) for i in range(5)])))
"""


def _get_json(url: str, payload: dict | None = None):
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _check_components_usable(status) -> None:
    env = status.env
    assert _get_json(env["PREFECT_API_URL"] + "/health") is True
    for pool in ("cpu", "gpu"):
        assert _get_json(f"{env['PREFECT_API_URL']}/work_pools/{pool}")["type"] == "process"
    workers = _get_json(f"{env['PREFECT_API_URL']}/work_pools/cpu/workers/filter", {})
    assert any(w["status"] == "ONLINE" for w in workers), workers

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    run = client.create_run(client.create_experiment("stack-e2e"))
    client.log_metric(run.info.run_id, "accuracy", 0.75)
    assert client.get_run(run.info.run_id).data.metrics == {"accuracy": 0.75}

    probe = subprocess.run([sys.executable, "-c", _RAY_PROBE], env={**os.environ, **env},
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert probe.returncode == 0, probe.stderr[-2000:]
    assert probe.stdout.strip().splitlines()[-1] == "30"


def _check_ray_dashboard(settings, status) -> None:
    """The advertised dashboard port serves the UI; its API wants the stack's Ray token."""
    url = f"http://127.0.0.1:{settings.ray_dashboard_port}"
    assert url in status.components["ray"].detail and "ray_auth_token" in status.components["ray"].detail
    with urllib.request.urlopen(url + "/", timeout=10) as resp:
        assert resp.status == 200 and b"<html" in resp.read().lower()
    with pytest.raises(urllib.error.HTTPError, match="401"):
        urllib.request.urlopen(url + "/api/version", timeout=10)
    token = (settings.home / "stack" / "ray_auth_token").read_text().strip()
    req = urllib.request.Request(url + "/api/version", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert json.loads(resp.read())["ray_version"]


def _check_a_command_uses_the_whole_stack(stack_home, status, tmp) -> None:
    """`ferflow ingest` in the stack's home, with no client variables set, runs on the stack's Prefect and MLflow."""
    from mlflow import MlflowClient

    from ferflow._startup import local_stack_env
    from tests.cli._builders import dataset

    keys = ("PREFECT_API_URL", "MLFLOW_TRACKING_URI", "FERFLOW_RAY_ADDRESS", "RAY_AUTH_MODE")
    assert {k: local_stack_env(stack_home)[k] for k in keys} == {k: status.env[k] for k in keys}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "FERFLOW_", "RAY_"))}
    env["FERFLOW_HOME"] = str(stack_home)
    data = dataset(tmp / "faces")
    cli = os.path.join(os.path.dirname(sys.executable), "ferflow")
    out = subprocess.run([cli, "ingest", "--source", f"folder:{data}", "--out", str(tmp / "index")], env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "using the local stack's Prefect server" in out.stderr and "(and its MLflow and Ray)" in out.stderr
    client = MlflowClient(tracking_uri=status.env["MLFLOW_TRACKING_URI"])
    runs = client.search_runs([client.get_experiment_by_name("ferflow").experiment_id],
                              "tags.`ferflow.stage` = 'ingest'")  # fmt: skip
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"


def test_stack_up_use_and_down(stack_home, tmp_path):
    settings = stack_settings(stack_home)
    try:
        status = stack_up(settings, timeout_s=150)
        assert set(status.components) == set(COMPONENTS)
        assert status.healthy, {n: c.detail for n, c in status.components.items()}
        assert status.env["FERFLOW_RAY_ADDRESS"] == f"127.0.0.1:{settings.ray_port}"
        assert oct((stack_home / "stack" / "ray_auth_token").stat().st_mode & 0o777) == "0o600"
        _check_components_usable(status)
        _check_ray_dashboard(settings, status)
        _check_a_command_uses_the_whole_stack(stack_home, status, tmp_path)

        again = stack_up(settings)  # idempotent: everything healthy, nothing restarted
        assert {n: c.pid for n, c in again.components.items()} == {n: c.pid for n, c in status.components.items()}
        assert len(again.components["ray"].pids) > 2  # gcs, raylet, agents: more than the leader
    finally:
        recorded = json.loads((stack_home / "stack" / "state.json").read_text())["components"]
        sessions = {n: procs.Spawned(e["pid"], e["start_ticks"], e["boot_id"]) for n, e in recorded.items()}
        stopped = stack_down(settings)
    assert sorted(stopped) == sorted(COMPONENTS)
    assert {n: procs.session_members(rec.pid) for n, rec in sessions.items()} == {n: [] for n in sessions}
    assert stack_status(settings).components == {}
    from ferflow._startup import local_stack_env

    assert local_stack_env(stack_home) == {}
    assert stack_down(settings) == []
