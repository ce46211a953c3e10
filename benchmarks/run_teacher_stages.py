"""Run the teachers stage of several profiles at once, in one process, so their units share one Ray node's slots.

The issue-21 evidence runs used it for the student screen and its keep-vs-drop twin (their units are teachers-stage
units of different indexes, so no single profile holds them). Each profile's units queue in the order given (20 s
apart), and Ray runs as many at a time as the node has cores for their resources.

Usage: ``.venv/bin/python benchmarks/run_teacher_stages.py [--slots N] PROFILE.yaml [PROFILE.yaml ...]`` (each
profile's ingest stage must have run: ``ferflow ingest -c PROFILE.yaml``). ``--slots N`` sizes the local Ray node to N
CPU slots (default: every core); more slots than cores lets N one-core units share the cores, so a set of units that
is not a multiple of the core count ends together instead of leaving a core idle for a last unit.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fer_adapters.ray_cluster import ensure_ray  # noqa: E402
from ferflow.cli import _flows_ready, _load_profile, _run_flow  # noqa: E402


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number of CPU slots")
    return int(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slots", type=_positive_int, help="CPU slots of the local Ray node (default: every core)")
    ap.add_argument("profiles", type=Path, nargs="+", metavar="PROFILE.yaml")
    a = ap.parse_args()
    cfgs = [_load_profile(p) for p in a.profiles]
    _flows_ready()
    ensure_ray(num_cpus=a.slots)  # in the main thread, once: both stages' threads then submit to this one node
    from flows.pipeline import STAGE_FLOWS

    with ThreadPoolExecutor(len(cfgs)) as ex:
        futures = []
        for cfg in cfgs:
            futures.append(ex.submit(_run_flow, STAGE_FLOWS["train_teachers"], config=cfg))
            time.sleep(20)  # the earlier profile's units are queued first
        for f in futures:
            print(f.result(), flush=True)


if __name__ == "__main__":
    main()
