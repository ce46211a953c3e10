"""The served path end to end: stack up, `prefect deploy --all`, trigger `pipeline` like the UI, worker runs it, down.

Proves: every deployment in prefect.yaml applies to a real server; a deployment triggered through the API with
`run_deployment` is picked up by the stack's `cpu` worker, which runs it from the checkout (pull step) against the
stack's MLflow server and Ray head; the run registers a ``fer-student`` version with its bundle (``@champion`` only when
it passes the promotion gates, which the near-chance tiny student normally does not); the nightly schedule
is stored; a second trigger is served from Prefect's cache (training tasks `Cached`, no new model version); and
`stack_down` leaves no process of this stack (worker, flow runs, servers, Ray workers) behind.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest

from ferflow.stack import stack_down
from tests.e2e.conftest import REPO, client_env, deploy_all, served_stack

# ~4-5 min on a loaded 2-core machine (stack start ~70 s, deploy ~30 s, first run ~90 s, cached run ~40 s).
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Unit task runs are named by what they train: "teacher resnet seed 0", "student seed 42".
TRAINING_TASKS = ("teacher", "student")


def training_kind(name: str) -> str:
    """``teacher`` / ``student`` for a teacher or packaged-student unit's task run, else ``""``."""
    words = name.split()
    return words[0] if len(words) >= 3 and words[0] in TRAINING_TASKS and words[-2] == "seed" else ""
RUN_TIMEOUT_S = 420


def processes_with_env(name: str, value: str) -> list[int]:
    """Pids of live processes (ours to read) whose environment holds ``name=value``: every child of a stack home."""
    needle = f"{name}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in environ and state != "Z":
            found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def stack(stack_home: Path) -> Iterator[dict]:
    """A whole local stack in a temporary home (``served_stack``)."""
    with served_stack(stack_home) as served:
        yield served


@pytest.fixture(scope="module")
def api(stack) -> Iterator[str]:
    """This process's Prefect client settings point at the stack's server for the module."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: stack["env"]["PREFECT_API_URL"]}):
        yield stack["env"]["PREFECT_API_URL"]


@pytest.fixture(scope="module")
def deployed(stack, api) -> subprocess.CompletedProcess:
    out = deploy_all(client_env(stack["env"], stack["home"]))
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    return out


def trigger_pipeline(stack) -> tuple[object, float]:
    """Trigger like the UI does and wait; returns the final flow run and its wall time."""
    from prefect.deployments import run_deployment

    t0 = time.perf_counter()
    run = run_deployment("pipeline/pipeline", parameters={"profile": "tiny"}, timeout=RUN_TIMEOUT_S,
                         poll_interval=2)  # fmt: skip
    took = time.perf_counter() - t0
    assert run.state is not None and run.state.is_completed(), (run.state, worker_log_tail(stack))
    return run, took


def worker_log_tail(stack, lines: int = 60) -> str:
    log = stack["home"] / "stack" / "worker.log"
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


def task_runs_below(flow_run_id: UUID) -> list:
    """Every task run of a flow run and of all its nested subflow runs (read through the API)."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterParentFlowRunId

    with get_client(sync_client=True) as client:
        ids, frontier = {flow_run_id}, [flow_run_id]
        while frontier:
            children = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=frontier))
            )
            frontier = [c.id for c in children if c.id not in ids]
            ids.update(frontier)
        return client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(ids))), limit=200)


@pytest.fixture(scope="module")
def first_run(stack, deployed):
    return trigger_pipeline(stack)


def test_deploy_all_applies_every_deployment_with_typed_parameters(api, deployed):
    from prefect import get_client

    names = ["ingest", "train-teachers", "tune-ensemble", "distill", "distill-sweep", "nested-learning", "calibrate",
             "package", "pipeline", "report", "replicate-nightly"]  # fmt: skip
    with get_client(sync_client=True) as client:
        deployments = {d.name: d for d in client.read_deployments()}
        assert sorted(deployments) == sorted(names)
        pipe = deployments["pipeline"]
        assert pipe.work_pool_name == "cpu" and deployments["train-teachers"].work_pool_name == "gpu"
        props = pipe.parameter_openapi_schema["properties"]
        assert {"profile", "overrides", "config"} <= set(props)
        assert "tiny" in str(props["profile"]) and props["profile"].get("description")
        assert pipe.pull_steps[0]["prefect.deployments.steps.set_working_directory"]["directory"] in (
            str(REPO),
            "{{ $FERFLOW_PROJECT_DIR }}",
        )


def test_nightly_replicate_schedule_is_stored(api, deployed):
    from prefect import get_client

    with get_client(sync_client=True) as client:
        dep = client.read_deployment_by_name("replicate/replicate-nightly")
    assert len(dep.schedules) == 1
    sched = dep.schedules[0]
    assert sched.active is True
    assert sched.schedule.cron == "0 2 * * *" and sched.schedule.timezone == "UTC"
    assert dep.global_concurrency_limit is not None and dep.global_concurrency_limit.limit == 1


def newest_version(client, name: str = "fer-student-tiny"):
    return max(client.search_model_versions(f"name = '{name}'"), key=lambda v: int(v.version))


def test_worker_runs_pipeline_and_registers_the_student_with_bundle(stack, first_run):
    from mlflow import MlflowClient

    run, _ = first_run
    assert run.parameters == {"profile": "tiny"}
    client = MlflowClient(tracking_uri=stack["env"]["MLFLOW_TRACKING_URI"])
    version = newest_version(client)
    # The tiny student is near chance: it is @champion only if it passed the (chance-relative) gates.
    assert ("champion" in version.aliases) == (version.tags["ferflow.gates"] == "passed"), version.tags
    assert client.get_run(version.run_id).data.tags["ferflow.stage"] == "distill"  # source = the training run
    bundle_run, _, folder = version.tags["bundle_uri"].removeprefix("runs:/").partition("/")
    bundle_files = {Path(f.path).name for f in client.list_artifacts(bundle_run, folder)}
    assert {"manifest.json", "model.onnx"} <= bundle_files, bundle_files
    # The worker's flow run logged to the stack's MLflow server (HTTP), not to a SQLite file in some home.
    assert not (stack["home"] / "mlflow.db").exists()
    assert (stack["home"] / "mlflow-server.db").exists()
    trained = [t for t in task_runs_below(run.id) if training_kind(t.name)]
    assert {training_kind(t.name) for t in trained} == set(TRAINING_TASKS)
    assert all(t.state.name == "Completed" for t in trained), [(t.name, t.state.name) for t in trained]


def test_second_trigger_is_served_from_cache_and_registers_nothing(stack, first_run):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=stack["env"]["MLFLOW_TRACKING_URI"])
    versions = client.search_model_versions("name = 'fer-student-tiny'")
    again, took = trigger_pipeline(stack)
    trained = [t for t in task_runs_below(again.id) if training_kind(t.name)]
    assert len(trained) == 3  # two teachers, one student in the tiny profile
    assert all(t.state.name == "Cached" for t in trained), [(t.name, t.state.name) for t in trained]
    assert len(client.search_model_versions("name = 'fer-student-tiny'")) == len(versions)
    assert newest_version(client).version == max(v.version for v in versions)
    print(f"first run {first_run[1]:.1f} s, cached re-run {took:.1f} s (trigger to completion)")


def test_stack_down_leaves_no_process_of_the_stack(stack, first_run):
    home = str(stack["home"])
    assert processes_with_env("FERFLOW_HOME", home), "the stack's processes carry FERFLOW_HOME"
    stopped = stack_down(stack["settings"])
    assert sorted(stopped) == ["mlflow", "prefect", "ray", "worker"]
    deadline = time.monotonic() + 10
    while processes_with_env("FERFLOW_HOME", home) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert processes_with_env("FERFLOW_HOME", home) == []
