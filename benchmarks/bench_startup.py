"""Command start-up: `ferflow ingest` of 84 small images vs the same ingest as a library call, in the same run.

Measured in fresh processes (what a person waits for):
  (a) the library call: ``run_ingest`` in a new interpreter (its imports included), the baseline;
  (b) ``ferflow ingest`` embedded, in a new ferflow home (Prefect and MLflow databases created) and again warm;
  (c) ``ferflow ingest`` with a running local stack (its Prefect and MLflow servers; Ray is not started: ingest does
      not use it): the command adopts both, as it does any healthy component of the stack;
  (d) ``python -X importtime`` of the modules each command imports.

    .venv/bin/python benchmarks/bench_startup.py [--quick] [--no-stack]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
FERFLOW = str(Path(PY).parent / "ferflow")
CLASSES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")

_LIBRARY = """
import json, sys, time
t0 = time.perf_counter()
from fer_core.data.adapters import SourceSpec
from fer_core.data.ingest import IngestConfig, run_ingest
t1 = time.perf_counter()
res = run_ingest(IngestConfig(sources=[SourceSpec(kind="folder", path=sys.argv[1])], out_dir=sys.argv[2], workers=1))
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "work_s": t2 - t1, "rows": res.manifest["rows"]}))
"""


def make_images(root: Path, per_class: int = 12, size: int = 32) -> Path:
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    for cls in CLASSES:
        for i in range(per_class):
            small = rng.integers(0, 256, (6, 6), dtype=np.uint8)
            img = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
            (root / cls).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / cls / f"{cls}_{i}.png"), img)
    return root


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return wall, out


def base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "FERFLOW_"))}
    env.update(FERFLOW_HOME=str(home), PYTHONPATH=str(ROOT), OMP_NUM_THREADS="2")
    return env


def import_profile(code: str, env: dict[str, str]) -> tuple[float, list[tuple[str, float]]]:
    """Seconds ``code`` adds to a bare interpreter start, and its five heaviest imports (cumulative seconds)."""
    bare, _ = timed([PY, "-c", "pass"], env)
    wall, _ = timed([PY, "-c", code], env)
    out = subprocess.run([PY, "-X", "importtime", "-c", code], env=env, cwd=ROOT, capture_output=True, text=True)
    rows = []
    for line in out.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\s*)(\S+)", line)
        if m and len(m.group(2)) == 2:  # the modules the imported one imports directly
            rows.append((m.group(3), int(m.group(1)) / 1e6))
    return wall - bare, sorted(rows, key=lambda r: -r[1])[:5]


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def cli_ingest(data: Path, out: Path, env: dict[str, str]) -> tuple[float, str]:
    start = time.time()
    wall, res = timed([FERFLOW, "ingest", "--source", f"folder:{data}", "--out", str(out)], env)
    return wall, res.stderr + "\n" + phases(res.stderr, start, wall)


def phases(log: str, start: float, wall: float) -> str:
    """Split a run by Prefect's log clock: until the flow begins (imports, server), the flow, after it."""
    import datetime as dt

    def at(pattern: str) -> float | None:
        m = re.search(r"^(\d\d:\d\d:\d\d\.\d{3}) \|.*" + pattern, log, re.M)
        if not m:
            return None
        day = dt.datetime.fromtimestamp(start).date()
        return dt.datetime.combine(day, dt.time.fromisoformat(m.group(1))).timestamp()

    begin, end = at("Beginning flow run"), at(r"Flow run '[^']*' - Finished in state Completed")
    if begin is None or end is None:
        return "phases: (no Prefect timestamps in the log)"
    return (f"phases: start-up until the flow begins {begin - start:.1f} s (imports, Prefect server), "
            f"flow {end - begin:.1f} s (tasks + MLflow run), exit {start + wall - end:.1f} s")


def with_stack(data: Path, work: Path, say) -> dict[str, float] | str:
    """Start the stack's Prefect and MLflow servers in a fresh home, run the command against them, stop them."""
    home = work / "home-stack"
    env = base_env(home)
    ports = free_ports(4)
    env.update(FERFLOW_PREFECT_PORT=str(ports[0]), FERFLOW_MLFLOW_PORT=str(ports[1]), FERFLOW_RAY_PORT=str(ports[2]),
               FERFLOW_RAY_DASHBOARD_PORT=str(ports[3]))  # fmt: skip
    up = ("import sys; from ferflow.stack import stack_up; from fer_spec.settings import Settings; "
          "st = stack_up(Settings.from_env(), components=('prefect', 'mlflow')); "
          "sys.exit(0 if st.healthy else 1)")  # fmt: skip
    down = ("from ferflow.stack import stack_down; from fer_spec.settings import Settings; "
            "stack_down(Settings.from_env())")
    try:
        t_up, _ = timed([PY, "-c", up], env)
    except SystemExit as e:
        return f"the stack's Prefect server did not start here: {str(e)[-300:]}"
    try:
        first, log = cli_ingest(data, work / "out-stack-1", env)
        if "using the local stack's Prefect server" not in log or "(and its MLflow)" not in log:
            return "the command did not pick up the stack's Prefect and MLflow servers"
        second, log2 = cli_ingest(data, work / "out-stack-2", env)
        for text in (log, log2):
            say("  " + "\n  ".join(line for line in text.splitlines() if line.startswith("phases:")))
    finally:
        subprocess.run([PY, "-c", down], env=env, cwd=ROOT, capture_output=True, timeout=120)
    say(f"  stack Prefect + MLflow start-up {t_up:.1f} s (paid once by `ferflow stack up`)")
    return {"first_s": first, "second_s": second}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one embedded run (cold home) and no stack run")
    ap.add_argument("--no-stack", action="store_true", help="skip the run against the stack's Prefect server")
    args = ap.parse_args()
    say = print
    work = Path(tempfile.mkdtemp(prefix="ferflow-bench-startup-"))
    try:
        data = make_images(work / "data")
        env = base_env(work / "home")
        lib_wall, res = timed([PY, "-c", _LIBRARY, str(data), str(work / "out-lib")], env)
        lib = json.loads(res.stdout)
        say(f"library run_ingest ({lib['rows']} rows): {lib_wall:.1f} s wall in a new process "
            f"(imports {lib['import_s']:.1f} s, work {lib['work_s']:.1f} s)  [baseline]")
        cold, log = cli_ingest(data, work / "out-cold", env)
        say(f"ferflow ingest, embedded, new home: {cold:.1f} s = {cold / lib_wall:.1f}x the library; "
            f"overhead {cold - lib_wall:.1f} s")
        say("  " + "\n  ".join(line for line in log.splitlines() if line.startswith(("ingest:", "phases:"))))
        if not args.quick:
            warm, log = cli_ingest(data, work / "out-warm", env)
            say(f"ferflow ingest, embedded, warm home: {warm:.1f} s = {warm / lib_wall:.1f}x; "
                f"overhead {warm - lib_wall:.1f} s")
            say("  " + "\n  ".join(line for line in log.splitlines() if line.startswith("phases:")))
        if not (args.quick or args.no_stack):
            stack = with_stack(data, work, say)
            if isinstance(stack, str):
                say(f"with the stack: not measured ({stack})")
            else:
                for k, v in stack.items():
                    say(f"ferflow ingest, stack's Prefect ({k[:-2]} run): {v:.1f} s = {v / lib_wall:.1f}x; "
                        f"overhead {v - lib_wall:.1f} s")
        say("imports (python -X importtime, cumulative seconds, heaviest top-level modules):")
        for what, code in (("ferflow --help / validate / evaluate / score", "import ferflow.cli"),
                           ("library ingest", "import fer_core.data.ingest"),
                           ("ferflow ingest (the flow module)", "import flows.ingest")):  # fmt: skip
            total, top = import_profile(code, env)
            say(f"  {what}: {total:.2f} s; " + ", ".join(f"{n} {s:.2f}" for n, s in top))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
