"""Start one Ray worker node that joins a running head, then wait (run inside its own mount namespace).

``python -m tests.e2e._isolated_raylet --address 127.0.0.1:PORT --cpus 1 --ready FILE``: a second ``ray start`` on
one machine is refused unless Ray's Windows/macOS cluster switch is on (it moves the node off loopback); the node is
started the way ``ray.cluster_utils.Cluster.add_node`` starts a non-head node, every address on 127.0.0.1. The
raylet and every worker it spawns inherit this process's mount namespace and environment (its own FERFLOW_HOME).
Writes its node id to ``FILE`` once the node runs; killing every process of the namespace kills the node.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--address", required=True)
    ap.add_argument("--cpus", type=int, default=1)
    ap.add_argument("--resources", default="{}")
    ap.add_argument("--ready", required=True)
    args = ap.parse_args()

    import ray
    from ray._private.node import Node
    from ray._private.parameter import RayParams

    params = RayParams(
        gcs_address=args.address,
        node_ip_address="127.0.0.1",
        num_cpus=args.cpus,
        num_gpus=0,
        resources=json.loads(args.resources),
        object_store_memory=150 * 1024 * 1024,
        min_worker_port=0,
        max_worker_port=0,
        node_manager_port=0,
        include_log_monitor=False,
    )
    params.dashboard_agent_listen_port = None  # pick a free one: the head's agent holds the default
    node = Node(params, head=False, shutdown_at_exit=True, spawn_reaper=True)
    ready = Path(args.ready)
    tmp = ready.with_suffix(".tmp")
    tmp.write_text(json.dumps({"node_id": node.node_id, "pid": os.getpid(), "ray": ray.__version__}))
    tmp.rename(ready)
    while True:  # the node lives as long as this process (its reaper kills the raylet when we die)
        time.sleep(3600)


if __name__ == "__main__":
    main()
