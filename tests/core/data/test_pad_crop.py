"""Integer pad-and-crop shifts (reflect or replicate border): hand-checked crops, no resampling, config refusals."""

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from fer_core.data.dataset import ArrayDataset, TrainAugment, _shift, pad_index, shift_pad_px
from fer_core.preprocess import PreprocessSpec


class FixedOffsets:
    """An rng stand-in whose integer draws are given offsets ``[2, B]`` (rows, cols) into the padded image."""

    def __init__(self, offsets):
        self.offsets = np.asarray(offsets)

    def integers(self, low, high, size):
        assert (low, high) == (0, 3) and size == self.offsets.shape  # pad 1: offsets in [0, 2]
        return self.offsets


IMG = torch.tensor([[1, 2, 3], [4, 5, 6]], dtype=torch.uint8).view(1, 1, 2, 3)


def test_replicate_and_reflect_crops_by_hand():
    # offset (0, 0) with pad 1 is a shift down-right by one: the top row and left column repeat the edge
    assert _shift(IMG, 1, FixedOffsets([[0], [0]]), "replicate")[0, 0].tolist() == [[1, 1, 2], [1, 1, 2]]
    # reflect mirrors without repeating the edge: row -1 is row 1, column -1 is column 1
    assert _shift(IMG, 1, FixedOffsets([[0], [0]]), "reflect")[0, 0].tolist() == [[5, 4, 5], [2, 1, 2]]
    # offset (2, 2) shifts up-left; offset (1, 1) is the identity
    assert _shift(IMG, 1, FixedOffsets([[2], [2]]), "replicate")[0, 0].tolist() == [[5, 6, 6], [5, 6, 6]]
    assert torch.equal(_shift(IMG, 1, FixedOffsets([[1], [1]]), "replicate"), IMG)


@pytest.mark.parametrize(("mode", "np_mode"), [("replicate", "edge"), ("reflect", "reflect")])
def test_batch_matches_numpy_pad_then_crop(mode, np_mode):
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.integers(0, 256, (5, 1, 12, 12), dtype=np.uint8))
    out = _shift(x, 4, np.random.default_rng(7), mode)
    dy, dx = np.random.default_rng(7).integers(0, 9, size=(2, 5))
    for i in range(5):
        padded = np.pad(x[i, 0].numpy(), 4, mode=np_mode)
        assert np.array_equal(out[i, 0].numpy(), padded[dy[i] : dy[i] + 12, dx[i] : dx[i] + 12])


def test_dataset_augment_uses_shift_px_and_replicate_without_new_values():
    rng = np.random.default_rng(1)
    px = rng.integers(0, 256, (6, 16, 16), dtype=np.uint8)
    aug = TrainAugment(flip=False, shift_px=4, shift_pad="replicate")
    ds = ArrayDataset(px, np.arange(6) % 7, [f"s{i}" for i in range(6)], PreprocessSpec(size=(16, 16)), aug)
    batch = torch.from_numpy(px[:, None])
    out = ds.augment(batch, np.random.default_rng(3))
    assert torch.equal(out, _shift(batch, 4, np.random.default_rng(3), "replicate"))
    for i in range(6):  # integer shifts copy pixels: every output value is one of the image's own
        assert set(out[i].flatten().tolist()) <= set(px[i].flatten().tolist())


def test_pad_size_rule_and_refusals():
    assert shift_pad_px(TrainAugment(), 48) == 6  # default shift 0.125 of 48 px
    assert shift_pad_px(TrainAugment(shift_px=4), 48) == 4
    assert shift_pad_px(TrainAugment(shift=0.0), 48) == 0
    assert shift_pad_px(TrainAugment(rotate_deg=10.0), 48) == 0  # the warp shifts
    with pytest.raises(ValidationError, match="not both"):
        TrainAugment(shift=0.1, shift_px=4)
    with pytest.raises(ValidationError, match="pad-and-crop"):
        TrainAugment(shift_px=4, rotate_deg=10.0)
    # what a dump of TrainAugment(shift_px=4) holds validates again (the sweep's trials rebuild their config so)
    again = TrainAugment.model_validate(TrainAugment(shift_px=4).model_dump())
    assert again == TrainAugment(shift_px=4) and shift_pad_px(again, 48) == 4
    with pytest.raises(ValidationError, match="'reflect' or 'replicate'"):
        TrainAugment(shift_pad="zeros")
    assert pad_index(torch.tensor([-2, -1, 0, 3, 4]), 4, "replicate").tolist() == [0, 0, 0, 3, 3]
    assert pad_index(torch.tensor([-2, -1, 0, 3, 4]), 4, "reflect").tolist() == [2, 1, 0, 3, 2]


def test_get_batch_device_path_equals_the_host_reference_for_replicate_pad_crop():
    px = np.random.default_rng(1).integers(0, 256, (6, 16, 16), dtype=np.uint8)
    aug = TrainAugment(flip=True, shift_px=4, shift_pad="replicate")
    ds = ArrayDataset(px, np.arange(6) % 7, [f"s{i}" for i in range(6)], PreprocessSpec(size=(16, 16)), aug)
    x, _ = ds.get_batch(np.arange(6), train=True, rng=np.random.default_rng(3))
    assert torch.equal(x, ds.normalize(ds.augment(torch.from_numpy(px[:, None]), np.random.default_rng(3))))
