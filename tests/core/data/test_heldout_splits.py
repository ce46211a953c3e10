"""The held-out split stays the source's own originals; duplicates are dropped from train; copies follow the policy."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from fer_core.data.augment import AugmentConfig
from fer_core.data.index import read_index
from fer_core.data.ingest import IngestConfig, collect_records, group_step, run_ingest, validate_step
from fer_core.data.splits import assign_splits, check_held_out_originals
from fer_core.errors import DataIntegrityError

from ._ingest_util import cfg, face, write_img

CLASSES = ("happy", "sad", "disgust")


def _tree(root: Path, n_train: int = 8, copies: int = 3, copied: int = 4) -> dict[str, list[str]]:
    """train/ and validation/ (= test) with planted copies and planted train duplicates of held-out faces.

    Returns:
        Names of the planted files by role.
    """
    seed = iter(range(1000, 9000))
    held_out: list[str] = []
    for cls in CLASSES:
        for i in range(n_train):
            write_img(root / "train" / cls / f"{cls}{i}.png", face(next(seed)))
        for i in range(3):
            write_img(root / "validation" / cls / f"v{cls}{i}.png", face(next(seed)))
            held_out.append(f"v{cls}{i}.png")
    for i in range(copied):  # third-party copies of train disgust faces: blurred, named <orig><N>.png
        img = cv2.imread(str(root / "train" / "disgust" / f"disgust{i}.png"), cv2.IMREAD_GRAYSCALE)
        for n in range(copies):
            write_img(root / "train" / "disgust" / f"disgust{i}.png{n}.png", cv2.GaussianBlur(img, (3, 3), 0.5 + n))
    vt = cv2.imread(str(root / "validation" / "disgust" / "vdisgust0.png"), cv2.IMREAD_GRAYSCALE)
    for n in range(2):  # copies of a held-out face: never in test
        write_img(root / "validation" / "disgust" / f"vdisgust0.png{n}.png", cv2.GaussianBlur(vt, (3, 3), 1.0 + n))
    # planted train duplicates of held-out faces: same bytes (same label / other label) and a near-duplicate
    v_happy = (root / "validation" / "happy" / "vhappy0.png").read_bytes()
    (root / "train" / "happy" / "dup_same.png").write_bytes(v_happy)
    v_happy1 = (root / "validation" / "happy" / "vhappy1.png").read_bytes()
    (root / "train" / "sad" / "dup_conflict.png").write_bytes(v_happy1)  # same pixels, another label
    near = cv2.imread(str(root / "validation" / "sad" / "vsad0.png"), cv2.IMREAD_GRAYSCALE).astype(np.int16)
    near[0, 0] += 3
    write_img(root / "train" / "sad" / "near_dup.png", near.clip(0, 255).astype(np.uint8))
    return {"held_out": held_out, "dups": ["dup_same.png", "dup_conflict.png", "near_dup.png"]}


def _ingest(tmp_path: Path, **kw) -> tuple[pd.DataFrame, dict]:
    res = run_ingest(cfg(tmp_path / "d", tmp_path / f"out-{len(list(tmp_path.iterdir()))}", **kw))
    idx = read_index(res.index_path)
    idx["name"] = idx["image_path"].map(lambda p: Path(p).name)
    return idx, res.report["findings"]


def test_test_split_is_exactly_the_held_out_originals(tmp_path):
    planted = _tree(tmp_path / "d")
    idx, f = _ingest(tmp_path, val_fraction=0.25, derived_copies="keep")
    test = idx[idx["split"] == "test"]
    assert sorted(test["name"]) == sorted(planted["held_out"])  # no copies, nothing moved in, nothing lost
    assert (test["origin"] == "original").all()
    assert not set(planted["dups"]) & set(idx["name"])  # dropped from train, not moved
    assert f["duplicates_of_held_out_dropped"] == {"exact": {"train": 2}, "near": {"train": 1}}
    assert not {"vdisgust0.png0.png", "vdisgust0.png1.png"} & set(idx["name"])
    assert f["test_composition"] == {"held-out originals (test hint)": 9,
                                     "originals assigned by fractions (no hint)": 0, "derived rows": 0}  # fmt: skip
    assert f["leakage_prevented"] == 1  # the near duplicate (exact ones are dropped at dedup, before splits)
    assert (idx[idx["split"] == "val"]["origin"] == "original").all() and (idx["split"] == "val").any()
    assert idx.groupby("group_id")["split"].nunique().max() == 1


@pytest.mark.parametrize(("policy", "kept"), [("keep", 3), ("one_per_original", 1), ("drop", 0)])
def test_derived_copies_policy_in_train(tmp_path, policy, kept):
    _tree(tmp_path / "d", copies=3, copied=4)
    idx, f = _ingest(tmp_path, val_fraction=0.0, derived_copies=policy)
    train_copies = idx[(idx["split"] == "train") & (idx["origin"] == "augmented")]
    assert len(train_copies) == 4 * kept
    assert train_copies.groupby("parent_id").size().eq(kept).all() if kept else True
    assert f["derived_copies"] == {
        "policy": policy, "found": 14, "dropped_from_held_out_splits": 2,
        "dropped_from_train_by_policy": 12 - 4 * kept, "kept_in_train": 4 * kept,
    }  # fmt: skip


def test_validation_carved_by_group_keeps_originals_only(tmp_path):
    _tree(tmp_path / "d", n_train=10, copies=2, copied=10)
    idx, f = _ingest(tmp_path, val_fraction=0.4, derived_copies="keep")
    val, train = idx[idx["split"] == "val"], idx[idx["split"] == "train"]
    assert (val["origin"] == "original").all() and len(val) > 0
    val_disgust = int((val["label"] == "disgust").sum())
    assert val_disgust > 0  # some copied disgust originals went to val: their copies were dropped, not kept
    assert f["derived_copies"]["dropped_from_held_out_splits"] == 2 + 2 * val_disgust
    assert len(train[train["origin"] == "augmented"]) == 2 * (10 - val_disgust)
    assert not set(val["group_id"]) & set(train["group_id"])


def test_one_per_original_does_not_depend_on_row_order(tmp_path):
    _tree(tmp_path / "d")
    c = IngestConfig(**{**cfg(tmp_path / "d", tmp_path / "o").model_dump(), "val_fraction": 0.0})
    recs = group_step(validate_step(collect_records(c.sources), c), c.near_dup_hamming)
    kept = []
    for frame in (recs, recs.sample(frac=1.0, random_state=3)):
        out, _ = assign_splits(frame, val_fraction=0.0, derived_copies="one_per_original", seed=5)
        kept.append(set(out.loc[(out["status"] == "ok") & (out["origin"] == "augmented"), "image_path"]))
    assert kept[0] == kept[1] and len(kept[0]) == 4


def test_held_out_splits_refuse_derived_rows(tmp_path):
    with pytest.raises(ValueError, match="originals only"):
        cfg(tmp_path, tmp_path / "o", augment=AugmentConfig(splits=("train", "val")))
    index = pd.DataFrame({"split": ["train", "val"], "origin": ["augmented", "augmented"],
                          "image_path": ["/a.png", "/b.png"]})  # fmt: skip
    with pytest.raises(DataIntegrityError, match="1 derived row") as e:
        check_held_out_originals(index)
    assert e.value.problems == [("/b.png", "origin=augmented in split val")]
