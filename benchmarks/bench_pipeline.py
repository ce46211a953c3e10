"""Pipeline orchestration cost: overhead vs stage compute, the all-cached re-run, stack memory, Ray sweep scale-out.

Usage: .venv/bin/python benchmarks/bench_pipeline.py [--quick] [--parts overhead,memory,scaleout]

Each part runs in its own subprocess with a fresh FERFLOW_HOME / PREFECT_HOME:
- overhead: embedded ``pipeline`` on configs/tiny.yaml (ephemeral Prefect server warmed by a no-op flow first, so its
  start-up is reported apart). Baseline = the sum of every task run's own duration in that run, read through the
  Prefect API (the stages' compute: training, Ray Tune, ONNX export, MLflow logging inside tasks). Ratio = pipeline
  wall / that sum. Then the same call again: the all-cached re-run's wall time.
- memory: ``stack_up`` in a temporary home; RSS per component idle, then peak while a client runs the pipeline
  against the stack (servers, worker, Ray head and the Tune trial processes Ray spawns; the client is separate).
- scaleout: ``distill_sweep`` (Ray Tune over loss x seeds, one CPU and one torch thread per trial, ASHA off) with a
  local Ray node of 1 CPU (1 trial at a time) vs 2 CPUs (2 at a time); same number of trials, different seeds so
  nothing resumes; the sweep's own time is its MLflow run's wall_time_s (upstream stages excluded).
  Ratio = 1-CPU / 2-CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
TINY = REPO / "configs" / "tiny.yaml"


def _fresh_env(home: Path) -> dict[str, str]:
    for sub in ("home", "prefect"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "FERFLOW_"))}
    env.update({"FERFLOW_HOME": str(home / "home"), "PREFECT_HOME": str(home / "prefect"),
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
                "RAY_USAGE_STATS_ENABLED": "0", "FERFLOW_RAY_OBJECT_STORE_MB": "512",
                "PYTHONPATH": str(REPO)})  # fmt: skip
    return env


def _child(part: str, env: dict[str, str], *extra: str) -> dict:
    """Run ``--child PART`` in a subprocess; its last stdout line is a JSON dict."""
    out = subprocess.run([sys.executable, __file__, "--child", part, *extra], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=1800)  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"part {part} failed:\n{(out.stdout + out.stderr)[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------- overhead
def _task_seconds(flow_run_id) -> dict[str, float]:
    """Seconds inside real task runs below a flow run (nested subflows' tasks included, subflow calls not)."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterParentFlowRunId

    with get_client(sync_client=True) as client:
        ids, frontier, wrappers = {flow_run_id}, [flow_run_id], set()
        while frontier:
            kids = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=frontier))
            )
            wrappers.update(k.parent_task_run_id for k in kids)  # a subflow call's stand-in task run in its parent
            frontier = [k.id for k in kids if k.id not in ids]
            ids.update(frontier)
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(ids))), limit=200)
    per: dict[str, float] = {}
    for t in runs:
        if t.id in wrappers:
            continue
        name = t.name.rsplit("-", 1)[0]
        per[name] = per.get(name, 0.0) + t.total_run_time.total_seconds()
    return per


def child_overhead() -> dict:
    from prefect import flow

    from flows.pipeline import pipeline_flow

    @flow
    def noop() -> int:
        return 1

    t0 = time.perf_counter()
    noop()
    server_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    state = pipeline_flow(profile="tiny", return_state=True)
    wall = time.perf_counter() - t0
    state.result()
    tasks = _task_seconds(state.state_details.flow_run_id)
    t0 = time.perf_counter()
    again = pipeline_flow(profile="tiny", return_state=True)
    cached = time.perf_counter() - t0
    again.result()
    cached_tasks = _task_seconds(again.state_details.flow_run_id)
    return {"server_start_s": server_s, "wall_s": wall, "tasks_s": tasks, "cached_wall_s": cached,
            "cached_tasks_s": sum(cached_tasks.values())}  # fmt: skip


# --------------------------------------------------------------------------------------------------- memory
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_memory() -> dict:
    from fer_spec.settings import Settings
    from ferflow import _stack_procs as procs
    from ferflow.stack import _load_state, _record, stack_down, stack_up

    home = Path(os.environ["FERFLOW_HOME"])
    settings = Settings(home=home, tracking_uri="", ray_address=None, ray_object_store_mb=512,
                        prefect_port=_free_port(), mlflow_port=_free_port(), ray_port=_free_port(),
                        ray_dashboard_port=_free_port(), artifacts=str(home / "artifacts"), ray_num_cpus=2)  # fmt: skip

    def rss() -> dict[str, int]:
        comps = _load_state(settings)["components"]
        return {n: procs.rss_bytes(procs.owned_members(_record(e))) for n, e in comps.items()}

    try:
        status = stack_up(settings, timeout_s=180)
        time.sleep(10.0)
        idle = rss()
        env = {**os.environ, **status.env}
        client = subprocess.Popen([sys.executable, "-c", "from flows.pipeline import pipeline_flow; "
                                   "pipeline_flow(profile='tiny')"], env=env, cwd=REPO,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
        peak: dict[str, int] = {}
        peak_total, client_peak = 0, 0
        err: list[str] = []
        reader = threading.Thread(target=lambda: err.append(client.stderr.read()), daemon=True)
        reader.start()
        while client.poll() is None:
            now = rss()
            peak = {n: max(peak.get(n, 0), v) for n, v in now.items()}
            peak_total = max(peak_total, sum(now.values()))
            client_peak = max(client_peak, procs.rss_bytes([client.pid]))
            time.sleep(0.5)
        reader.join(timeout=5)
        if client.returncode != 0:
            raise RuntimeError(f"pipeline client failed: {''.join(err)[-3000:]}")
    finally:
        stack_down(settings)
    return {"idle": idle, "peak": peak, "peak_total": peak_total, "client_peak": client_peak}


# ------------------------------------------------------------------------------------------------- scaleout
def sweep_profile(folder: Path, seeds: list[int]) -> Path:
    cfg = yaml.safe_load(TINY.read_text())
    cfg["student"]["train"]["num_threads"] = 1
    cfg["student"]["train"]["epochs"] = 4
    cfg["student"]["sweep"].update({"losses": ["ce", "kd"], "seeds": seeds, "resources": {"cpu": 1},
                                    "asha_grace_epochs": 99})  # fmt: skip
    path = folder / f"sweep-{'-'.join(map(str, seeds))}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def child_scaleout(cpus: int, profile: str) -> dict:
    from mlflow.tracking import MlflowClient

    from fer_adapters.ray_cluster import ensure_ray
    from fer_spec.profile import load_pipeline_config
    from flows.distill import distill_sweep_flow
    from flows.ensemble import tune_ensemble_flow
    from flows.ingest_stage import ingest_pipeline_flow
    from flows.teachers import train_teachers_flow

    ensure_ray(num_cpus=cpus)
    cfg = load_pipeline_config(profile)
    for upstream in (ingest_pipeline_flow, train_teachers_flow, tune_ensemble_flow):  # the sweep's inputs
        upstream(config=cfg)
    t0 = time.perf_counter()
    out = distill_sweep_flow(config=cfg)
    wall = time.perf_counter() - t0
    run = MlflowClient().get_run(out.mlflow_run_id)
    return {"cpus": cpus, "sweep_s": run.data.metrics["wall_time_s"], "flow_wall_s": wall,
            "trials": len(out.trials)}  # fmt: skip


# ------------------------------------------------------------------------------------------------------ main
def _mb(b: float) -> str:
    return f"{b / 2**20:.0f} MB"


def report_overhead(r: dict) -> None:
    compute = sum(r["tasks_s"].values())
    print(f"[overhead] ephemeral Prefect server start (warm-up flow, excluded): {r['server_start_s']:.1f} s")
    print(
        f"[overhead] pipeline wall {r['wall_s']:.1f} s; stage compute (sum of task runs) {compute:.1f} s; "
        f"ratio {r['wall_s'] / compute:.2f}x (target <= 1.2x); orchestration {r['wall_s'] - compute:.1f} s"
    )
    for name, s in sorted(r["tasks_s"].items(), key=lambda kv: -kv[1])[:8]:
        print(f"[overhead]   {name:28s} {s:6.1f} s")
    print(
        f"[cached]   all-cached re-run wall {r['cached_wall_s']:.1f} s (target <= 30 s), inside tasks "
        f"{r['cached_tasks_s']:.1f} s; {r['cached_wall_s'] / r['wall_s']:.2f}x of the first run"
    )


def report_memory(r: dict) -> None:
    print(
        f"[memory] idle: {', '.join(f'{n} {_mb(v)}' for n, v in r['idle'].items())}; "
        f"total {_mb(sum(r['idle'].values()))}"
    )
    print(
        f"[memory] peak during pipeline: {', '.join(f'{n} {_mb(v)}' for n, v in r['peak'].items())}; "
        f"total {_mb(r['peak_total'])} ({r['peak_total'] / sum(r['idle'].values()):.2f}x idle); "
        f"pipeline client process {_mb(r['client_peak'])}"
    )


def report_scaleout(one: dict, two: dict) -> None:
    ratio = one["sweep_s"] / two["sweep_s"]
    print(
        f"[scaleout] distill sweep, {one['trials']} trials: 1 trial at a time {one['sweep_s']:.1f} s, "
        f"2 at a time {two['sweep_s']:.1f} s -> speed-up {ratio:.2f}x (ideal 2.00x); "
        f"per trial {one['sweep_s'] / one['trials']:.1f} s serial"
    )
    eff = ratio / 2
    print(
        f"[scaleout] parallel efficiency {eff:.2f}; predicted for N independent GPU workers: "
        f"speed-up ~ {eff:.2f} * N while trials >= N (e.g. N=4 -> {4 * eff:.1f}x, N=8 -> {8 * eff:.1f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 sweep trials instead of 6")
    parser.add_argument("--parts", default="overhead,memory,scaleout")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--cpus", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--profile", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = {"overhead": child_overhead, "memory": child_memory}.get(args.child)
        res = result() if result else child_scaleout(args.cpus, args.profile)
        print(json.dumps(res))
        return
    parts = args.parts.split(",")
    with tempfile.TemporaryDirectory(prefix="ferflow-bench-pipeline-") as tmp:
        if "overhead" in parts:
            report_overhead(_child("overhead", _fresh_env(Path(tmp) / "overhead")))
        if "memory" in parts:
            report_memory(_child("memory", _fresh_env(Path(tmp) / "memory")))
        if "scaleout" in parts:
            env = _fresh_env(Path(tmp) / "scaleout")
            n = 2 if args.quick else 3
            p1, p2 = sweep_profile(Path(tmp), list(range(1, n + 1))), sweep_profile(Path(tmp), list(range(11, 11 + n)))
            one = _child("scaleout", env, "--cpus", "1", "--profile", str(p1))
            two = _child("scaleout", env, "--cpus", "2", "--profile", str(p2))
            report_scaleout(one, two)


if __name__ == "__main__":
    main()
