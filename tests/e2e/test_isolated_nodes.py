"""Shared nothing: the tiny pipeline on Ray worker nodes that cannot read the driver's disk, the store on S3.

The store is moto's S3 server on 127.0.0.1 (``FERFLOW_STORE=s3://…``). A Ray head with no CPUs runs in this process
(``ray.cluster_utils.Cluster``, loopback); each of two worker nodes is started by a launcher
(``tests/e2e/_isolated_raylet.py``) inside its own mount namespace: ``unshare --mount --propagation private`` with an
empty tmpfs over the driver's FERFLOW_HOME (which holds the data root ``data/synth-…`` and the index) and another
over the node's own FERFLOW_HOME, so every read of the driver's files from a unit finds an empty folder. (A second
``ray start`` on one machine is refused unless Ray's Windows/macOS cluster switch is on: it leaves loopback.) The
local stack's Prefect server, cpu worker and MLflow server on loopback; the pipeline is triggered through the
deployed ``pipeline`` deployment.

Proves: the pipeline completes; every unit's MLflow run ran on a worker node, never the head; a worker node killed
mid-unit gets the unit resumed on the other node from the store's ``last.pt`` (its run starts at an epoch > 0), one
FINISHED run per unit, the dead one KILLED.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fer_spec.profile import load_pipeline_config
from tests.e2e.conftest import REPO, assert_one_finished_run_per_unit, served_stack
from tests.e2e.test_deploy_pipeline import worker_log_tail

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BUCKET = "ferflow-isolated"
CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
ONE_CPU = {"cpu": 1}
UNIT_STAGES = {"train_teacher", "distill"}  # the stages whose units are Ray tasks placed by resources


def _unshare_problem(probe_dir: Path) -> str | None:
    """Why a private mount namespace with a tmpfs cannot hide a folder here, or None when it can."""
    if not shutil.which("unshare"):
        return "unshare is not installed"
    (probe_dir / "seen").write_text("x")
    cmd = f"mount -t tmpfs none {probe_dir} && test ! -e {probe_dir}/seen"
    try:
        out = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", cmd],
                             capture_output=True, text=True, timeout=30)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unshare failed: {e}"
    if out.returncode != 0:
        return f"unshare --mount / mount -t tmpfs not permitted here: {out.stderr.strip()[-300:]}"
    return None


@dataclass
class IsolatedNode:
    """A worker node in its own mount namespace."""

    proc: subprocess.Popen
    node_id: str
    home: Path

    def namespace_pids(self) -> list[int]:
        """Every process in the node's mount namespace (the launcher, its raylet, reaper and Ray workers)."""
        ns = os.readlink(f"/proc/{self.proc.pid}/ns/mnt")
        pids = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.readlink(f"/proc/{entry}/ns/mnt") == ns:
                        pids.append(int(entry))
                except OSError:
                    pass  # gone meanwhile, or not ours to read
        return pids

    def kill(self) -> None:
        """SIGKILL the whole node at once (what a lost machine looks like to the head)."""
        if self.proc.poll() is not None:
            return
        for pid in self.namespace_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=30)


def start_isolated_node(gcs: str, hidden: list[Path], home: Path, log: Path, timeout_s: float = 120) -> IsolatedNode:
    """A worker node that sees an empty tmpfs over each of ``hidden`` and over its own ``home``."""
    home.mkdir(parents=True, exist_ok=True)
    ready = home.with_suffix(".ready")
    mounts = " && ".join(f"mount -t tmpfs none {p}" for p in [*hidden, home])
    launcher = f"exec {sys.executable} -m tests.e2e._isolated_raylet --address {gcs} --cpus 1 --ready {ready}"
    env = {**os.environ, "FERFLOW_HOME": str(home), "PYTHONPATH": str(REPO)}
    cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", f"{mounts} && {launcher}"]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout_s
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the isolated node {home.name} did not start: {log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.5)
    return IsolatedNode(proc, json.loads(ready.read_text())["node_id"], home)


@pytest.fixture(scope="module")
def moto_s3() -> Iterator[str]:
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket=BUCKET)  # fmt: skip
    yield endpoint
    server.stop()


@pytest.fixture(scope="module")
def isolated_env(stack_home: Path, moto_s3: str, tmp_path_factory) -> Iterator[dict[str, str]]:
    """This process's environment for the module: the driver's home, the store on S3, Ray on loopback."""
    problem = _unshare_problem(tmp_path_factory.mktemp("unshare-probe"))
    if problem:
        pytest.skip(problem)
    env = {"FERFLOW_HOME": str(stack_home), "FERFLOW_STORE": f"s3://{BUCKET}/store-{uuid.uuid4().hex[:8]}",
           "AWS_ENDPOINT_URL": moto_s3, "RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
           **CREDS}  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "MLFLOW_S3_ENDPOINT_URL"):
            mp.delenv(name, raising=False)
        for k, v in env.items():
            mp.setenv(k, v)
        yield env


@pytest.fixture(scope="module")
def cluster(isolated_env, stack_home: Path, tmp_path_factory) -> Iterator[tuple]:
    from ray.cluster_utils import Cluster

    (stack_home / "driver-only").write_text("only the driver may read this")
    root = tmp_path_factory.mktemp("nodes")
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "node_ip_address": "127.0.0.1"})
    gcs = f"127.0.0.1:{c.address.rsplit(':', 1)[1]}"
    nodes: list[IsolatedNode] = []
    try:
        for name in ("node-a", "node-b"):
            nodes.append(start_isolated_node(gcs, [stack_home], root / name, root / f"{name}.log"))
        yield c, gcs, nodes
    finally:
        for n in nodes:
            n.kill()
        c.shutdown()


def _probe(gcs: str, node_ids: list[str], driver_home: Path) -> dict[str, tuple]:
    """What a Ray task pinned to each node sees of the driver's home, and its FERFLOW_HOME (run in a subprocess: a
    Ray driver in this process would stay connected)."""
    code = f"""
import json, os, ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy as On
ray.init(address={gcs!r}, _node_ip_address="127.0.0.1", log_to_driver=False)
@ray.remote(num_cpus=1)
def look(home):
    return [os.listdir(home), os.environ.get("FERFLOW_HOME"), ray.get_runtime_context().get_node_id()]
refs = {{n: look.options(scheduling_strategy=On(n, soft=False)).remote({str(driver_home)!r}) for n in {node_ids!r}}}
print(json.dumps({{n: ray.get(r, timeout=120) for n, r in refs.items()}}))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    return {k: tuple(v) for k, v in json.loads(out.stdout.strip().splitlines()[-1]).items()}


@pytest.fixture(scope="module")
def stack(stack_home: Path, cluster) -> Iterator[dict]:
    """Prefect server + cpu worker + MLflow server on loopback; their flow runs use the isolated cluster."""
    _, gcs, _ = cluster
    with served_stack(stack_home, ray_address=gcs) as served:
        yield served


def tiny_on_one_cpu(teacher_seeds: list[int], teacher_epochs: int = 3) -> dict:
    """The tiny profile with every unit on one CPU (so the two teacher units take both worker nodes)."""
    cfg = load_pipeline_config(REPO / "configs" / "tiny.yaml").model_dump(mode="json")
    cfg["teachers"]["resources"] = ONE_CPU
    cfg["teachers"]["seeds"] = teacher_seeds
    for t in cfg["teachers"]["teachers"]:
        t["train"]["epochs"] = teacher_epochs
    cfg["student"]["resources"] = ONE_CPU
    return cfg


def trigger(stack, config: dict, timeout: float):
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: stack["env"]["PREFECT_API_URL"]}):
        return run_deployment("pipeline/pipeline", parameters={"config": config}, timeout=timeout, poll_interval=2)


def wait_final(stack, flow_run_id, deadline: float):
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: stack["env"]["PREFECT_API_URL"]}):
        with get_client(sync_client=True) as client:
            while True:
                run = client.read_flow_run(flow_run_id)
                if run.state is not None and run.state.is_final():
                    return run
                assert time.monotonic() < deadline, worker_log_tail(stack)
                time.sleep(3)


def mlflow_runs(stack, flt: str = "") -> list:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=stack["env"]["MLFLOW_TRACKING_URI"])
    exps = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(exps, flt, max_results=1000)


def teacher_runs(stack, seed: int) -> list:
    return mlflow_runs(stack, f"tags.`ferflow.stage` = 'train_teacher' and tags.`ferflow.seed` = '{seed}'")


def test_worker_nodes_cannot_read_the_drivers_home(cluster, stack_home: Path):
    _, gcs, nodes = cluster
    seen = _probe(gcs, [n.node_id for n in nodes], stack_home)
    assert (stack_home / "driver-only").is_file()  # still there for the driver
    for n in nodes:
        listing, home, node_id = seen[n.node_id]
        assert node_id == n.node_id
        assert listing == [], f"node {node_id[:8]} sees the driver's home: {listing}"
        assert home == str(n.home) and home != str(stack_home)


@pytest.fixture(scope="module")
def placed_run(stack):
    run = trigger(stack, tiny_on_one_cpu([0]), timeout=900)
    assert run.state is not None and run.state.is_completed(), (run.state, worker_log_tail(stack))
    return run


def test_tiny_pipeline_completes_with_every_unit_on_a_worker_node(stack, placed_run, cluster):
    c, _, nodes = cluster
    workers = {n.node_id for n in nodes}
    runs = mlflow_runs(stack)
    where = {r.info.run_id: r.data.tags.get("ferflow.worker_node", "").split()[0] for r in runs}
    units = [r for r in runs if r.data.tags.get("ferflow.stage") in UNIT_STAGES]
    assert {r.data.tags["ferflow.stage"] for r in units} == UNIT_STAGES
    for r in units:  # a training unit never runs in the driver nor on the head
        assert where[r.info.run_id] in workers, (r.data.tags.get("mlflow.runName"), where[r.info.run_id])
    for r in runs:  # what ran anywhere but the driver (stage runs there read only the store and MLflow) was a worker
        assert where[r.info.run_id] in workers | {"driver", ""}, r.data.tags.get("mlflow.runName")
        assert where[r.info.run_id] != c.head_node.node_id
    teachers = [r for r in teacher_runs(stack, 0) if r.info.status == "FINISHED"]
    assert len({where[r.info.run_id] for r in teachers}) == 2, "the two teacher units should take one node each"
    assert all(r.data.tags["ferflow.run_key"].startswith("runs/train_teacher/") for r in teachers)


def test_a_killed_node_gets_its_unit_resumed_from_the_store_on_the_other(stack, placed_run, cluster):
    from fer_adapters.store import Store

    _, _, nodes = cluster
    store = Store.from_env()
    started = trigger(stack, tiny_on_one_cpu([5], teacher_epochs=60), timeout=0)
    deadline = time.monotonic() + 300
    victim, victim_key = None, None
    while victim is None and time.monotonic() < deadline:
        running = [r for r in teacher_runs(stack, 5) if r.info.status == "RUNNING"]
        if len(running) == 2:
            run = running[0]
            key = run.data.tags["ferflow.run_key"]
            if store.exists(f"{key}/last.pt"):  # the dying unit has pushed a checkpoint to the store
                node_id = run.data.tags["ferflow.worker_node"].split()[0]
                victim, victim_key = next(n for n in nodes if n.node_id == node_id), key
        time.sleep(1)
    assert victim is not None, "no teacher unit of seed 5 pushed a checkpoint while both trained"
    victim.kill()

    run = wait_final(stack, started.id, deadline + 600)
    assert run.state.is_completed(), (run.state, worker_log_tail(stack))
    survivor = next(n for n in nodes if n is not victim).node_id
    runs = teacher_runs(stack, 5)
    assert_one_finished_run_per_unit(runs, 2)
    resumed = next(r for r in runs if r.info.status == "FINISHED" and r.data.tags["ferflow.run_key"] == victim_key)
    assert resumed.data.tags["ferflow.worker_node"].split()[0] == survivor
    assert resumed.data.tags["ferflow.resumed_from_store"] == "True"
    assert resumed.data.metrics["start_epoch"] > 0, "the re-run trained from scratch instead of the store's last.pt"
    killed = [r for r in runs if r.info.status == "KILLED"]
    assert len(killed) == 1 and killed[0].data.tags["ferflow.run_key"] == victim_key
    assert "ferflow.killed_reason" in killed[0].data.tags
