"""A logits file whose ferflow metadata lacks a field is refused naming the file and the field, never a KeyError."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from fer_core.errors import DataIntegrityError
from fer_core.logits.store import META_KEY, read_logits, write_logits


def _with_meta(tmp_path, meta: bytes):
    src = tmp_path / "l.parquet"
    write_logits(src, ["a", "b"], np.zeros((2, 2), np.float32), ["happy", "sad"], "sha:1")
    table = pq.read_table(src)
    path = tmp_path / "edited.parquet"
    pq.write_table(table.replace_schema_metadata({META_KEY: meta}), path)
    return path


def _meta(tmp_path, **drop_or_set) -> dict:
    src = tmp_path / "m.parquet"
    write_logits(src, ["a"], np.zeros((1, 2), np.float32), ["happy", "sad"], "sha:1")
    meta = json.loads(pq.read_table(src).schema.metadata[META_KEY])
    for k, v in drop_or_set.items():
        meta.pop(k) if v is None else meta.__setitem__(k, v)
    return meta


@pytest.mark.parametrize(("change", "named"), [({"classes": None}, "lacks ['classes']"),
                                               ({"model_id": None}, "lacks ['model_id']"),
                                               ({"classes": "happy"}, "not a list of class names")])  # fmt: skip
def test_metadata_gaps_are_named(tmp_path, change, named):
    path = _with_meta(tmp_path, json.dumps(_meta(tmp_path, **change)).encode())
    with pytest.raises(DataIntegrityError, match=r"edited.parquet: its 'ferflow.logits' metadata") as info:
        read_logits(path)
    assert named in str(info.value) and "re-export" in str(info.value)


def test_metadata_that_is_not_json(tmp_path):
    with pytest.raises(DataIntegrityError, match="metadata is not JSON"):
        read_logits(_with_meta(tmp_path, b"{oops"))


def test_intact_metadata_still_reads(tmp_path):
    table = read_logits(_with_meta(tmp_path, json.dumps(_meta(tmp_path)).encode()))
    assert table.classes == ("happy", "sad") and table.ids == ("a", "b")
