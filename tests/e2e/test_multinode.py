"""Units placed on a multi-node Ray cluster through the deployed `pipeline` deployment.

A head (no CPUs) and two worker raylets started by the test (``ray.cluster_utils.Cluster``: each node has its own
sockets), each with one CPU and one ``accel`` (a custom resource standing in for an accelerator); the local stack's
Prefect server, cpu worker and MLflow server; the tiny profile with every unit asking for ``{cpu: 1, accel: 1}``.

Proves: the two teacher units land on two different nodes and overlap in time; their metrics equal a serial run of
the same units in this process (deterministic mode, one thread each); a worker node killed while it trains a unit
gets that unit re-run on the other node, with one FINISHED MLflow run per unit (the dead one marked KILLED) and no
duplicate registration.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fer_spec.profile import load_pipeline_config
from tests.e2e.conftest import assert_one_finished_run_per_unit, served_stack
from tests.e2e.test_deploy_pipeline import REPO, worker_log_tail

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ACCEL = {"cpu": 1, "custom": {"accel": 1}}


def tiny_on_accel(teacher_seeds: list[int], teacher_epochs: int = 3) -> dict:
    """The tiny profile with every unit on one ``accel`` slot, deterministic training."""
    cfg = load_pipeline_config(REPO / "configs" / "tiny.yaml").model_dump(mode="json")
    cfg["teachers"]["resources"] = ACCEL
    cfg["teachers"]["seeds"] = teacher_seeds
    for t in cfg["teachers"]["teachers"]:
        t["train"].update(deterministic=True, epochs=teacher_epochs)
    cfg["student"]["resources"] = ACCEL
    cfg["student"]["train"]["deterministic"] = True
    return cfg


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple]:
    from ray.cluster_utils import Cluster

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_AUTH_MODE", "disabled")
        mp.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # every process of the test's cluster stays on loopback
        c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "node_ip_address": "127.0.0.1"})
        nodes = [c.add_node(num_cpus=1, resources={"accel": 1}, node_ip_address="127.0.0.1") for _ in range(2)]
        c.wait_for_nodes()
        try:
            yield c, nodes
        finally:
            c.shutdown()


@pytest.fixture(scope="module")
def stack(stack_home: Path, cluster) -> Iterator[dict]:
    """Prefect server + cpu worker + MLflow server; the worker's flow runs use the test's Ray cluster."""
    c, _ = cluster
    address = f"127.0.0.1:{c.address.rsplit(':', 1)[1]}"  # the GCS listens on loopback (node_ip_address)
    with served_stack(stack_home, ray_address=address, env={"RAY_AUTH_MODE": "disabled"}) as served:
        yield served


def trigger(stack, config: dict, timeout: float):
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: stack["env"]["PREFECT_API_URL"]}):
        return run_deployment("pipeline/pipeline", parameters={"config": config}, timeout=timeout, poll_interval=2)


def teacher_runs(stack, seed: int) -> list:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=stack["env"]["MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name("ferflow")
    flt = f"tags.`ferflow.stage` = 'train_teacher' and tags.`ferflow.seed` = '{seed}'"
    return client.search_runs([exp.experiment_id], flt)


@pytest.fixture(scope="module")
def placed_run(stack):
    run = trigger(stack, tiny_on_accel([0]), timeout=600)
    assert run.state is not None and run.state.is_completed(), (run.state, worker_log_tail(stack))
    return run


def test_teacher_units_land_on_two_nodes_and_overlap(stack, placed_run):
    runs = [r for r in teacher_runs(stack, 0) if r.info.status == "FINISHED"]
    assert len(runs) == 2
    nodes = {r.data.tags["ferflow.worker_node"].split()[0] for r in runs}
    assert len(nodes) == 2, nodes
    (a0, a1), (b0, b1) = [(r.info.start_time, r.info.end_time) for r in runs]
    assert a0 < b1 and b0 < a1, "the two teacher units should train at the same time"
    assert all('"accel": 1' in r.data.tags["ferflow.resources"] for r in runs)


def test_unit_metrics_equal_a_serial_run(stack, placed_run, tmp_path, monkeypatch):
    from fer_adapters.runs import is_per_class
    from fer_spec.profile import PipelineConfig, effective_ingest
    from tasks.data import existing_index
    from tasks.publish import publish_dataset_task
    from tasks.teachers import _teacher_unit

    cfg = PipelineConfig.model_validate(tiny_on_accel([0]))
    monkeypatch.setenv("FERFLOW_HOME", str(stack["home"]))
    index = existing_index.fn(effective_ingest(cfg))
    assert index is not None
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'serial.db'}")
    monkeypatch.setenv("FERFLOW_STORE", str(tmp_path / "serial-store"))  # a store of its own: nothing is reused
    index = publish_dataset_task.fn(cfg, index)
    placed = {r.data.tags["mlflow.runName"]: r.data.metrics for r in teacher_runs(stack, 0)}
    for t in cfg.teachers.teachers:  # one after the other, in this process, no Ray
        serial = _teacher_unit(t, 0, cfg.teachers.resources, index, cfg.data.preprocess)
        for k, v in serial.val_metrics.items():
            if not is_per_class(f"val/{k}"):  # per-class values are a table artifact, not run metrics
                assert placed[f"{t.name}-s0"][f"val/{k}"] == pytest.approx(v, abs=1e-9), k


def test_a_killed_node_gets_its_unit_rerun_on_the_other(stack, placed_run, cluster):
    from mlflow import MlflowClient
    from prefect.settings import PREFECT_API_URL, temporary_settings

    c, nodes = cluster
    started = trigger(stack, tiny_on_accel([5], teacher_epochs=40), timeout=0)
    deadline = time.monotonic() + 240
    victim = None
    while victim is None and time.monotonic() < deadline:
        running = [r for r in teacher_runs(stack, 5) if r.info.status == "RUNNING"]
        ckpts = list((stack["home"] / "store" / "runs" / "train_teacher").glob("*-s5-*/last.pt"))
        if len(running) == 2 and ckpts:
            node_id = running[0].data.tags["ferflow.worker_node"].split()[0]
            victim = next(n for n in nodes if n.node_id == node_id)
        time.sleep(1)
    assert victim is not None, "no teacher unit of seed 5 started training on both nodes"
    c.remove_node(victim, allow_graceful=False)

    from prefect import get_client

    with temporary_settings(updates={PREFECT_API_URL: stack["env"]["PREFECT_API_URL"]}):
        with get_client(sync_client=True) as client:
            while True:
                run = client.read_flow_run(started.id)
                if run.state is not None and run.state.is_final():
                    break
                assert time.monotonic() < deadline + 480, worker_log_tail(stack)
                time.sleep(3)
    assert run.state.is_completed(), (run.state, worker_log_tail(stack))

    runs = teacher_runs(stack, 5)
    assert_one_finished_run_per_unit(runs, 2)
    survivor = next(n for n in nodes if n is not victim).node_id
    finished = [r for r in runs if r.info.status == "FINISHED"]
    assert {r.data.tags["ferflow.worker_node"].split()[0] for r in finished} == {survivor}
    killed = [r for r in runs if r.info.status == "KILLED"]
    assert len(killed) == 1 and "ferflow.killed_reason" in killed[0].data.tags

    client = MlflowClient(tracking_uri=stack["env"]["MLFLOW_TRACKING_URI"])
    sources = [v.tags.get("ferflow.source_run") for v in client.search_model_versions("name = 'fer-student-tiny'")]
    assert len(sources) == len(set(sources)), "a student was registered twice"
