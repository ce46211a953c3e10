"""Logits store: round trip, metadata, refusal at write time, and join-by-id alignment errors."""

import numpy as np
import pyarrow.parquet as pq
import pytest

from fer_core.errors import DataIntegrityError
from fer_core.io import sha256_file
from fer_core.logits import align_logits, read_logits, stack_aligned, write_logits
from fer_core.taxonomy import FER_CLASSES

C = len(FER_CLASSES)


@pytest.fixture
def stored(tmp_path):
    rng = np.random.default_rng(0)
    ids = [f"id{i:03d}" for i in range(20)]
    z = rng.normal(size=(20, C)).astype(np.float32)
    path = tmp_path / "t.parquet"
    digest = write_logits(path, ids, z, FER_CLASSES, "sha256:abc", {"split": "val", "seed": 1})
    return path, ids, z, digest


def test_round_trip_keeps_values_ids_classes_identity(stored):
    path, ids, z, digest = stored
    assert digest == sha256_file(path)
    t = read_logits(path)
    assert t.ids == tuple(ids) and t.classes == FER_CLASSES and t.model_id == "sha256:abc"
    assert t.meta == {"split": "val", "seed": 1}
    np.testing.assert_array_equal(t.logits, z)
    md = pq.read_schema(path).metadata
    assert b"ferflow.logits" in md and b"sha256:abc" in md[b"ferflow.logits"]
    assert list(path.parent.iterdir()) == [path]  # no temp file left behind


def test_shuffled_request_joins_by_id(stored):
    path, ids, z, _ = stored
    order = np.random.default_rng(1).permutation(len(ids))
    got = align_logits(read_logits(path), [ids[i] for i in order])
    np.testing.assert_array_equal(got, z[order])


def test_missing_rows_named_with_counts(stored):
    path, ids, _, _ = stored
    with pytest.raises(DataIntegrityError, match=r"2 of 22 samples have no logits.*'ghost1'") as e:
        align_logits(read_logits(path), [*ids, "ghost1", "ghost2"])
    assert len(e.value.problems) == 2


def test_extra_rows_refused_unless_allowed(stored):
    path, ids, z, _ = stored
    table = read_logits(path)
    with pytest.raises(DataIntegrityError, match=r"5 logit rows are for samples not requested"):
        align_logits(table, ids[:15])
    np.testing.assert_array_equal(align_logits(table, ids[5:10], allow_extra=True), z[5:10])


def test_other_class_order_names_both(tmp_path):
    other = tuple(reversed(FER_CLASSES))
    write_logits(tmp_path / "r.parquet", ["a", "b"], np.zeros((2, C)), other, "m")
    with pytest.raises(DataIntegrityError, match=r"class order \['surprise'.*expected \['angry'"):
        align_logits(read_logits(tmp_path / "r.parquet"), ["a", "b"])


def test_nan_refused_at_write_and_at_align(tmp_path, stored):
    z = np.zeros((3, C))
    z[1, 2] = np.nan
    z[2, 0] = np.inf
    with pytest.raises(DataIntegrityError, match=r"2 rows hold NaN/Inf.*'b', 'c'"):
        write_logits(tmp_path / "n.parquet", ["a", "b", "c"], z, FER_CLASSES, "m")
    assert not (tmp_path / "n.parquet").exists()
    # a file produced elsewhere may still hold NaN: the consumer stops with counts and example ids
    path, ids, _, _ = stored
    t = read_logits(path)
    bad = t.logits.copy()
    bad[[3, 7]] = np.nan
    t2 = type(t)(ids=t.ids, logits=bad, classes=t.classes, model_id=t.model_id, path=str(path))
    with pytest.raises(DataIntegrityError, match=r"2 requested rows hold NaN/Inf.*'id003', 'id007'"):
        align_logits(t2, ids)


def test_duplicate_ids_and_shape_refused(tmp_path):
    with pytest.raises(DataIntegrityError, match=r"1 duplicate sample ids.*'a'"):
        write_logits(tmp_path / "d.parquet", ["a", "b", "a"], np.zeros((3, C)), FER_CLASSES, "m")
    with pytest.raises(DataIntegrityError, match=r"shape \[N, 7\]"):
        write_logits(tmp_path / "d.parquet", ["a"], np.zeros((1, 5)), FER_CLASSES, "m")
    with pytest.raises(DataIntegrityError, match="model_id"):
        write_logits(tmp_path / "d.parquet", ["a"], np.zeros((1, C)), FER_CLASSES, " ")
    assert not (tmp_path / "d.parquet").exists()


def test_foreign_parquet_refused(tmp_path):
    import pandas as pd

    pd.DataFrame({"sample_id": ["a"], "x": [1.0]}).to_parquet(tmp_path / "f.parquet")
    with pytest.raises(DataIntegrityError, match="write it with write_logits"):
        read_logits(tmp_path / "f.parquet")


def test_stack_aligned_two_teachers_different_file_orders(tmp_path):
    ids = ["a", "b", "c"]
    z = np.arange(3 * C, dtype=np.float32).reshape(3, C)
    write_logits(tmp_path / "1.parquet", ids, z, FER_CLASSES, "t1")
    write_logits(tmp_path / "2.parquet", ids[::-1], -z[::-1], FER_CLASSES, "t2")
    out = stack_aligned([read_logits(tmp_path / "1.parquet"), read_logits(tmp_path / "2.parquet")], ids)
    assert out.shape == (2, 3, C)
    np.testing.assert_array_equal(out[1], -out[0])
