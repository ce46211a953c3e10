"""Concurrent units vs the serial run: the embedded pipeline's wall time on this machine, same run.

Usage: .venv/bin/python benchmarks/bench_orchestration.py [--profile demo|tiny] [--quick]

Two runs of the same profile, each in a fresh subprocess with its own FERFLOW_HOME / PREFECT_HOME and a local Ray of
``os.cpu_count()`` CPUs (2 here), differing only in the units' declared resources:
- serial (baseline): every teacher/student unit asks for ``cpu: <all cores>``, so units run one at a time with all
  cores as torch threads: what the pipeline did before units were placed on Ray.
- slots: every unit asks for ``cpu: 1``, so Ray runs ``cpu_count`` units at a time with one torch thread each.
Printed: each run's wall time, the per-stage wall (the stage flow runs' durations) and the ratio serial / slots.
``--quick`` uses the tiny profile.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_pipeline import _fresh_env  # noqa: E402 - one fresh-home environment for every pipeline benchmark


def child(profile: str, cpu: int) -> dict:
    """One pipeline run with every unit asking for ``cpu`` CPUs; returns wall and per-stage seconds."""
    from prefect import get_client

    from fer_adapters.ray_cluster import ensure_ray
    from fer_spec.profile import load_pipeline_config
    from flows.pipeline import pipeline_flow

    cfg = load_pipeline_config(REPO / "configs" / f"{profile}.yaml")
    res = {"cpu": cpu}
    teachers = cfg.teachers.model_copy(update={"resources": cfg.teachers.resources.model_copy(update=res)})
    student = cfg.student.model_copy(update={"resources": cfg.student.resources.model_copy(update=res)})
    cfg = cfg.model_copy(update={"teachers": teachers, "student": student})
    ensure_ray()
    t0 = time.perf_counter()
    state = pipeline_flow(config=cfg, return_state=True)
    wall = time.perf_counter() - t0
    state.result()
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(limit=50)
    stages = {r.name.split(" · ")[-1]: r.total_run_time.total_seconds() for r in runs if " · " in r.name}
    return {"wall_s": wall, "stages": stages}


def run_child(profile: str, cpu: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="ferflow-bench-orch-") as tmp:
        out = subprocess.run([sys.executable, __file__, "--child", profile, str(cpu)], env=_fresh_env(Path(tmp)),
                             cwd=REPO, capture_output=True, text=True, timeout=3600)  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"run with cpu={cpu} failed:\n{(out.stdout + out.stderr)[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--quick", action="store_true", help="tiny profile")
    ap.add_argument("--child", nargs=2, metavar=("PROFILE", "CPU"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]))))
        return
    profile = "tiny" if args.quick else args.profile
    cores = os.cpu_count() or 1
    print(f"profile {profile}, local Ray of {cores} CPUs, load before {os.getloadavg()[0]:.2f}")
    serial = run_child(profile, cores)
    slots = run_child(profile, 1)
    print(f"{'stage':<12} {'serial s':>9} {'slots s':>9} {'ratio':>7}")
    for stage in ("ingest", "teachers", "ensemble", "students", "calibrate", "package"):
        a, b = serial["stages"].get(stage, float("nan")), slots["stages"].get(stage, float("nan"))
        print(f"{stage:<12} {a:9.1f} {b:9.1f} {a / b:7.2f}x")
    print(f"{'pipeline':<12} {serial['wall_s']:9.1f} {slots['wall_s']:9.1f} {serial['wall_s'] / slots['wall_s']:7.2f}x"
          f"   (serial = units one at a time with {cores} threads; slots = {cores} units at a time, 1 thread each)")
    print(f"load after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
