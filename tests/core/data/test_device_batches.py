"""The device batch builder (run here with device=cpu): parity with the host reference policy, its distribution where
values cannot match (erasing noise, on-device resize), seeded reproducibility, model-input views and placement."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from fer_core.data.dataset import ArrayDataset, TrainAugment
from fer_core.errors import ConfigError
from fer_core.preprocess import PreprocessSpec

CPU_REFERENCE = TrainAugment(flip=True, shift=0.1, rotate_deg=10.0, scale=0.1, erase_p=0.25)  # fer2013_cpu.yaml


def _faces(n: int = 48, size: int = 24, seed: int = 0, aug: TrainAugment | None = None,
           interp: str = "area") -> ArrayDataset:  # fmt: skip
    """Smooth gradients plus noise: flips, shifts and warps all move pixels visibly."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 200, size)[None, :] + np.linspace(0, 40, size)[:, None]
    px = (ramp[None] + rng.integers(0, 50, (n, size, size))).clip(0, 255).astype(np.uint8)
    spec = PreprocessSpec(size=(size, size), resize_interpolation=interp)
    return ArrayDataset(px, np.arange(n) % 7, [f"f{i}" for i in range(n)], spec, aug)


def _reference(ds: ArrayDataset, idx: np.ndarray, seed: int) -> torch.Tensor:
    """Today's host path: gather, host augmentation, normalisation."""
    return ds.normalize(ds.augment(ds.pixels[torch.as_tensor(idx)], np.random.default_rng(seed)))


@pytest.mark.parametrize(
    "aug",
    [
        TrainAugment(),
        TrainAugment(shift=0),
        TrainAugment(flip=False, shift=0.2),
        TrainAugment(shift_px=4, shift_pad="replicate"),
        TrainAugment(jitter=0.3),
        TrainAugment(rotate_deg=15, scale=0.2, shift=0.1),
        TrainAugment(flip=False, shift=0, scale=0.1, jitter=0.2),
    ],
)
def test_device_path_equals_the_host_reference_bit_for_bit_without_erasing(aug):
    ds = _faces(aug=aug)
    idx = np.array([3, 0, 7, 7, 41, 12, 5, 30])
    x, y = ds.get_batch(idx, train=True, rng=np.random.default_rng(11))
    assert torch.equal(x, _reference(ds, idx, 11))
    assert y.tolist() == (idx % 7).tolist() and x.dtype == torch.float32


def _moments(batches: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    stack = torch.cat(batches)
    return stack.mean(0), stack.std(0)


def test_erasing_policy_has_the_host_reference_distribution():
    ds = _faces(n=8, aug=CPU_REFERENCE)
    idx = np.tile(np.arange(8), 32)
    dev = [ds.get_batch(idx, train=True, rng=np.random.default_rng(s))[0] for s in range(12)]
    ref = [_reference(ds, idx, s) for s in range(12)]
    (m_dev, s_dev), (m_ref, s_ref) = _moments(dev), _moments(ref)
    # per-pixel mean and spread over ~3000 draws agree (both sit in [-1, 1]); a different policy would not
    assert (m_dev - m_ref).abs().mean() < 0.02 and (s_dev - s_ref).abs().mean() < 0.02
    hist_dev = torch.histc(torch.cat(dev), 16, -1, 1) / torch.cat(dev).numel()
    hist_ref = torch.histc(torch.cat(ref), 16, -1, 1) / torch.cat(ref).numel()
    assert (hist_dev - hist_ref).abs().sum() < 0.02
    # the erased share (uniform noise replaces pixels) is the same: count pixels far from every source value
    no_erase = ds.with_augment(CPU_REFERENCE.model_copy(update={"erase_p": 0.0}))
    plain = torch.cat([no_erase.get_batch(idx, train=True, rng=np.random.default_rng(s))[0] for s in range(12)])
    changed_dev = (torch.cat(dev) != plain).float().mean()
    assert 0.02 < changed_dev < 0.05  # p 0.25 x mean area 11 % (noise matching a value keeps a few pixels)


def test_a_batch_is_a_pure_function_of_the_seed():
    ds = _faces(aug=CPU_REFERENCE)
    idx = np.arange(16)
    a, _ = ds.get_batch(idx, train=True, rng=np.random.default_rng([4, 2, 1]))
    b, _ = ds.get_batch(idx, train=True, rng=np.random.default_rng([4, 2, 1]))
    c, _ = ds.get_batch(idx, train=True, rng=np.random.default_rng([4, 3, 1]))
    assert torch.equal(a, b) and not torch.equal(a, c)
    ev, _ = ds.get_batch(idx)
    assert torch.equal(ev, ds.normalize(ds.pixels[:16]))  # evaluation: no randomness at all


def test_on_device_resize_matches_resizing_at_load_in_distribution():
    """Stored at 24 px, fed at 48 px: the same faces as a dataset decoded at 48 px (cv2 cubic, today's path)."""
    small = _faces(n=16, aug=CPU_REFERENCE.model_copy(update={"erase_p": 0.0}), interp="cubic")
    big_px = np.stack([cv2.resize(p, (48, 48), interpolation=cv2.INTER_CUBIC) for p in small.pixels[:, 0].numpy()])
    big = ArrayDataset(big_px, small.labels, small.sample_ids, PreprocessSpec(size=(48, 48)), small.train_augment)
    view = small.for_input(48)
    ev, _ = view.get_batch(np.arange(16))
    assert ev.shape == (16, 1, 48, 48) and view.spec.resize_interpolation == "cubic"
    level = 1 / 255 / 0.5
    assert (ev - big.get_batch(np.arange(16))[0]).abs().max() <= level + 1e-6  # torch vs cv2 cubic: rounding only
    idx = np.tile(np.arange(16), 16)
    dev = torch.cat([view.get_batch(idx, train=True, rng=np.random.default_rng(s))[0] for s in range(8)])
    ref = torch.cat([_reference(big, idx, s) for s in range(8)])
    assert (dev.mean(0) - ref.mean(0)).abs().mean() < 0.03 and (dev.std(0) - ref.std(0)).abs().mean() < 0.03


def test_for_input_replicates_grey_and_declares_the_model_input():
    ds = _faces(n=4)
    view = ds.for_input(32, channels=3)
    x, _ = view.get_batch(np.arange(4), train=True, rng=np.random.default_rng(0))
    assert x.shape == (4, 3, 32, 32) and torch.equal(x[:, 0], x[:, 2])
    assert view.spec.size == (32, 32) and view.spec.channels == 3 and view.spec.color == "rgb"
    assert view.spec.mean == (0.5,) * 3 and view.stored_spec == ds.spec and view.pixels is ds.pixels
    imagenet = ds.for_input(24, 3, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    e, _ = imagenet.get_batch(np.arange(4))
    want = (ds.pixels[:4].float() / 255 - 0.485) / 0.229
    assert torch.allclose(e[:, 0:1], want, atol=1e-6)
    rgb = ArrayDataset(np.zeros((2, 8, 8, 3), np.uint8), np.zeros(2), ["a", "b"], PreprocessSpec(
        size=(8, 8), channels=3, color="rgb", mean=(0.5,) * 3, std=(0.5,) * 3))  # fmt: skip
    with pytest.raises(ConfigError, match="channel"):
        rgb.for_input(8, channels=1)


def test_to_cpu_is_the_same_dataset_and_views_share_pixels():
    ds = _faces(n=4)
    assert ds.to("cpu") is ds and ds.device == torch.device("cpu")
    view = ds.with_augment(TrainAugment(flip=False)).for_input(16)
    assert view.pixels.data_ptr() == ds.pixels.data_ptr() and view.to("cpu") is view
