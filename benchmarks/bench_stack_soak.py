"""Soak of the local stack: repeated tiny runs against `ferflow stack up`; leaks of processes, ports, memory, databases.

Starts the whole stack (Prefect server + worker, MLflow server, Ray head) in a fresh home on free ports, then runs the
workload again and again for ``--minutes`` (``ingest``: ``ferflow ingest`` of 84 generated images; ``pipeline``:
``ferflow pipeline -c configs/tiny.yaml``). After every run it records the stack's live processes, the TCP ports they
listen on, their RSS, the Prefect and MLflow database sizes, and any process left behind that carries this home in
its environment. The first run is the baseline each figure is compared with.

    .venv/bin/python benchmarks/bench_stack_soak.py --minutes 30 [--workload pipeline|ingest]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_startup import make_images  # noqa: E402

from fer_spec.settings import Settings  # noqa: E402
from ferflow import _stack_procs as procs  # noqa: E402
from ferflow.stack import COMPONENTS, _load_state, _record, stack_down, stack_env, stack_up  # noqa: E402

FERFLOW = str(Path(sys.executable).parent / "ferflow")


def stack_pids(settings: Settings) -> list[int]:
    state = _load_state(settings)
    return sorted(p for c in COMPONENTS if c in state["components"] for p in procs.owned_members(
        _record(state["components"][c])))  # fmt: skip


def listening_ports(pids: list[int]) -> set[int]:
    """TCP ports in LISTEN state whose socket belongs to one of ``pids``."""
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        except OSError:
            continue
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A" and f[9] in inodes:
                ports.add(int(f[1].rsplit(":", 1)[1], 16))
    return ports


def carriers(home: Path) -> list[int]:
    """Processes of this user whose environment names this ferflow home (the stack, its runs, their children)."""
    key = f"FERFLOW_HOME={home}".encode()
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if key in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                out.append(int(pid))
        except OSError:
            continue
    return sorted(p for p in out if p != os.getpid())


def db_bytes(home: Path) -> dict[str, int]:
    files = {"prefect": home / "prefect" / "prefect.db", "mlflow": home / "mlflow-server.db"}
    return {k: sum(p.stat().st_size for p in v.parent.glob(v.name + "*") if p.is_file()) for k, v in files.items()}


def sample(settings: Settings) -> dict:
    pids = stack_pids(settings)
    return {"pids": len(pids), "ports": sorted(listening_ports(pids)), "rss_mb": procs.rss_bytes(pids) / 2**20,
            "db": db_bytes(settings.home), "stray": sorted(set(carriers(settings.home)) - set(pids))}  # fmt: skip


def workload(kind: str, data: Path, out: Path, env: dict[str, str]) -> float:
    cmd = ([FERFLOW, "ingest", "--source", f"folder:{data}", "--out", str(out)] if kind == "ingest"
           else [FERFLOW, "pipeline", "--config", "configs/tiny.yaml"])  # fmt: skip
    t0 = time.perf_counter()
    res = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    if res.returncode != 0:
        raise SystemExit(f"{kind} run failed ({res.returncode}):\n{res.stderr[-2000:]}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0, help="how long to keep starting runs")
    ap.add_argument("--workload", choices=("pipeline", "ingest"), default="pipeline")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ferflow-soak-"))
    home = work / "home"
    ports = [procs.free_port() for _ in range(4)]
    os.environ.update(FERFLOW_HOME=str(home), FERFLOW_PREFECT_PORT=str(ports[0]), FERFLOW_MLFLOW_PORT=str(ports[1]),
                      FERFLOW_RAY_PORT=str(ports[2]), FERFLOW_RAY_DASHBOARD_PORT=str(ports[3]))  # fmt: skip
    settings = Settings.from_env()
    data = make_images(work / "data")
    t0 = time.perf_counter()
    stack_up(settings)
    print(f"stack up in {time.perf_counter() - t0:.1f} s, home {home}")
    env = {**os.environ, **stack_env(settings), "PYTHONPATH": str(ROOT)}
    rows = []
    try:
        deadline = time.monotonic() + args.minutes * 60
        while time.monotonic() < deadline or not rows:
            wall = workload(args.workload, data, work / f"out-{len(rows)}", env)
            rows.append({"wall_s": wall, **sample(settings)})
            r = rows[-1]
            print(f"run {len(rows)}: {wall:.1f} s; stack pids {r['pids']}, ports {len(r['ports'])}, "
                  f"RSS {r['rss_mb']:.0f} MB, prefect.db {r['db']['prefect'] / 2**20:.2f} MB, "
                  f"mlflow db {r['db']['mlflow'] / 2**20:.2f} MB, stray processes {r['stray']}", flush=True)
    finally:
        stack_down(settings)
    left = carriers(home)
    first, last = rows[0], rows[-1]
    n = max(len(rows) - 1, 1)
    print(f"{len(rows)} runs: stack pids {first['pids']} -> {last['pids']}, listening ports {first['ports']} -> "
          f"{last['ports']}, RSS {first['rss_mb']:.0f} -> {last['rss_mb']:.0f} MB "
          f"({(last['rss_mb'] / first['rss_mb'] - 1) * 100:+.1f}%), prefect.db "
          f"{(last['db']['prefect'] - first['db']['prefect']) / n / 1024:.0f} KB/run, mlflow db "
          f"{(last['db']['mlflow'] - first['db']['mlflow']) / n / 1024:.0f} KB/run, run wall "
          f"{first['wall_s']:.1f} -> {last['wall_s']:.1f} s")
    print(f"after stack down: processes carrying the home {left}, stack ports still open "
          f"{[p for p in ports if procs.port_open(p)]}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
