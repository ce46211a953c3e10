"""The dataset artifact: an ingested index published to the store with its images decoded once and packed.

Layout under the store (``docs/store.md``)::

    datasets/<index sha256>/index.parquet                   the index (contract 3.1)
    datasets/<index sha256>/index.parquet.manifest.json     its manifest
    datasets/<index sha256>/pixels-<spec hash>/pack.json    committed last: per split its row table and shards
    datasets/<index sha256>/pixels-<spec hash>/<split>-000.npy   uint8 [N, H, W, C] (a few shards per split)
    datasets/<index sha256>/pixels-<spec hash>/<split>.rows.parquet  sample_id (= source SHA-256) and label per row

A unit fetches the pack of its preprocessing spec by the index's hash into its node-local cache, verifies every
shard's SHA-256, and never opens the data root; decoded splits are kept once per process.
"""

from __future__ import annotations

import functools
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fer_adapters.store import Store
from fer_core.data.dataset import ArrayDataset, load_split
from fer_core.data.index import manifest_path, read_index
from fer_core.errors import IntegrityMismatchError, MissingUpstreamError
from fer_core.io import sha256_bytes, sha256_json
from fer_core.preprocess import PreprocessSpec

SHARD_BYTES = 32 * 1024 * 1024  # FER2013's train split at 48 px (66 MB) becomes 3 shards


def dataset_prefix(index_sha256: str) -> str:
    """The store prefix of one index's dataset artifact."""
    return f"datasets/{index_sha256}"


def pack_prefix(index_sha256: str, spec: PreprocessSpec) -> str:
    """The store prefix of the index's images packed for one preprocessing spec."""
    return f"{dataset_prefix(index_sha256)}/pixels-{sha256_json(spec.model_dump(mode='json'))[:12]}"


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def _parquet(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), buf)
    return buf.getvalue()


def publish_dataset(index_path: str, index_sha256: str, spec: PreprocessSpec, store: Store | None = None) -> str:
    """Publish the index, its manifest and its decoded images packed for ``spec``; idempotent by content hash.

    Every image is decoded and checked against its ``sample_id`` once, here, on the machine that has the data root.

    Returns:
        The pack's store prefix.

    Raises:
        DataIntegrityError: a file is unreadable or changed since ingest (every one listed).
    """
    store = store or Store.from_env()
    prefix, pack = dataset_prefix(index_sha256), pack_prefix(index_sha256, spec)
    if store.exists(f"{pack}/pack.json"):
        return pack
    index = read_index(index_path)  # verifies the manifest
    store.put_file(f"{prefix}/index.parquet", index_path)
    store.put_file(f"{prefix}/index.parquet.manifest.json", manifest_path(index_path))
    splits: dict[str, dict] = {}
    for split in sorted(index["split"].unique()):
        ds = load_split(index, split, spec)
        pixels = ds.pixels.permute(0, 2, 3, 1).contiguous().numpy()  # [N, H, W, C], what ArrayDataset takes
        per_shard = max(1, SHARD_BYTES // max(1, pixels[0].nbytes))
        shards = []
        for k, start in enumerate(range(0, len(pixels), per_shard)):
            data = _npy(pixels[start : start + per_shard])
            key = store.put_bytes(f"{pack}/{split}-{k:03d}.npy", data)
            shards.append({"key": key, "sha256": sha256_bytes(data), "rows": int(min(per_shard, len(pixels) - start))})
        rows = _parquet(pd.DataFrame({"sample_id": ds.sample_ids, "label": ds.labels}))
        rows_key = store.put_bytes(f"{pack}/{split}.rows.parquet", rows)
        splits[split] = {"rows": len(ds), "shape": list(pixels.shape[1:]), "shards": shards, "rows_key": rows_key,
                         "rows_sha256": sha256_bytes(rows)}  # fmt: skip
    meta = {"index_sha256": index_sha256, "spec": spec.model_dump(mode="json"), "splits": splits}
    store.put_bytes(f"{pack}/pack.json", json.dumps(meta, sort_keys=True, indent=1).encode())  # the commit
    return pack


def _store() -> Store:
    return Store.from_env()


@functools.lru_cache(maxsize=4)
def _index(store_uri: str, index_sha256: str) -> pd.DataFrame:
    store = _store()
    prefix = dataset_prefix(index_sha256)
    if not store.exists(f"{prefix}/index.parquet"):
        raise MissingUpstreamError(
            f"the dataset artifact of index {index_sha256[:12]} is not in the store {store.uri}: run the `ingest` "
            "stage of this profile with this FERFLOW_STORE first"
        )
    path = store.fetch(f"{prefix}/index.parquet", sha256=index_sha256)
    store.fetch(f"{prefix}/index.parquet.manifest.json")  # beside it: read_index verifies the pair
    return read_index(path)


def index_file(index_sha256: str) -> Path:
    """The local, verified copy of the index file (the store's own for a local store)."""
    load_index(index_sha256)
    return Store.from_env().fetch(f"{dataset_prefix(index_sha256)}/index.parquet")


def load_index(index_sha256: str) -> pd.DataFrame:
    """The dataset index with this SHA-256, fetched from the store (verified against its manifest)."""
    return _index(_store().uri, index_sha256)


@functools.lru_cache(maxsize=8)
def _split(store_uri: str, index_sha256: str, split: str, spec_json: str) -> ArrayDataset:
    spec = PreprocessSpec.model_validate_json(spec_json)
    store, pack = _store(), pack_prefix(index_sha256, spec)
    if not store.exists(f"{pack}/pack.json"):
        raise MissingUpstreamError(
            f"index {index_sha256[:12]} has no packed images for this preprocessing in the store {store.uri}: run "
            "the `ingest` stage of this profile (it publishes them) first"
        )
    meta = json.loads(store.get_bytes(f"{pack}/pack.json"))
    if split not in meta["splits"]:
        raise MissingUpstreamError(f"index {index_sha256[:12]} has no {split!r} split; it has {sorted(meta['splits'])}")
    part = meta["splits"][split]
    rows = pd.read_parquet(store.fetch(part["rows_key"], sha256=part["rows_sha256"]))
    pixels = np.concatenate([np.load(store.fetch(s["key"], sha256=s["sha256"]), allow_pickle=False)
                             for s in part["shards"]])  # fmt: skip
    if len(pixels) != len(rows) or len(rows) != part["rows"]:
        raise IntegrityMismatchError(f"pack {pack} split {split!r}: {len(pixels)} images for {len(rows)} rows")
    return ArrayDataset(pixels, rows["label"].to_numpy(np.int64), rows["sample_id"].tolist(), spec)


def dataset(index_sha256: str, split: str, spec: PreprocessSpec) -> ArrayDataset:
    """The decoded split from the store's pack (shards verified by SHA-256; never reads the data root)."""
    return _split(_store().uri, index_sha256, split, spec.model_dump_json())


def model_input(ds: ArrayDataset, img_size: int, in_chans: int) -> ArrayDataset:
    """The split as a model of that input sees it (resized on the fly from the stored pack when they differ): what
    every prediction outside training (logits export, calibration, packaging parity, online teachers) must use.
    Its ``spec`` is the model-input spec a bundle's ``preprocess.json`` declares."""
    if tuple(ds.spec.size) == (img_size, img_size) and ds.spec.channels == in_chans:
        return ds
    return ds.for_input(img_size, in_chans)
