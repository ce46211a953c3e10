"""Artifact-store figures: the FER2013 dataset artifact, and the demo profile with the store on local disk vs S3.

Usage: .venv/bin/python benchmarks/bench_store.py [--quick] [--limit N] [--parts dataset,demo] [--demo-epochs E]

S3 is moto's server on 127.0.0.1 (real HTTP, ``ThreadedMotoServer`` in this process); every measured step runs in a
fresh subprocess, so nothing is warm from an earlier step unless the step says so.

- dataset: FER2013 (``../shared/data/fer2013``; ``--limit N`` keeps the first N files per class and split) ingested
  with the project's own ingest into a temporary FERFLOW_HOME. Then: the artifact's size (index + manifest + packed
  shards) against the source JPEGs; publish time to a local store and to S3 against the ingest itself; a unit's
  train + val splits fetched cold (empty node cache, S3 store) vs cached (same node cache again) vs decoded from the
  files as units did before the store (``load_split`` from the data root: 1 thread with hash checks, and 2 threads);
  and one teacher epoch's data time (split load + every training batch of one epoch at batch 128) from the packed
  cache vs from the decoded files.
- demo: ``pipeline`` on configs/demo.yaml (epochs shortened by ``--demo-epochs``: the store's cost per epoch is one
  checkpoint push, so fewer epochs make the ratio harder, not easier) with FERFLOW_STORE a local folder vs
  ``s3://…`` on moto; MLflow on SQLite and its artifacts local in both. Ratio = S3 wall / local wall (target <= 1.15).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
FER2013 = (REPO / ".." / "shared" / "data" / "fer2013").resolve()
CREDS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
TEACHER_BATCH = 128


def _env(home: Path, store: str, endpoint: str) -> dict[str, str]:
    """A clean environment for one child: its own FERFLOW_HOME (node cache) and PREFECT_HOME, the given store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "FERFLOW_", "AWS_"))}
    (home / "prefect").mkdir(parents=True, exist_ok=True)
    env.update({"FERFLOW_HOME": str(home), "PREFECT_HOME": str(home / "prefect"), "FERFLOW_STORE": store,
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
                "RAY_USAGE_STATS_ENABLED": "0", "FERFLOW_RAY_OBJECT_STORE_MB": "512",
                "PYTHONPATH": str(REPO)})  # fmt: skip
    if store.startswith("s3://"):
        env.update(CREDS, AWS_ENDPOINT_URL=endpoint)
    return env


def _child(env: dict[str, str], *args: str) -> dict:
    """Run ``--child ARGS`` in a fresh process; its last stdout line is a JSON dict."""
    out = subprocess.run([sys.executable, __file__, "--child", *args], env=env, cwd=REPO, capture_output=True,
                         text=True, timeout=3600)  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{(out.stdout + out.stderr)[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# -------------------------------------------------------------------------------------------------- children
def _spec():
    from fer_core.preprocess import PreprocessSpec

    return PreprocessSpec(size=(48, 48), channels=1, color="gray", mean=(0.5,), std=(0.5,))


def child_ingest(root: str, out_dir: str) -> dict:
    from fer_core.data.adapters import SourceSpec
    from fer_core.data.ingest import IngestConfig, run_ingest
    from fer_core.io import sha256_file

    cfg = IngestConfig(sources=[SourceSpec(kind="folder", path=Path(root), name="fer2013")], out_dir=Path(out_dir),
                       val_fraction=0.1, min_side=32, workers=2)  # fmt: skip
    t0 = time.perf_counter()
    res = run_ingest(cfg)
    return {"ingest_s": time.perf_counter() - t0, "index": str(res.index_path), "sha": sha256_file(res.index_path)}


def child_publish(index: str, sha: str) -> dict:
    from fer_adapters.datasets import publish_dataset
    from fer_adapters.store import Store

    store = Store.from_env()
    t0 = time.perf_counter()
    pack = publish_dataset(index, sha, _spec(), store)
    seconds = time.perf_counter() - t0
    keys = store.list(f"datasets/{sha}")
    size = sum(len(store.get_bytes(f"datasets/{sha}/{k}")) for k in keys)
    return {"publish_s": seconds, "bytes": size, "files": len(keys), "pack": pack}


def _epoch_batches_s(ds) -> float:
    """One training epoch's batch assembly (augmentation on) at the teacher batch size."""
    import numpy as np

    rng = np.random.default_rng(0)
    perm = rng.permutation(len(ds))
    t0 = time.perf_counter()
    for i in range(0, len(perm) - 1, TEACHER_BATCH):
        ds.get_batch(perm[i : i + TEACHER_BATCH], train=True, rng=rng)
    return time.perf_counter() - t0


def child_fetch(sha: str) -> dict:
    import torch

    from fer_adapters.datasets import dataset, load_index

    torch.set_num_threads(2)
    t0 = time.perf_counter()
    load_index(sha)
    train = dataset(sha, "train", _spec())
    dataset(sha, "val", _spec())
    load_s = time.perf_counter() - t0
    return {"load_s": load_s, "rows": len(train), "epoch_batches_s": _epoch_batches_s(train)}


def child_decode(index: str, workers: int) -> dict:
    import torch

    from fer_core.data.dataset import load_split
    from fer_core.data.index import read_index

    torch.set_num_threads(2)
    t0 = time.perf_counter()
    df = read_index(index)
    train = load_split(df, "train", _spec(), workers=workers)
    load_split(df, "val", _spec(), workers=workers)
    load_s = time.perf_counter() - t0
    return {"load_s": load_s, "rows": len(train), "epoch_batches_s": _epoch_batches_s(train)}


def child_demo(epochs: int) -> dict:
    from prefect import flow

    from fer_spec.profile import RunOverrides
    from flows.pipeline import pipeline_flow

    @flow
    def noop() -> int:
        return 1

    noop()  # the ephemeral Prefect server's start-up is not the store's cost
    t0 = time.perf_counter()
    result = pipeline_flow(profile="demo", overrides=RunOverrides(epochs=epochs))
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "bundle": str(getattr(result.bundle, "bundle_dir", ""))}


CHILDREN = {"ingest": child_ingest, "publish": child_publish, "fetch": child_fetch,
            "decode": lambda index, workers: child_decode(index, int(workers)),
            "demo": lambda epochs: child_demo(int(epochs))}  # fmt: skip


# ------------------------------------------------------------------------------------------------------ parts
def subset(root: Path, dest: Path, limit: int) -> Path:
    """``root/<split>/<class>/`` with the first ``limit`` files of each class folder copied (the bench's data root)."""
    for cls_dir in sorted(d for d in root.glob("*/*") if d.is_dir()):
        out = dest / cls_dir.parent.name / cls_dir.name
        out.mkdir(parents=True, exist_ok=True)
        for f in sorted(cls_dir.iterdir())[:limit]:
            shutil.copyfile(f, out / f.name)
    return dest


def _mb(n: float) -> str:
    return f"{n / 2**20:.1f} MB"


def part_dataset(tmp: Path, endpoint: str, bucket: str, limit: int | None) -> None:
    if not FER2013.is_dir():
        print(f"[dataset] skipped: {FER2013} is absent")
        return
    root = subset(FER2013, tmp / "fer2013", limit) if limit else FER2013
    src_bytes = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    driver = tmp / "driver"
    ing = _child(_env(driver, str(driver / "store"), endpoint), "ingest", str(root), str(driver / "indexes" / "fer"))
    index, sha = ing["index"], ing["sha"]
    s3 = f"s3://{bucket}/store"
    local_pub = _child(_env(driver, str(driver / "store"), endpoint), "publish", index, sha)
    s3_pub = _child(_env(driver, s3, endpoint), "publish", index, sha)
    node = tmp / "node-a"
    cold = _child(_env(node, s3, endpoint), "fetch", sha)
    cached = _child(_env(node, s3, endpoint), "fetch", sha)
    local = _child(_env(tmp / "node-b", str(driver / "store"), endpoint), "fetch", sha)
    dec1 = _child(_env(driver, str(driver / "store"), endpoint), "decode", index, "1")
    dec2 = _child(_env(driver, str(driver / "store"), endpoint), "decode", index, "2")
    rows = cold["rows"]
    print(f"[dataset] FER2013 {'first ' + str(limit) + ' per class/split' if limit else 'full'}: "
          f"{rows} train rows; source JPEGs {_mb(src_bytes)}; ingest {ing['ingest_s']:.1f} s")  # fmt: skip
    ratio = s3_pub["bytes"] / src_bytes
    print(f"[dataset] artifact {_mb(s3_pub['bytes'])} in {s3_pub['files']} files = {ratio:.2f}x the JPEGs "
          "(uint8 48x48 + index + manifest)")  # fmt: skip
    print(f"[dataset] publish: local store {local_pub['publish_s']:.1f} s, S3 {s3_pub['publish_s']:.1f} s "
          f"(S3/local {s3_pub['publish_s'] / local_pub['publish_s']:.2f}x; S3 publish / ingest "
          f"{s3_pub['publish_s'] / ing['ingest_s']:.2f}x)")  # fmt: skip
    print(f"[dataset] unit load of train+val: cold S3 fetch {cold['load_s']:.2f} s, cached {cached['load_s']:.2f} s "
          f"(cold/cached {cold['load_s'] / cached['load_s']:.1f}x), local store {local['load_s']:.2f} s; decoding "
          f"the files: 1 thread {dec1['load_s']:.2f} s, 2 threads {dec2['load_s']:.2f} s")  # fmt: skip
    print(f"[dataset]   decode(1 thread) / cached = {dec1['load_s'] / cached['load_s']:.1f}x; "
          f"decode(2 threads) / cold S3 = {dec2['load_s'] / cold['load_s']:.1f}x")  # fmt: skip
    # Batch assembly is the same code on both paths (ArrayDataset.get_batch): its fastest run stands for all, so
    # the machine's load during one child does not pass for a difference between the paths.
    batches = min(r["epoch_batches_s"] for r in (cold, cached, dec1, dec2))
    epoch = {k: r["load_s"] + batches for k, r in (("cached", cached), ("cold", cold), ("dec1", dec1), ("dec2", dec2))}
    print(f"[dataset] one teacher epoch's data time (split loads + one epoch of {TEACHER_BATCH}-batches, "
          f"{batches:.2f} s): packed cache {epoch['cached']:.2f} s, cold S3 {epoch['cold']:.2f} s, decoded files "
          f"{epoch['dec1']:.2f} s (1 thread) / {epoch['dec2']:.2f} s (2 threads); decoded/packed-cache = "
          f"{epoch['dec1'] / epoch['cached']:.2f}x / {epoch['dec2'] / epoch['cached']:.2f}x")  # fmt: skip


def part_demo(tmp: Path, endpoint: str, bucket: str, epochs: int) -> None:
    local = _child(_env(tmp / "demo-local", str(tmp / "demo-local" / "store"), endpoint), "demo", str(epochs))
    s3 = _child(_env(tmp / "demo-s3", f"s3://{bucket}/demo", endpoint), "demo", str(epochs))
    print(f"[demo] pipeline, demo profile at {epochs} epochs: store on local disk {local['wall_s']:.1f} s, on moto S3 "
          f"{s3['wall_s']:.1f} s; S3/local = {s3['wall_s'] / local['wall_s']:.2f}x (target <= 1.15x)")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="--limit 40 and --demo-epochs 2 unless given")
    ap.add_argument("--limit", type=int, default=None, help="files per class and split folder (default: all)")
    ap.add_argument("--parts", default="dataset,demo")
    ap.add_argument("--demo-epochs", type=int, default=None, help="epochs of every demo unit (default 6)")
    ap.add_argument("--child", nargs="+")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(CHILDREN[args.child[0]](*args.child[1:])))
        return
    limit = args.limit if args.limit is not None else (40 if args.quick else None)
    epochs = args.demo_epochs or (2 if args.quick else 6)
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench",
                 aws_secret_access_key="bench").create_bucket(Bucket="bench")  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix="bench_store_"))
    try:
        parts = args.parts.split(",")
        if "dataset" in parts:
            part_dataset(tmp, endpoint, "bench", limit)
        if "demo" in parts:
            part_demo(tmp, endpoint, "bench", epochs)
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
