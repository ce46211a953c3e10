"""Index-backed dataset: order, fail-loud loading, the preprocessing parity guarantee, vectorised augmentation."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from fer_core.data.dataset import ArrayDataset, TrainAugment, expected_sample_id, load_split
from fer_core.data.schema import INDEX_COLUMNS
from fer_core.data.synth import render_face
from fer_core.errors import DataIntegrityError
from fer_core.preprocess import ClaheSpec, PreprocessSpec, crop_face, preprocess_face
from fer_core.taxonomy import CLASS_TO_INDEX, FER_CLASSES


def _row(path, data, label, split, bbox=None):
    return dict(sample_id=expected_sample_id(data, bbox), image_path=str(path), label=label, split=split,
                source="synth", group_id="g", origin="original", parent_id=None, width=0, height=0, dhash=0,
                bbox=bbox, flags="")  # fmt: skip


@pytest.fixture()
def index(tmp_path) -> pd.DataFrame:
    rows = []
    for i, label in enumerate(FER_CLASSES * 2):
        img = render_face(label, np.random.default_rng(i), 40)
        if i % 3 == 0:  # some colour files, as real sources have
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        data = cv2.imencode(".png" if i % 2 else ".jpg", img)[1].tobytes()
        path = tmp_path / f"{i}.{'png' if i % 2 else 'jpg'}"
        path.write_bytes(data)
        rows.append(_row(path, data, label, "val" if i % 4 == 3 else "train"))
    big = cv2.copyMakeBorder(render_face("fear", np.random.default_rng(99), 40), 10, 14, 6, 30, cv2.BORDER_REPLICATE)
    data = cv2.imencode(".png", big)[1].tobytes()
    (tmp_path / "photo.png").write_bytes(data)
    rows.append(_row(tmp_path / "photo.png", data, "fear", "train", bbox=[8, 12, 36, 34]))  # face box of a photo
    return pd.DataFrame(rows, columns=list(INDEX_COLUMNS))


def test_loads_split_in_index_order(index):
    ds = load_split(index, "train", PreprocessSpec(size=(32, 32)))
    train = index[index["split"] == "train"]
    assert ds.sample_ids == train["sample_id"].tolist()
    assert ds.labels.tolist() == [CLASS_TO_INDEX[c] for c in train["label"]]
    assert ds.pixels.shape == (len(train), 1, 32, 32) and ds.pixels.dtype == torch.uint8
    threaded = load_split(index, "train", PreprocessSpec(size=(32, 32)), workers=3)
    assert torch.equal(threaded.pixels, ds.pixels)


@pytest.mark.parametrize(
    "spec",
    [
        PreprocessSpec(size=(32, 32)),
        PreprocessSpec(size=(24, 24), clahe=ClaheSpec(), resize_interpolation="linear", crop_margin=0.1),
        PreprocessSpec(size=(28, 28), channels=3, color="rgb", mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3)),
    ],
)
def test_eval_path_equals_preprocess_face_exactly(index, spec):
    ds = load_split(index, "train", spec)
    train = index[index["split"] == "train"].reset_index(drop=True)
    x, y = ds.get_batch(np.arange(len(train)), train=False)
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    for i, row in train.iterrows():
        img = cv2.imdecode(np.fromfile(row["image_path"], np.uint8), cv2.IMREAD_UNCHANGED)
        crop = crop_face(img, row["bbox"], spec.crop_margin) if row["bbox"] is not None else img
        want = preprocess_face(crop, spec)
        assert np.array_equal(x[i].numpy(), want), f"row {i} ({row['image_path']}) differs from preprocess_face"


def test_every_bad_file_is_named(index, tmp_path):
    bad = index.copy()
    bad.loc[0, "image_path"] = str(tmp_path / "missing.png")
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    bad.loc[1, "image_path"], bad.loc[1, "sample_id"] = str(corrupt), expected_sample_id(corrupt.read_bytes(), None)
    bad.loc[2, "sample_id"] = "0" * 64  # file changed since indexing
    bad.loc[4, "label"] = "joy"
    with pytest.raises(DataIntegrityError) as e:
        load_split(bad, "train", PreprocessSpec(size=(32, 32)))
    where = {w: r for w, r in e.value.problems}
    assert len(where) == 4
    assert "cannot read" in where[f"row 0 {tmp_path / 'missing.png'}"]
    assert "cannot decode" in where[f"row 1 {corrupt}"]
    assert "index says 0000" in where[f"row 2 {bad.loc[2, 'image_path']}"]
    assert "unknown label 'joy'" in where[f"row 4 {bad.loc[4, 'image_path']}"]
    assert "missing.png" in str(e.value) and "corrupt.png" in str(e.value)
    ds = load_split(bad.drop(index=[0, 1, 4]), "train", PreprocessSpec(size=(32, 32)), verify_hash=False)
    assert len(ds) == (index["split"] == "train").sum() - 3


def test_missing_split_is_an_error(index):
    with pytest.raises(DataIntegrityError, match="no row with split='test'"):
        load_split(index, "test", PreprocessSpec())


def _batch(n=6, size=16, seed=0) -> ArrayDataset:
    rng = np.random.default_rng(seed)
    px = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
    return ArrayDataset(px, np.zeros(n, np.int64), [str(i) for i in range(n)], PreprocessSpec(size=(size, size)))


def test_default_augment_is_flip_and_shift_and_deterministic():
    ds = _batch()
    assert ds.train_augment == TrainAugment(flip=True, shift=0.125)
    a = ds.augment(ds.pixels, np.random.default_rng(3))
    b = ds.augment(ds.pixels, np.random.default_rng(3))
    assert torch.equal(a, b) and a.dtype == torch.uint8 and a.shape == ds.pixels.shape
    flip_only = ArrayDataset(ds.pixels[:, 0].numpy(), ds.labels, ds.sample_ids, ds.spec, TrainAugment(shift=0))
    out = flip_only.augment(ds.pixels, np.random.default_rng(0))
    for o, x in zip(out, ds.pixels, strict=True):
        assert torch.equal(o, x) or torch.equal(o, x.flip(-1))


def test_affine_with_tiny_ranges_is_identity_and_erase_changes_a_rectangle():
    ds = _batch()
    px = ds.pixels[:, 0].numpy()
    ident = ArrayDataset(px, ds.labels, ds.sample_ids, ds.spec, TrainAugment(flip=False, shift=0, rotate_deg=1e-6))
    assert torch.equal(ident.augment(ds.pixels, np.random.default_rng(0)), ds.pixels)
    rot = ArrayDataset(px, ds.labels, ds.sample_ids, ds.spec, TrainAugment(flip=False, rotate_deg=30, scale=0.2))
    assert not torch.equal(rot.augment(ds.pixels, np.random.default_rng(0)), ds.pixels)
    erase = ArrayDataset(px, ds.labels, ds.sample_ids, ds.spec, TrainAugment(flip=False, shift=0, erase_p=1.0))
    changed = erase.augment(ds.pixels, np.random.default_rng(1)) != ds.pixels
    for m in changed[:, 0]:
        ys, xs = torch.nonzero(m, as_tuple=True)
        assert len(ys) > 0
        box = m[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        assert box.float().mean() > 0.9  # one rectangle (noise may repeat a few original values)


def test_jitter_moves_brightness_and_batch_is_normalised():
    ds = _batch(n=32)
    px = ds.pixels[:, 0].numpy()
    jit = ArrayDataset(px, ds.labels, ds.sample_ids, ds.spec, TrainAugment(flip=False, shift=0, jitter=0.3))
    out = jit.augment(ds.pixels, np.random.default_rng(0)).float().mean(dim=(1, 2, 3))
    assert (out - ds.pixels.float().mean(dim=(1, 2, 3))).abs().max() > 10
    x, _ = jit.get_batch(np.arange(4), train=True, rng=np.random.default_rng(0))
    assert x.dtype == torch.float32 and x.min() >= -1.0 and x.max() <= 1.0
