"""Training data: in-memory pixel arrays with vectorised batch assembly (the protocol the engine consumes).

``get_batch`` assembles a whole batch at once (augmentation vectorised in torch), so the engine's data path costs
close to nothing next to the model step.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from fer_core.errors import DataIntegrityError
from fer_core.preprocess import PreprocessSpec


class ArrayDataset:
    """Preprocessed uint8 pixels ``[N, H, W]`` or ``[N, H, W, C]`` with labels and sample ids.

    Args:
        pixels: uint8 images already through :func:`fer_core.preprocess.prepare_pixels`.
        labels: class indices ``[N]``.
        sample_ids: content addresses, one per row (the join key for logits).
        spec: the preprocessing spec (normalisation constants).
    """

    def __init__(self, pixels: np.ndarray, labels: np.ndarray, sample_ids: Sequence[str], spec: PreprocessSpec):
        if not (len(pixels) == len(labels) == len(sample_ids)):
            raise DataIntegrityError(
                f"pixels ({len(pixels)}), labels ({len(labels)}) and sample_ids ({len(sample_ids)}) differ in length"
            )
        if pixels.dtype != np.uint8:
            raise DataIntegrityError(f"pixels must be uint8, got {pixels.dtype}")
        self.spec = spec
        px = pixels if pixels.ndim == 4 else pixels[..., None]
        self._pixels = torch.from_numpy(np.ascontiguousarray(px.transpose(0, 3, 1, 2)))  # [N, C, H, W] uint8
        self.labels = np.asarray(labels, dtype=np.int64)
        self.sample_ids = list(sample_ids)
        self._mean = torch.tensor(spec.mean, dtype=torch.float32).view(1, -1, 1, 1)
        self._std = torch.tensor(spec.std, dtype=torch.float32).view(1, -1, 1, 1)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def pixels(self) -> torch.Tensor:
        """uint8 ``[N, C, H, W]``."""
        return self._pixels

    def normalize(self, x_uint8: torch.Tensor) -> torch.Tensor:
        """uint8 ``[B, C, H, W]`` → float32 normalised exactly as :func:`fer_core.preprocess.normalize`."""
        x = x_uint8.to(torch.float32) * np.float32(self.spec.scale)
        return (x - self._mean) / self._std

    def augment(self, x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """Random horizontal flip and shift (up to 1/8 of the side, reflect padding) on a uint8 batch."""
        b, _, h, w = x.shape
        flip = torch.from_numpy(rng.random(b) < 0.5)
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
        pad = max(1, h // 8)
        xp = torch.nn.functional.pad(x.float(), (pad, pad, pad, pad), mode="reflect")
        dy, dx = rng.integers(0, 2 * pad + 1, size=(2, b))
        rows = (torch.arange(h).view(1, h) + torch.from_numpy(dy).view(b, 1)).view(b, 1, h, 1)
        cols = (torch.arange(w).view(1, w) + torch.from_numpy(dx).view(b, 1)).view(b, 1, 1, w)
        bidx = torch.arange(b).view(b, 1, 1, 1)
        cidx = torch.arange(x.shape[1]).view(1, -1, 1, 1)
        return xp[bidx, cidx, rows, cols].to(torch.uint8)

    def get_batch(
        self, indices: np.ndarray, train: bool = False, rng: np.random.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Assemble a batch.

        Args:
            indices: row positions ``[B]``.
            train: apply training augmentation.
            rng: random source for augmentation (required when ``train``).

        Returns:
            ``x`` float32 ``[B, C, H, W]`` and ``y`` int64 ``[B]``.
        """
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        x = self._pixels.index_select(0, idx)
        if train:
            x = self.augment(x, rng if rng is not None else np.random.default_rng())
        return self.normalize(x), torch.from_numpy(self.labels[np.asarray(indices, dtype=np.int64)])
