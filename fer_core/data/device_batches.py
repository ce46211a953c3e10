"""Batches built where the pixels live (CPU or CUDA): index, flip, shift or warp, resize, jitter, erase, normalise.

The dataset stays packed as uint8 ``[N, C, h, w]`` at its stored (preprocess) size on its device; a batch is gathered
and augmented there and leaves as float32 ``[B, C_in, H, W]`` at the model's input size. The random parameters of a
batch (a few numbers per image) are drawn on the host from the caller's ``numpy.random.Generator`` in the same order
as :meth:`fer_core.data.dataset.ArrayDataset.augment` (the host reference of the policy), so a seed gives the same
flips, shifts and warps on any device; only erasing noise comes from a torch generator on the device, seeded from the
same stream. Without erasing and resizing, a batch equals the host reference bit for bit (tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from fer_core.data.dataset import TrainAugment, erase_boxes, pad_index, shift_pad_px
from fer_core.errors import ConfigError
from fer_core.preprocess import PreprocessSpec

_MODES = {"area": "area", "linear": "bilinear", "cubic": "bicubic"}


@dataclass(frozen=True)
class AugmentDraw:
    """One batch's random augmentation parameters (host arrays, ``B`` rows each; unused parts are None).

    Attributes:
        flip: horizontal flip per image ``[B]`` bool.
        shift: integer offsets ``[2, B]`` (rows, cols) into the reflect-padded image, in ``[0, 2 * pad]``.
        pad: the integer shift's padding (stored pixels).
        pad_mode: how the integer shift fills the border (``TrainAugment.shift_pad``).
        theta: affine matrices ``[B, 2, 3]`` (rotation, zoom, shift; applied to the flipped image).
        jitter: contrast and brightness ``[2, B]``.
        erase: rectangles ``[5, B]`` (top, left, height, width, on), at the output size.
        noise_seed: seed of the erasing noise.
    """

    flip: np.ndarray | None = None
    shift: np.ndarray | None = None
    pad: int = 0
    pad_mode: str = "reflect"
    theta: np.ndarray | None = None
    jitter: np.ndarray | None = None
    erase: np.ndarray | None = None
    noise_seed: int = 0


def draw_augment(cfg: TrainAugment, b: int, stored_hw: tuple[int, int], out_hw: tuple[int, int],
                 rng: np.random.Generator) -> AugmentDraw:  # fmt: skip
    """Draw a batch's parameters in the host reference's order (flip, warp or shift, jitter, erase).

    Args:
        cfg: the policy.
        b: images in the batch.
        stored_hw: the stored image size (shift offsets are whole stored pixels).
        out_hw: the output size (erasing rectangles are drawn there).
        rng: the run's augmentation stream.
    """
    flip = rng.random(b) < 0.5 if cfg.flip else None
    shift, pad, theta = None, 0, None
    if cfg.rotate_deg > 0 or cfg.scale > 0:
        ang = np.deg2rad(rng.uniform(-cfg.rotate_deg, cfg.rotate_deg, b))
        zoom = rng.uniform(1 - cfg.scale, 1 + cfg.scale, b)
        t = rng.uniform(-cfg.shift, cfg.shift, (b, 2)) * 2  # normalised coordinates span 2
        cos, sin = np.cos(ang) / zoom, np.sin(ang) / zoom
        theta = np.stack([np.stack([cos, -sin, t[:, 0]], 1), np.stack([sin, cos, t[:, 1]], 1)], 1)
    elif (pad := shift_pad_px(cfg, stored_hw[0])) > 0:
        shift = rng.integers(0, 2 * pad + 1, size=(2, b))
    jitter = None
    if cfg.jitter > 0:
        c = rng.uniform(1 - cfg.jitter, 1 + cfg.jitter, b)
        jitter = np.stack([c, rng.uniform(-255 * cfg.jitter, 255 * cfg.jitter, b)])
    erase, seed = None, 0
    if cfg.erase_p > 0:
        erase = np.stack(erase_boxes(rng, b, *out_hw, cfg.erase_p))
        seed = int(rng.integers(0, 2**62))
    return AugmentDraw(flip, shift, pad, cfg.shift_pad, theta, jitter, erase, seed)


def upload(a: np.ndarray, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """A small host array on ``device``; through pinned memory on CUDA so the copy does not block the host."""
    t = torch.from_numpy(np.ascontiguousarray(a)).to(dtype)
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t


class DeviceBatcher:
    """Builds training and evaluation batches from uint8 pixels on their device.

    Args:
        pixels: uint8 ``[N, C, h, w]`` (on the device batches are built on).
        labels: int64 ``[N]`` on the same device.
        spec: the model-input spec: ``size`` (H, W), ``channels`` (C, or 3 from stored grey), ``mean``/``std``,
            ``scale`` and ``resize_interpolation`` (used when H, W differ from the stored size).

    Raises:
        ConfigError: the spec asks for channels the stored pixels cannot give (only grey → 3 is replicated).
    """

    def __init__(self, pixels: torch.Tensor, labels: torch.Tensor, spec: PreprocessSpec):
        c = pixels.shape[1]
        if spec.channels != c and not (c == 1 and spec.channels == 3):
            raise ConfigError(f"stored pixels have {c} channel(s) but the model input asks for {spec.channels}; only "
                              "grey (1) can be replicated to 3: change in_chans or preprocess channels")  # fmt: skip
        self.pixels, self.labels, self.spec = pixels, labels, spec
        self.device = pixels.device
        self.stored_hw = (int(pixels.shape[2]), int(pixels.shape[3]))
        self.out_hw = (int(spec.size[0]), int(spec.size[1]))
        self.resize = self.stored_hw != self.out_hw
        self.mean = torch.tensor(spec.mean, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self.std = torch.tensor(spec.std, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)

    def build(self, indices: np.ndarray, augment: TrainAugment | None = None,
              rng: np.random.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """``x`` float32 ``[B, C_in, H, W]`` and ``y`` int64 ``[B]``, both on the device.

        Args:
            indices: row positions ``[B]`` (host).
            augment: the training policy, or None for the evaluation path (resize and normalise only).
            rng: the augmentation stream (required with ``augment``).
        """
        idx = upload(np.asarray(indices, dtype=np.int64), self.device, torch.int64)
        y = self.labels.index_select(0, idx)
        if augment is None:
            x = self.pixels.index_select(0, idx)
            return self._normalize(self._resize(x) if self.resize else x), y
        if rng is None:
            raise ValueError("a training batch needs the run's rng")
        d = draw_augment(augment, len(idx), self.stored_hw, self.out_hw, rng)
        if d.theta is not None:
            x = self._warp(idx, d)
        elif d.flip is not None or d.shift is not None:
            x = self._gather(idx, d)
        else:
            x = self.pixels.index_select(0, idx)
        if d.theta is None and self.resize:
            x = self._resize(x)
        if d.jitter is not None:
            x = self._jitter(x.float(), d.jitter)
        if d.erase is not None:
            x = self._erase(x.float(), d)
        return self._normalize(x), y

    def _normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (or a float batch of ``build``'s, rounded to whole levels first, in place) ``[B, C, H, W]`` →
        float32 as :func:`fer_core.preprocess.normalize` computes it (grey is broadcast to 3 channels here)."""
        if x.dtype == torch.uint8:
            x = x.to(torch.float32)
        else:  # a float batch made inside build (ours to change in place): whole levels, as uint8 would hold
            x = x.round_().clamp_(0, 255)
        # the reference's formula, in place where the shape allows: same values, fewer passes over a 224 px batch
        return x.mul_(np.float32(self.spec.scale)).sub(self.mean).div_(self.std)

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        mode = _MODES[self.spec.resize_interpolation]
        kw = {} if mode == "area" else {"align_corners": False}
        return F.interpolate(x.float(), size=self.out_hw, mode=mode, **kw)

    def _gather(self, idx: torch.Tensor, d: AugmentDraw) -> torch.Tensor:
        """Index, flip and integer shift in one gather from the whole dataset (uint8, stored size)."""
        _, c, h, w = self.pixels.shape
        b, dev = len(idx), self.device
        rows, cols = torch.arange(h, device=dev).expand(b, h), torch.arange(w, device=dev).expand(b, w)
        if d.shift is not None:
            off = upload(d.shift - d.pad, dev, torch.int64)
            rows = pad_index(rows + off[0].view(b, 1), h, d.pad_mode)
            cols = pad_index(cols + off[1].view(b, 1), w, d.pad_mode)
        if d.flip is not None:
            cols = torch.where(upload(d.flip, dev, torch.bool).view(b, 1), w - 1 - cols, cols)
        plane = (idx.view(b, 1) * c + torch.arange(c, device=dev).view(1, c)) * h  # [B, C]
        flat = ((plane.view(b, c, 1) + rows.view(b, 1, h)) * w).view(b, c, h, 1) + cols.view(b, 1, 1, w)
        return self.pixels.reshape(-1).take(flat)

    def _warp(self, idx: torch.Tensor, d: AugmentDraw) -> torch.Tensor:
        """Rotation, zoom and shift, and the resize to the output size, as one ``grid_sample`` (float) of the
        gathered and flipped images (flipping the stored-size input, not the warp, keeps the host reference's
        rounding exactly)."""
        x = (self._gather(idx, d) if d.flip is not None else self.pixels.index_select(0, idx)).float()
        grid = F.affine_grid(upload(d.theta, self.device, torch.float32), [len(idx), x.shape[1], *self.out_hw],
                             align_corners=False)  # fmt: skip
        mode = "bicubic" if self.resize and self.spec.resize_interpolation == "cubic" else "bilinear"
        return F.grid_sample(x, grid, mode=mode, padding_mode="reflection", align_corners=False)

    def _jitter(self, x: torch.Tensor, jitter: np.ndarray) -> torch.Tensor:
        b = x.shape[0]
        cb = upload(jitter.astype(np.float32), self.device, torch.float32)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return (x - mean) * cb[0].view(b, 1, 1, 1) + mean + cb[1].view(b, 1, 1, 1)

    def _erase(self, x: torch.Tensor, d: AugmentDraw) -> torch.Tensor:
        b, _, h, w = x.shape
        y0, x0, eh, ew, on = upload(d.erase, self.device, torch.int64).view(5, b, 1, 1)
        ys, xs = torch.arange(h, device=self.device).view(1, h, 1), torch.arange(w, device=self.device).view(1, 1, w)
        inside = (ys >= y0) & (ys < y0 + eh) & (xs >= x0) & (xs < x0 + ew) & (on > 0)
        gen = torch.Generator(device=self.device).manual_seed(d.noise_seed)
        noise = torch.randint(0, 256, x.shape, generator=gen, device=self.device, dtype=torch.uint8)
        return torch.where(inside.unsqueeze(1), noise, x)
