"""Predictions outside training see the model's input: a pack stored at 24 px feeds a 32 px model at 32 px."""

import numpy as np

from fer_adapters.datasets import model_input
from fer_core.data.dataset import ArrayDataset
from fer_core.preprocess import PreprocessSpec

SPEC = PreprocessSpec(size=(24, 24), channels=1, color="gray", mean=(0.5,), std=(0.5,))


def _ds() -> ArrayDataset:
    rng = np.random.default_rng(0)
    return ArrayDataset(rng.integers(0, 256, (5, 24, 24), dtype=np.uint8), np.arange(5) % 7,
                        [f"id{i}" for i in range(5)], SPEC)  # fmt: skip


def test_same_size_is_the_dataset_itself():
    ds = _ds()
    assert model_input(ds, 24, 1) is ds


def test_another_size_is_resized_and_declares_the_model_input():
    view = model_input(_ds(), 32, 1)
    x, _ = view.get_batch(np.arange(3))
    assert tuple(x.shape) == (3, 1, 32, 32)
    assert tuple(view.spec.size) == (32, 32)  # what the bundle's preprocess.json must say
