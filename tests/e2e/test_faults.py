"""Fault tolerance with real processes: a dying Ray trial, an MLflow server restart, a worker killed mid-training.

(a) A Tune trial whose process exits hard on its first attempt is retried by `run_sweep` and the sweep completes.
(b) The stack's MLflow server is stopped and restarted while a run logs metrics: calls made while it is down block in
    the client's retries and land once it is back, so the run holds every step afterwards.
(c) The `cpu` worker and its flow-run process are SIGKILLed while a teacher trains on the served stack; after a
    worker restart a new trigger resumes that teacher from its content-addressed ``last.pt`` (``start_epoch`` > 0),
    finishes the pipeline and registers exactly one ``fer-student`` version.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from fer_spec.profile import load_pipeline_config
from ferflow import _stack_procs as procs
from ferflow.stack import stack_down, stack_status, stack_up
from tests.e2e.conftest import REPO, client_env, deploy_all, served_stack
from tests.e2e.test_deploy_pipeline import processes_with_env, worker_log_tail

# ~4-5 min on a loaded 2-core machine, almost all of it (c): stack start, deploy, a killed and a resumed pipeline.
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SLOW_TEACHER_EPOCHS = 40  # long enough that the kill lands mid-training, ~0.3 s per epoch at this size


# --------------------------------------------------------------------------------------------------- (a) Ray Tune
def _trial_dies_once(config: dict) -> None:
    """Trial ``x``: logs its attempt; trial 1 kills its own process (no exception, no cleanup) the first time."""
    from ray import tune

    folder = Path(config["folder"])
    with open(folder / "attempts.log", "a", encoding="utf-8") as f:
        f.write(f"{config['x']}\n")
    marker = folder / f"died-{config['x']}"
    if config["x"] == 1 and not marker.exists():
        marker.touch()
        os._exit(1)
    tune.report({"score": 10.0 * config["x"]})


def test_ray_trial_that_dies_is_retried_and_sweep_completes(ray_local, tmp_path):
    from ray import cloudpickle, tune

    import tests.e2e.test_faults as this
    from fer_adapters.sweeps import run_sweep

    cloudpickle.register_pickle_by_value(this)  # Ray workers need not import the tests package
    results = run_sweep(_trial_dies_once, {"x": tune.grid_search([0, 1, 2]), "folder": str(tmp_path)},
                        name="fault-trial-dies", metric="score", max_failures=2)  # fmt: skip
    assert sorted(r["metrics"]["score"] for r in results) == [0.0, 10.0, 20.0]
    attempts = (tmp_path / "attempts.log").read_text().split()
    assert sorted(attempts) == ["0", "1", "1", "2"]  # trial 1 ran twice, the others once
    assert (tmp_path / "died-1").exists()


# ------------------------------------------------------------------------------------------- shared served stack
@pytest.fixture(scope="module")
def stack(stack_home: Path) -> Iterator[dict]:
    with served_stack(stack_home) as served:
        yield served
    assert processes_with_env("FERFLOW_HOME", str(stack_home)) == []


# ------------------------------------------------------------------------------------------- (b) MLflow restart
def test_mlflow_server_restart_during_a_run_loses_no_metric(stack, monkeypatch):
    from mlflow import MlflowClient

    from fer_adapters.runs import MlflowSink

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")  # retries after ~1, 2, 4, 8, 16, 32 s (integer)
    settings, uri = stack["settings"], stack["env"]["MLFLOW_TRACKING_URI"]
    client = MlflowClient(tracking_uri=uri)
    run_id = client.create_run(client.create_experiment("fault-restart")).info.run_id
    sink = MlflowSink(run_id, client)
    for step in range(3):
        sink.log_metrics({"loss": 1.0 / (step + 1)}, step=step)

    assert stack_down(settings, components=["mlflow"]) == ["mlflow"]
    assert not procs.http_ok(f"{uri}/health")
    errors: list[BaseException] = []

    def log_while_down() -> None:
        try:
            for step in range(3, 6):
                sink.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
        except BaseException as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)

    during = threading.Thread(target=log_while_down)
    during.start()
    time.sleep(2.0)
    assert during.is_alive(), "the client should be blocked in its retries while the server is down"
    status = stack_up(settings, components=["mlflow"], timeout_s=120)
    assert status.components["mlflow"].healthy
    during.join(timeout=120)
    assert not during.is_alive() and errors == []
    for step in range(6, 9):
        sink.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
    client.set_terminated(run_id, "FINISHED")

    history = sorted((m.step, m.value) for m in MlflowClient(tracking_uri=uri).get_metric_history(run_id, "loss"))
    assert history == [(s, pytest.approx(1.0 / (s + 1))) for s in range(9)]


# ------------------------------------------------------------------------------------- (c) worker killed, resume
def slow_teacher_profile(folder: Path) -> Path:
    """The tiny profile with one teacher trained long enough to be killed mid-run."""
    cfg = yaml.safe_load((REPO / "configs" / "tiny.yaml").read_text())
    cfg["name"] = "tiny-slow-teacher"
    cfg["teachers"]["teachers"][0]["train"]["epochs"] = SLOW_TEACHER_EPOCHS
    path = folder / "tiny-slow-teacher.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def wait_for(predicate, timeout_s: float, what: str, poll_s: float = 0.05):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def flow_run_processes(home: Path) -> list[int]:
    """Flow-run processes the worker launched for this stack (``python -m prefect.engine``)."""
    pids = []
    for pid in processes_with_env("FERFLOW_HOME", str(home)):
        try:
            cmd = (Path("/proc") / str(pid) / "cmdline").read_bytes()
        except OSError:
            continue
        if b"prefect.engine" in cmd:
            pids.append(pid)
    return pids


def kill_worker_and_flow_runs(stack) -> list[int]:
    """What a dying worker node does to a run: every flow-run process and the worker get SIGKILL, no clean-up."""
    victims = flow_run_processes(stack["home"])
    for pid in victims:
        try:
            os.killpg(pid, signal.SIGKILL)  # the process worker starts each flow run in its own session
        except ProcessLookupError:
            pass
    stack_down(stack["settings"], grace_s=0.0, components=["worker"])
    return victims


def teacher_runs(uri: str, name: str) -> list:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("ferflow")
    return client.search_runs([exp.experiment_id], f"tags.`mlflow.runName` = '{name}'")


def test_worker_killed_mid_training_resumes_from_checkpoint_and_registers_once(stack):
    from mlflow import MlflowClient
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    home, env = stack["home"], stack["env"]
    profile = str(slow_teacher_profile(home))
    teacher = cfg_teacher_name(profile)
    out = deploy_all(client_env(env, home))
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]

    with temporary_settings(updates={PREFECT_API_URL: env["PREFECT_API_URL"]}):
        params = {"config": load_pipeline_config(profile).model_dump(mode="json")}
        killed = run_deployment("pipeline/pipeline", parameters=params, timeout=0)
        last_pt = wait_for(lambda: sorted((home / "store" / "runs" / "train_teacher").glob(f"{teacher}-*/last.pt")),
                           timeout_s=240, what=f"the first checkpoint of {teacher}")[0]  # fmt: skip
        victims = kill_worker_and_flow_runs(stack)
        assert victims, "no flow-run process was running"
        assert flow_run_processes(home) == [] and "worker" not in stack_status(stack["settings"]).components
        mid_run = teacher_runs(env["MLFLOW_TRACKING_URI"], teacher)
        assert len(mid_run) == 1 and mid_run[0].info.status == "RUNNING"  # killed: nobody ended it

        assert stack_up(stack["settings"], components=["worker"], timeout_s=120).components["worker"].healthy
        resumed = run_deployment("pipeline/pipeline", parameters=params, timeout=480,
                                 poll_interval=2)  # fmt: skip
        assert resumed.state.is_completed(), (resumed.state, worker_log_tail(stack))
        assert killed.id != resumed.id

    runs = teacher_runs(env["MLFLOW_TRACKING_URI"], teacher)
    finished = [r for r in runs if r.info.status == "FINISHED"]
    killed_runs = [r for r in runs if r.info.status == "KILLED"]
    assert len(runs) == 2 and len(finished) == 1 and len(killed_runs) == 1  # the dead run is marked, not RUNNING
    assert finished[0].data.tags.get("ferflow.resumed_from") == killed_runs[0].info.run_id
    start = int(finished[0].data.params["start_epoch"])
    assert 0 < start < SLOW_TEACHER_EPOCHS, f"resumed at epoch {start}"
    assert last_pt.is_file()
    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    versions = client.search_model_versions("name = 'fer-student-tiny'")
    assert len(versions) == 1
    assert ("champion" in versions[0].aliases) == (versions[0].tags["ferflow.gates"] == "passed")  # gates decide


def cfg_teacher_name(profile: str) -> str:
    """Run name of the slowed teacher for seed 0 (as tasks.teachers.train_teacher names it)."""
    cfg = yaml.safe_load(Path(profile).read_text())
    return f"{cfg['teachers']['teachers'][0]['name']}-s{cfg['teachers']['seeds'][0]}"
