"""The dataset index (contract 3.1): Parquet + ``<index>.manifest.json``, written atomically and verified on read."""

from __future__ import annotations

import datetime as dt
import os
import stat as stat_mod
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import fer_core
from fer_core.data.schema import INDEX_COLUMNS, INDEX_SCHEMA, MANIFEST_SUFFIX, ORIGINS, SPLITS
from fer_core.data.validate import DEFAULT_MAX_PIXELS, cache_key, inspect_many, write_cache
from fer_core.errors import DataIntegrityError, IntegrityMismatchError, printable
from fer_core.io import atomic_path, atomic_write_json, read_json, sha256_file
from fer_core.taxonomy import FER_CLASSES

CACHE_SUFFIX = ".vcache.parquet"


def manifest_path(index_path: str | Path) -> Path:
    return Path(str(index_path) + MANIFEST_SUFFIX)


def cache_path(index_path: str | Path) -> Path:
    return Path(str(index_path) + CACHE_SUFFIX)


def counts(index: pd.DataFrame) -> dict[str, dict[str, int]]:
    """``{label: {split: count}}`` over every class and split (zeros included)."""
    c = index.groupby(["label", "split"]).size()
    return {lab: {s: int(c.get((lab, s), 0)) for s in SPLITS} for lab in FER_CLASSES}


def check_index_frame(index: pd.DataFrame) -> None:
    """Refuse a frame that breaks contract 3.1 (columns, labels, splits, origins, unique ``sample_id``, paths).

    Raises:
        DataIntegrityError: with one problem per offending row (``sample_id``) or column.
    """
    missing = [c for c in INDEX_COLUMNS if c not in index.columns]
    if missing:
        raise DataIntegrityError(f"index frame lacks columns {missing}", [("columns", f"missing {c}") for c in missing])
    problems = []
    for col, allowed in (("label", FER_CLASSES), ("split", SPLITS), ("origin", ORIGINS)):
        for sid, v in index.loc[~index[col].isin(allowed), ["sample_id", col]].itertuples(index=False):
            problems.append((sid, f"{col} {v!r} not in {list(allowed)}"))
    for sid in index.loc[index["sample_id"].duplicated(), "sample_id"]:
        problems.append((sid, "duplicate sample_id"))
    for sid, p in index.loc[~index["image_path"].map(os.path.isabs), ["sample_id", "image_path"]].itertuples(False):
        problems.append((sid, f"image_path {p!r} is not absolute"))
    if problems:
        raise DataIntegrityError("index frame breaks contract 3.1", problems)


def write_index(index: pd.DataFrame, path: str | Path, roots: list[str]) -> dict:
    """Write the index Parquet and its manifest atomically (the manifest last: an index without one is refused).

    Args:
        index: rows with :data:`INDEX_COLUMNS` (checked by :func:`check_index_frame`).
        path: destination ``.parquet``.
        roots: the declared data roots.

    Returns:
        The manifest dict.
    """
    check_index_frame(index)
    frame = index[list(INDEX_COLUMNS)].sort_values(["split", "label", "image_path"], kind="stable")
    frame = frame.assign(bbox=[None if b is None else [int(v) for v in b] for b in frame["bbox"]])
    # column by column: pandas conversion turns a null fixed-size list into an unreadable empty one
    arrays = [
        pa.array(frame[f.name].astype(object).where(frame[f.name].notna(), None).tolist(), type=f.type)
        if f.name in ("parent_id",)
        else pa.array(frame[f.name].tolist(), type=f.type)
        for f in INDEX_SCHEMA
    ]
    table = pa.Table.from_arrays(arrays, schema=INDEX_SCHEMA)
    path = Path(path)
    with atomic_path(path) as tmp:
        # without the stored Arrow schema: pyarrow cannot read back a null fixed-size list (bbox) otherwise;
        # read_index casts to INDEX_SCHEMA
        pq.write_table(table, tmp, store_schema=False)
        digest = sha256_file(tmp)
    manifest = {
        "index_file": path.name, "index_sha256": digest, "rows": len(frame), "counts": counts(frame),
        "roots": sorted(str(Path(r).resolve()) for r in roots), "tool": "ferflow",
        "tool_version": fer_core.__version__, "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }  # fmt: skip
    atomic_write_json(manifest_path(path), manifest)
    return manifest


def read_index(path: str | Path, verify: bool = True) -> pd.DataFrame:
    """Read an index; with ``verify``, refuse it unless its manifest matches (file hash, row and class/split counts).

    Raises:
        DataIntegrityError: the index file is missing or is not an index Parquet file.
        IntegrityMismatchError: the manifest is missing or unreadable, or its hash, row count or class/split counts
            differ (both values named).
    """
    path = Path(path)
    if not path.is_file():
        raise DataIntegrityError(f"index {printable(path)} does not exist or is not a file; run the ingest flow to "
                                 "create it", [(printable(path), "not found")])  # fmt: skip
    manifest: dict = {}
    mpath = manifest_path(path)
    if verify:
        manifest = _read_manifest(path, mpath)
        digest = sha256_file(path)
        if digest != manifest.get("index_sha256"):
            raise IntegrityMismatchError(
                f"index {printable(path)} does not match its manifest: sha256 {digest} != "
                f"{manifest.get('index_sha256')}; the index was modified after ingest: re-run ingest",
                [(printable(path), "sha256 differs from manifest")],
            )
    try:
        df = pq.read_table(path).cast(INDEX_SCHEMA).to_pandas()
    except (pa.ArrowException, ValueError, KeyError) as e:
        raise DataIntegrityError(f"{printable(path)} is not a ferflow index Parquet file ({type(e).__name__}: "
                                 f"{str(e)[:200]}); give the index.parquet the ingest wrote",
                                 [(printable(path), "not an index")]) from e  # fmt: skip
    df["bbox"] = [None if b is None else [int(v) for v in b] for b in df["bbox"]]
    if verify and manifest.get("rows") != len(df):
        raise IntegrityMismatchError(f"index {printable(path)} has {len(df)} rows but its manifest {printable(mpath)} "
                                     f"says {manifest.get('rows')!r}; re-run ingest (never hand-edit a manifest)",
                                     [(printable(mpath), "rows differ from the index")])  # fmt: skip
    if verify and counts(df) != manifest.get("counts"):
        raise IntegrityMismatchError(f"index {printable(path)}: class/split counts differ from manifest "
                                     f"{printable(mpath)}; re-run ingest",
                                     [(printable(path), "counts differ from manifest")])  # fmt: skip
    return df


def _read_manifest(path: Path, mpath: Path) -> dict:
    if not mpath.is_file():
        raise IntegrityMismatchError(f"index {printable(path)} has no manifest {printable(mpath)}; re-run ingest "
                                     "(never hand-edit an index)",
                                     [(printable(mpath), "manifest missing")])  # fmt: skip
    try:
        manifest = read_json(mpath)
    except (ValueError, UnicodeDecodeError) as e:
        raise IntegrityMismatchError(f"manifest {printable(mpath)} is not valid JSON ({e}); re-run ingest",
                                     [(printable(mpath), "unreadable manifest")]) from e  # fmt: skip
    if not isinstance(manifest, dict) or not isinstance(manifest.get("roots"), list):
        raise IntegrityMismatchError(f"manifest {printable(mpath)} lacks the index fields (index_sha256, counts, "
                                     "roots); re-run ingest",
                                     [(printable(mpath), "not an index manifest")])  # fmt: skip
    return manifest


def revalidate_index(path: str | Path, *, workers: int | None = None, min_side: int = 32,
                     max_pixels: int = DEFAULT_MAX_PIXELS) -> list[tuple[str, str]]:  # fmt: skip
    """Re-check every file of a verified index; unchanged files (size + mtime_ns as cached) are only ``lstat``-ed.

    Checks: the path is still inside a declared root, is not now a symlink leading out, exists, and (when changed)
    still decodes to the same ``sample_id``. The warm cache beside the index is refreshed.

    Returns:
        ``(image_path, reason)`` problems (paths escaped with ``printable``); empty when the index still matches its
        files.

    Raises:
        DataIntegrityError, IntegrityMismatchError: see :func:`read_index`.
    """
    path = Path(path)
    index = read_index(path, verify=True)
    roots = [r.rstrip(os.sep) + os.sep for r in _read_manifest(path, manifest_path(path))["roots"]]
    cpath = cache_path(path)
    cache = _read_cache(cpath)
    known = dict(zip(cache["key"].tolist(), zip(cache["size"].tolist(), cache["mtime_ns"].tolist(), strict=True),
                     strict=True))  # fmt: skip
    problems: list[tuple[str, str]] = []
    changed: list[int] = []
    paths = index["image_path"].tolist()
    bboxes = index["bbox"].tolist()
    for i, p in enumerate(paths):
        if not p.startswith(tuple(roots)):
            problems.append((p, "outside the declared roots"))
            continue
        try:
            st = os.lstat(p)
        except OSError:
            problems.append((p, "file not found"))
            continue
        if stat_mod.S_ISLNK(st.st_mode) or known.get(cache_key(p, bboxes[i])) != (st.st_size, st.st_mtime_ns):
            changed.append(i)
    if changed:
        problems += _recheck(index, changed, roots, cpath, cache, workers, min_side, max_pixels)
    return [(printable(p), reason) for p, reason in problems]


def _read_cache(cpath: Path) -> pd.DataFrame:
    """The warm cache beside an index; an unreadable one counts as empty (every file is then re-checked)."""
    empty = pd.DataFrame(columns=["key", "size", "mtime_ns"])
    if not cpath.is_file():
        return empty
    try:
        cache = pq.read_table(cpath).to_pandas()
    except (pa.ArrowException, OSError):
        return empty
    return cache if {"key", "size", "mtime_ns"} <= set(cache.columns) else empty


def _recheck(index: pd.DataFrame, rows: list[int], roots: list[str], cpath: Path, cache: pd.DataFrame,
             workers: int | None, min_side: int, max_pixels: int) -> list[tuple[str, str]]:  # fmt: skip
    sub = index.iloc[rows]
    problems = []
    items = []
    escaped = set()
    for p, b in zip(sub["image_path"], sub["bbox"], strict=True):
        real = os.path.realpath(p)
        if not real.startswith(tuple(roots)):
            problems.append((p, f"now a symlink escape to {real}"))
            escaped.add(real)
        items.append((real, b))
    res = inspect_many(items, min_side=min_side, max_pixels=max_pixels, workers=workers)
    fresh = []
    for (p, b), r, sid in zip(items, res, sub["sample_id"], strict=True):
        if p in escaped:
            continue  # refused above whatever it holds; never cached as good
        if r[5]:
            problems.append((p, r[5]))
        elif r[0] != sid:
            problems.append((p, f"content changed: sha256 {r[0][:12]}... != indexed {sid[:12]}..."))
        else:
            fresh.append({"key": cache_key(p, b), "sample_id": r[0], "width": r[1], "height": r[2],
                          "dhash": np.uint64(r[3]), "flags": r[4], "size": r[6], "mtime_ns": r[7],
                          "dhash_v": np.uint64(r[8])})  # fmt: skip
    if fresh:
        merged = pd.concat([cache[~cache["key"].isin([f["key"] for f in fresh])], pd.DataFrame(fresh)])
        write_cache(merged.reset_index(drop=True), cpath)
    return problems
