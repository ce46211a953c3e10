"""Parquet logits store: one row per ``sample_id``, class order and model identity in the schema metadata."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fer_core.errors import DataIntegrityError
from fer_core.io import atomic_path, sha256_file
from fer_core.taxonomy import FER_CLASSES

META_KEY = b"ferflow.logits"
FORMAT_VERSION = 1
ID_COLUMN = "sample_id"
_N_EXAMPLES = 5


def _column(cls: str) -> str:
    return f"logit/{cls}"


@dataclass(frozen=True)
class LogitsTable:
    """Logits read back from the store.

    Attributes:
        ids: sample ids ``[N]`` in file order (unique).
        logits: float32 ``[N, C]``.
        classes: class names in column order.
        model_id: producing model (MLflow model URI or checkpoint SHA-256).
        meta: the ``extra_meta`` given at write time.
        path: the file read.
    """

    ids: tuple[str, ...]
    logits: np.ndarray
    classes: tuple[str, ...]
    model_id: str
    meta: dict[str, Any] = field(default_factory=dict)
    path: str = ""

    def __len__(self) -> int:
        return len(self.ids)


def _examples(items: Sequence[Any]) -> str:
    shown = ", ".join(repr(x) for x in list(items)[:_N_EXAMPLES])
    return shown + (", ..." if len(items) > _N_EXAMPLES else "")


def _duplicates(ids: Sequence[str]) -> list[str]:
    s = pd.Series(list(ids), dtype=object)
    return s[s.duplicated(keep="first")].unique().tolist()


def _nonfinite_rows(logits: np.ndarray) -> np.ndarray:
    return np.flatnonzero(~np.isfinite(logits).all(axis=1))


def _check_write(sample_ids: Sequence[str], arr: np.ndarray, classes: tuple[str, ...], model_id: str, where: str):
    if arr.ndim != 2 or arr.shape[1] != len(classes):
        raise DataIntegrityError(
            f"{where}: logits must have shape [N, {len(classes)}] for classes {list(classes)}, got {arr.shape}"
        )
    if len(sample_ids) != arr.shape[0]:
        raise DataIntegrityError(
            f"{where}: {len(sample_ids)} sample ids for {arr.shape[0]} logit rows; pass one id per row"
        )
    if len(set(classes)) != len(classes) or not classes:
        raise DataIntegrityError(f"{where}: class names must be unique and non-empty, got {list(classes)}")
    if not isinstance(model_id, str) or not model_id.strip():
        raise DataIntegrityError(f"{where}: model_id must name the producing model (MLflow URI or checkpoint SHA-256)")
    bad_ids = [i for i, s in enumerate(sample_ids) if not isinstance(s, str) or not s]
    if bad_ids:
        raise DataIntegrityError(
            f"{where}: {len(bad_ids)} sample ids are not non-empty strings",
            [(f"row {i}", f"sample_id {sample_ids[i]!r}") for i in bad_ids],
        )
    dup = _duplicates(sample_ids)
    if dup:
        raise DataIntegrityError(
            f"{where}: {len(dup)} duplicate sample ids (e.g. {_examples(dup)}); each sample must appear once",
            [(f"sample_id {d!r}", "duplicate") for d in dup],
        )
    bad = _nonfinite_rows(arr)
    if bad.size:
        raise DataIntegrityError(
            f"{where}: {bad.size} rows hold NaN/Inf logits (e.g. ids {_examples([sample_ids[i] for i in bad])}); "
            "fix the producing model or its inputs before storing",
            [(f"sample_id {sample_ids[i]!r}", "non-finite logits") for i in bad],
        )


def write_logits(
    path: str | Path,
    sample_ids: Sequence[str],
    logits: np.ndarray,
    classes: Sequence[str],
    model_id: str,
    extra_meta: dict[str, Any] | None = None,
) -> str:
    """Write logits keyed by sample id to a Parquet file, atomically.

    Args:
        path: destination ``.parquet`` file.
        sample_ids: one unique id per row ``[N]`` (contract 3.1 content hashes).
        logits: ``[N, C]`` raw (pre-softmax) outputs; stored as float32.
        classes: the model's output order ``[C]``.
        model_id: MLflow model URI or checkpoint SHA-256 of the producing model.
        extra_meta: JSON-serialisable extras (split, seed, ...), returned as ``LogitsTable.meta``.

    Returns:
        SHA-256 of the written file.

    Raises:
        DataIntegrityError: wrong shape, duplicate or empty ids, non-finite values, bad classes or model id.
    """
    classes_t = tuple(classes)
    ids = list(sample_ids)
    arr = np.asarray(logits, dtype=np.float64)
    _check_write(ids, arr, classes_t, model_id, where=str(path))
    arr32 = arr.astype(np.float32)
    columns: dict[str, pa.Array] = {ID_COLUMN: pa.array(ids, type=pa.string())}
    for j, c in enumerate(classes_t):
        columns[_column(c)] = pa.array(arr32[:, j], type=pa.float32())
    meta = {"format_version": FORMAT_VERSION, "classes": list(classes_t), "model_id": model_id,
            "n": len(ids), "extra": extra_meta or {}}  # fmt: skip
    table = pa.table(columns).replace_schema_metadata({META_KEY: json.dumps(meta, default=str).encode()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
        digest = sha256_file(tmp)
    return digest


def _read_meta(p: Path, raw: bytes) -> dict[str, Any]:
    """The ferflow metadata of a logits file, with the fields every reader needs (a gap is named, never a KeyError)."""
    key = META_KEY.decode()
    try:
        meta = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise DataIntegrityError(f"{p}: its {key!r} metadata is not JSON ({e}); re-export the logits") from e
    if not isinstance(meta, dict):
        raise DataIntegrityError(f"{p}: its {key!r} metadata is not an object; re-export the logits")
    missing = [k for k in ("classes", "model_id") if k not in meta]
    if missing:
        raise DataIntegrityError(f"{p}: its {key!r} metadata lacks {missing} (the class order and the producing "
                                 "model); re-export the logits with write_logits")  # fmt: skip
    classes = meta["classes"]
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise DataIntegrityError(f"{p}: its {key!r} metadata has classes {classes!r}, not a list of class names; "
                                 "re-export the logits with write_logits")  # fmt: skip
    return meta


def read_logits(path: str | Path) -> LogitsTable:
    """Read a logits file written by :func:`write_logits`.

    Raises:
        DataIntegrityError: the file is missing, has no ferflow metadata, or its columns/ids are inconsistent.
    """
    p = Path(path)
    if not p.is_file():
        raise DataIntegrityError(f"logits file {p} does not exist; export the model's logits first")
    table = pq.read_table(p)
    raw = (table.schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise DataIntegrityError(f"{p} has no {META_KEY.decode()!r} schema metadata; write it with write_logits")
    meta = _read_meta(p, raw)
    classes = tuple(meta["classes"])
    expected = [ID_COLUMN, *(_column(c) for c in classes)]
    if table.column_names != expected:
        raise DataIntegrityError(f"{p}: columns {table.column_names} do not match the metadata's classes {expected}")
    ids = tuple(table.column(ID_COLUMN).to_pylist())
    dup = _duplicates(ids)
    if dup:
        raise DataIntegrityError(f"{p}: {len(dup)} duplicate sample ids (e.g. {_examples(dup)})")
    logits = np.stack([table.column(_column(c)).to_numpy() for c in classes], axis=1).astype(np.float32)
    return LogitsTable(ids=ids, logits=logits.reshape(len(ids), len(classes)), classes=classes,
                       model_id=str(meta["model_id"]), meta=dict(meta.get("extra", {})), path=str(p))  # fmt: skip


def align_logits(
    table: LogitsTable,
    sample_ids: Sequence[str],
    classes: Sequence[str] = FER_CLASSES,
    allow_extra: bool = False,
) -> np.ndarray:
    """Logits for ``sample_ids``, in that order, joined by id (never by position).

    Args:
        table: a :class:`LogitsTable`.
        sample_ids: the ids wanted ``[N]`` (unique), e.g. the validation split of the dataset index.
        classes: the class order the consumer expects; the table must have exactly this order.
        allow_extra: accept table rows whose ids were not asked for (e.g. logits for all splits).

    Returns:
        float32 ``[N, C]``.

    Raises:
        DataIntegrityError: another class order (both named), missing ids, extra ids (unless ``allow_extra``),
            duplicate requested ids, or NaN/Inf among the requested rows (counts and examples).
    """
    src = table.path or f"logits of {table.model_id}"
    if tuple(classes) != tuple(table.classes):
        raise DataIntegrityError(
            f"{src}: class order {list(table.classes)} differs from the expected {list(classes)}; "
            "re-export the logits in the expected order or pass the matching classes"
        )
    wanted = pd.Index(list(sample_ids), dtype=object)
    dup = _duplicates(list(sample_ids))
    if dup:
        raise DataIntegrityError(f"{src}: {len(dup)} requested sample ids are duplicated (e.g. {_examples(dup)})")
    have = pd.Index(list(table.ids), dtype=object)
    pos = have.get_indexer(wanted)
    missing = wanted[pos < 0].tolist()
    if missing:
        raise DataIntegrityError(
            f"{src}: {len(missing)} of {len(wanted)} samples have no logits (e.g. {_examples(missing)}); "
            "re-export logits for the current dataset index",
            [(f"sample_id {m!r}", "missing from the logits file") for m in missing],
        )
    if not allow_extra and len(have) > len(wanted):
        extra = have.difference(wanted).tolist()
        raise DataIntegrityError(
            f"{src}: {len(extra)} logit rows are for samples not requested (e.g. {_examples(extra)}); "
            "the logits come from another index or split; pass allow_extra=True if that is intended",
            [(f"sample_id {e!r}", "not in the requested ids") for e in extra],
        )
    out = table.logits[pos]
    bad = _nonfinite_rows(out)
    if bad.size:
        bad_ids = [wanted[i] for i in bad]
        raise DataIntegrityError(
            f"{src}: {bad.size} requested rows hold NaN/Inf logits (e.g. {_examples(bad_ids)})",
            [(f"sample_id {b!r}", "non-finite logits") for b in bad_ids],
        )
    return out


def stack_aligned(
    tables: Sequence[LogitsTable],
    sample_ids: Sequence[str],
    classes: Sequence[str] = FER_CLASSES,
    allow_extra: bool = False,
) -> np.ndarray:
    """Align several models' logits to the same ids: float32 ``[K, N, C]`` for the ensemble."""
    if not tables:
        raise DataIntegrityError("no logits tables given; pass at least one teacher's logits")
    return np.stack([align_logits(t, sample_ids, classes, allow_extra) for t in tables])
