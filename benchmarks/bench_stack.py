"""Local stack cost: start-up seconds and idle resident memory (RSS over each component's session).

Usage: .venv/bin/python benchmarks/bench_stack.py [--quick] [--idle-s N]

Baseline measured in the same run: a bare Python interpreter of this venv (start-up of ``python -c pass``, RSS of
an idle ``python -c 'sleep'``); each component is reported in absolute terms and as a multiple of that baseline.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fer_spec.settings import Settings  # noqa: E402
from ferflow import _stack_procs as procs  # noqa: E402
from ferflow.stack import stack_down, stack_up  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _baseline() -> tuple[float, int]:
    """(seconds to run `python -c pass`, RSS bytes of an idle interpreter)."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    startup = time.perf_counter() - t0
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    time.sleep(1.0)
    rss = procs.rss_bytes([proc.pid])
    proc.kill()
    proc.wait()
    return startup, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter idle wait before measuring memory")
    parser.add_argument("--idle-s", type=float, default=None, help="seconds idle before measuring RSS (default 15)")
    args = parser.parse_args()
    idle_s = args.idle_s if args.idle_s is not None else (5.0 if args.quick else 15.0)

    base_start, base_rss = _baseline()
    home = Path(tempfile.mkdtemp(prefix="ferflow-bench-stack-"))
    settings = Settings(home=home, tracking_uri="", ray_address=None, ray_object_store_mb=1024,
                        prefect_port=_free_port(), mlflow_port=_free_port(), ray_port=_free_port(),
                        ray_dashboard_port=_free_port(), artifacts=str(home / "artifacts"))  # fmt: skip
    t0 = time.perf_counter()
    events: list[tuple[float, str]] = []
    try:
        status = stack_up(settings, timeout_s=180, on_event=lambda m: events.append((time.perf_counter() - t0, m)))
        total = time.perf_counter() - t0
        time.sleep(idle_s)
        rows = []
        for name, comp in stack_up(settings).components.items():  # already healthy: just re-reads status
            rows.append((name, comp.startup_s or 0.0, procs.rss_bytes(comp.pids), len(comp.pids)))
    finally:
        stack_down(settings)
        shutil.rmtree(home, ignore_errors=True)
    print(f"baseline: python start {base_start:.2f} s, idle python RSS {base_rss / 2**20:.0f} MiB")
    print(f"{'component':<10}{'start s':>9}{'x base':>8}{'RSS MiB':>9}{'x base':>8}{'procs':>7}")
    for name, start, rss, n in rows:
        print(f"{name:<10}{start:>9.1f}{start / base_start:>8.1f}{rss / 2**20:>9.0f}{rss / base_rss:>8.1f}{n:>7}")
    all_rss = sum(r[2] for r in rows)
    print(f"{'total':<10}{total:>9.1f}{total / base_start:>8.1f}{all_rss / 2**20:>9.0f}{all_rss / base_rss:>8.1f}")
    print(f"(idle {idle_s:.0f} s before measuring; stack healthy: {status.healthy}; start-up is wall time to healthy, "
          "Prefect/MLflow/Ray start side by side, the worker after the pools)")  # fmt: skip
    for at, msg in events:
        print(f"  [{at:5.1f} s] {msg.splitlines()[0]}")


if __name__ == "__main__":
    main()
