"""Training data: packed uint8 pixels with batches built on their device (the protocol the engine consumes).

``get_batch`` builds a whole batch where the pixels live (:mod:`fer_core.data.device_batches`; CPU or CUDA, the same
code): index, augmentation, resize to the model's input size, normalisation. :func:`load_split` builds a dataset from
the index, decoding every image of a split once at the preprocess size; its eval path at that size equals
:func:`fer_core.preprocess.preprocess_face` on the same crop, bit for bit. :meth:`ArrayDataset.augment` is the host
reference of the augmentation policy (tests and benchmarks compare the device path with it).
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from fer_core.config import FrozenModel
from fer_core.errors import ConfigError, DataIntegrityError
from fer_core.preprocess import PreprocessSpec, crop_face, prepare_pixels
from fer_core.taxonomy import CLASS_TO_INDEX, FER_CLASSES


class TrainAugment(FrozenModel):
    """Training-time augmentation of a uint8 batch, vectorised in torch (the default is flip + shift).

    Attributes:
        flip: random horizontal flip (p = 0.5).
        shift: largest translation as a fraction of the side (integer pixels, at least 1, when no rotation/zoom).
        shift_px: largest integer translation in pixels instead of ``shift`` ("pad N + random crop": pad the image
            by N pixels and crop a random window of the original size; no resampling); not with rotate/zoom. Beside
            it ``shift`` is unused and must stay at its default (which a dumped config carries) or 0.
        shift_pad: how the integer shift fills the border: ``"reflect"`` (mirror, edge not repeated) or
            ``"replicate"`` (the edge pixel repeated).
        rotate_deg: largest rotation in degrees (0 = none).
        scale: largest zoom change, factor in ``[1 - scale, 1 + scale]`` (0 = none).
        erase_p: probability of random erasing (a 2-20 % rectangle filled with noise).
        jitter: brightness (± ``jitter``·255) and contrast (×[1 − ``jitter``, 1 + ``jitter``]) strength (0 = none).
    """

    flip: bool = True
    shift: float = Field(0.125, ge=0, lt=0.5)
    rotate_deg: float = Field(0.0, ge=0, le=45)
    scale: float = Field(0.0, ge=0, lt=0.5)
    erase_p: float = Field(0.0, ge=0, le=1)
    jitter: float = Field(0.0, ge=0, lt=1)
    shift_px: int | None = Field(None, ge=1, le=32)
    shift_pad: Literal["reflect", "replicate"] = "reflect"

    @model_validator(mode="after")
    def _one_shift(self) -> TrainAugment:
        if self.shift_px is None:
            return self
        if self.rotate_deg > 0 or self.scale > 0:
            raise ConfigError(f"shift_px={self.shift_px} is an integer pad-and-crop; rotate_deg/scale warp "
                              "bilinearly, shifted by `shift` (a fraction); drop shift_px or rotate/scale")  # fmt: skip
        # A dumped config (into a Tune trial, a Prefect parameter, a result file) carries the default shift beside
        # shift_px, so it must validate again: only another shift is a second, conflicting translation.
        if self.set_off_default("shift") and self.shift > 0:
            raise ConfigError(f"give shift ({self.shift}, a fraction) or shift_px ({self.shift_px} px), not both")
        return self


def shift_pad_px(cfg: TrainAugment, side: int) -> int:
    """The integer shift's padding in pixels for images ``side`` pixels high (0: no integer shift).

    ``shift_px`` when set, else ``max(1, int(side · shift))`` (0 when ``shift`` is 0 or a warp does the shift).
    """
    if cfg.rotate_deg > 0 or cfg.scale > 0:
        return 0
    if cfg.shift_px is not None:
        return cfg.shift_px
    return max(1, int(side * cfg.shift)) if cfg.shift > 0 else 0


def pad_index(i: torch.Tensor, n: int, mode: str) -> torch.Tensor:
    """Source indices in ``[0, n)`` of padded positions ``i`` (``-n < i < 2n - 1``) for a ``reflect`` or
    ``replicate`` border, as ``F.pad`` fills it."""
    if mode == "replicate":
        return i.clamp(0, n - 1)
    i = i.abs()
    return torch.where(i >= n, 2 * (n - 1) - i, i)


class ArrayDataset:
    """Preprocessed uint8 pixels ``[N, H, W]`` or ``[N, H, W, C]`` with labels and sample ids.

    The pixels are held packed (uint8 ``[N, C, h, w]``, the preprocess size) on :attr:`device`; :meth:`to` moves
    them (once per device, shared by every view) and :meth:`for_input` sets the model's input size and channels, to
    which each batch is resized on the device.

    Args:
        pixels: uint8 images already through :func:`fer_core.preprocess.prepare_pixels`.
        labels: class indices ``[N]``.
        sample_ids: content addresses, one per row (the join key for logits).
        spec: the preprocessing spec the pixels were made with (normalisation constants, stored size).
        train_augment: the training augmentation policy (default: flip + shift).
        device: where the pixels live and batches are built (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
    """

    def __init__(
        self,
        pixels: np.ndarray,
        labels: np.ndarray,
        sample_ids: Sequence[str],
        spec: PreprocessSpec,
        train_augment: TrainAugment | None = None,
        device: str | torch.device = "cpu",
    ):
        if not (len(pixels) == len(labels) == len(sample_ids)):
            raise DataIntegrityError(
                f"pixels ({len(pixels)}), labels ({len(labels)}) and sample_ids ({len(sample_ids)}) differ in length"
            )
        if pixels.dtype != np.uint8:
            raise DataIntegrityError(f"pixels must be uint8, got {pixels.dtype}")
        self.stored_spec = self.spec = spec
        self.train_augment = train_augment or TrainAugment()
        px = pixels if pixels.ndim == 4 else pixels[..., None]
        self.labels = np.asarray(labels, dtype=np.int64)
        self.sample_ids = list(sample_ids)
        host = torch.from_numpy(np.ascontiguousarray(px.transpose(0, 3, 1, 2)))  # [N, C, H, W] uint8
        # One copy per device, shared by every view (with_augment, for_input, to): a unit moving to CUDA uploads once.
        self._copies: dict[str, tuple[torch.Tensor, torch.Tensor]] = {"cpu": (host, torch.tensor(self.labels))}
        self._mean = torch.tensor(spec.mean, dtype=torch.float32).view(1, -1, 1, 1)
        self._std = torch.tensor(spec.std, dtype=torch.float32).view(1, -1, 1, 1)
        self._place(torch.device(device))

    def _place(self, device: torch.device) -> None:
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        key = str(device)
        if key not in self._copies:
            host_px, host_y = self._copies["cpu"]
            self._copies[key] = (host_px.to(device), host_y.to(device))
        self._pixels, labels_dev = self._copies[key]
        self._batcher = _batcher(self._pixels, labels_dev, self.spec)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def pixels(self) -> torch.Tensor:
        """uint8 ``[N, C, h, w]`` at the stored size, on :attr:`device`."""
        return self._pixels

    @property
    def device(self) -> torch.device:
        """Where the pixels live and batches are built."""
        return self._pixels.device

    def with_augment(self, train_augment: TrainAugment) -> ArrayDataset:
        """The same rows (pixels shared, not copied) with another training augmentation."""
        view = copy.copy(self)
        view.train_augment = train_augment
        return view

    def to(self, device: str | torch.device) -> ArrayDataset:
        """The same rows with the pixels on ``device`` (uploaded once per device, then shared); self if there."""
        dev = torch.device(device)
        if dev.type == self.device.type and (dev.index is None or dev.index == self.device.index):
            return self
        view = copy.copy(self)
        view._place(dev)
        return view

    def for_input(self, size: int | tuple[int, int], channels: int | None = None,
                  mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> ArrayDataset:  # fmt: skip
        """The same rows feeding a model of another input size or channel count: each batch is resized on the
        device from the stored size with the spec's ``resize_interpolation`` (after the geometric augmentation, before
        jitter and erasing), and grey is replicated to 3 channels. :attr:`spec` becomes the model-input spec (what a
        bundle's ``preprocess.json`` declares); :attr:`stored_spec` keeps the stored one.

        Args:
            size: the model's input side (or ``(H, W)``).
            channels: the model's input channels (default: as stored; 3 from grey replicates it).
            mean: per-channel means of the input (default: the stored ones, repeated for replicated grey).
            std: per-channel standard deviations (same default).

        Raises:
            ConfigError: channels that the stored pixels cannot give, or mean/std of the wrong length.
        """
        hw = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        base = self.stored_spec
        ch = channels or base.channels
        rep = ch // base.channels if ch % base.channels == 0 else 1
        update = {"size": hw, "channels": ch, "color": "gray" if ch == 1 else "rgb",
                  "mean": tuple(mean) if mean is not None else tuple(base.mean) * rep,
                  "std": tuple(std) if std is not None else tuple(base.std) * rep}  # fmt: skip
        try:
            spec = PreprocessSpec.model_validate(base.model_dump() | update)
        except (ConfigError, ValueError) as e:
            raise ConfigError(
                f"model input {hw} x {ch} channel(s) from stored {base.size} x {base.channels}: {e}"
            ) from e
        view = copy.copy(self)
        view.spec = spec
        view._batcher = _batcher(self._pixels, self._batcher.labels, spec)
        return view

    def normalize(self, x_uint8: torch.Tensor) -> torch.Tensor:
        """uint8 ``[B, C, H, W]`` → float32 normalised exactly as :func:`fer_core.preprocess.normalize`."""
        x = x_uint8.to(torch.float32) * np.float32(self.spec.scale)
        return (x - self._mean) / self._std

    def augment(self, x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """Random training augmentation of a uint8 ``[B, C, H, W]`` CPU batch as configured by ``train_augment``.

        The host reference of the policy (``get_batch`` runs its device version, which draws the same parameters).
        Flip → shift (or one affine warp with rotation/zoom/shift) → brightness/contrast → random erasing; every
        step is one tensor op over the whole batch. Returns uint8 ``[B, C, H, W]``.
        """
        cfg = self.train_augment
        b = x.shape[0]
        if cfg.flip:
            flip = torch.from_numpy(rng.random(b) < 0.5)
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
        if cfg.rotate_deg > 0 or cfg.scale > 0:
            x = _affine(x.float(), cfg, rng)
        elif (pad := shift_pad_px(cfg, x.shape[2])) > 0:
            x = _shift(x, pad, rng, cfg.shift_pad)
        if cfg.jitter == 0 and cfg.erase_p == 0:
            return _to_uint8(x)
        x = x.float()
        if cfg.jitter > 0:
            c = torch.from_numpy(rng.uniform(1 - cfg.jitter, 1 + cfg.jitter, b).astype(np.float32)).view(b, 1, 1, 1)
            bright = torch.from_numpy(rng.uniform(-255 * cfg.jitter, 255 * cfg.jitter, b).astype(np.float32))
            bright = bright.view(b, 1, 1, 1)
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - mean) * c + mean + bright
        if cfg.erase_p > 0:
            x = _erase(x, cfg.erase_p, rng)
        return _to_uint8(x)

    def get_batch(
        self, indices: np.ndarray, train: bool = False, rng: np.random.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Assemble a batch.

        Args:
            indices: row positions ``[B]``.
            train: apply training augmentation.
            rng: random source for augmentation (required when ``train``).

        Returns:
            ``x`` float32 ``[B, C_in, H, W]`` (the model-input size, see :meth:`for_input`) and ``y`` int64 ``[B]``,
            both on :attr:`device`.
        """
        if not train:
            return self._batcher.build(indices)
        return self._batcher.build(indices, self.train_augment, rng if rng is not None else np.random.default_rng())


def _batcher(pixels: torch.Tensor, labels: torch.Tensor, spec: PreprocessSpec):  # -> DeviceBatcher
    from fer_core.data.device_batches import DeviceBatcher  # it builds on this module's policy (TrainAugment)

    return DeviceBatcher(pixels, labels, spec)


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return x if x.dtype == torch.uint8 else x.round().clamp(0, 255).to(torch.uint8)


def _shift(x: torch.Tensor, pad: int, rng: np.random.Generator, mode: str = "reflect") -> torch.Tensor:
    """Integer translation by up to ``pad`` pixels per axis: pad ``pad`` (``reflect`` or ``replicate``) and crop a
    random window of the original size, by gathering (no interpolation)."""
    b, _, h, w = x.shape
    dy, dx = rng.integers(0, 2 * pad + 1, size=(2, b))
    rows = pad_index(torch.arange(h).view(1, h) + torch.from_numpy(dy - pad).view(b, 1), h, mode).view(b, 1, h, 1)
    cols = pad_index(torch.arange(w).view(1, w) + torch.from_numpy(dx - pad).view(b, 1), w, mode).view(b, 1, 1, w)
    bidx = torch.arange(b).view(b, 1, 1, 1)
    cidx = torch.arange(x.shape[1]).view(1, -1, 1, 1)
    return x[bidx, cidx, rows, cols].to(torch.uint8)


def _affine(x: torch.Tensor, cfg: TrainAugment, rng: np.random.Generator) -> torch.Tensor:
    """Rotation ± ``rotate_deg``, zoom 1 ± ``scale`` and shift ± ``shift`` in one bilinear warp (reflected border)."""
    b = x.shape[0]
    ang = np.deg2rad(rng.uniform(-cfg.rotate_deg, cfg.rotate_deg, b))
    zoom = rng.uniform(1 - cfg.scale, 1 + cfg.scale, b)
    t = rng.uniform(-cfg.shift, cfg.shift, (b, 2)) * 2  # normalised coordinates span 2
    cos, sin = np.cos(ang) / zoom, np.sin(ang) / zoom
    theta = np.stack([np.stack([cos, -sin, t[:, 0]], 1), np.stack([sin, cos, t[:, 1]], 1)], 1)
    grid = F.affine_grid(torch.from_numpy(theta.astype(np.float32)), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def erase_boxes(rng: np.random.Generator, b: int, h: int, w: int, p: float) -> tuple[np.ndarray, ...]:
    """The random-erasing draw shared by the host and device paths: per image a rectangle of 2-20 % of the area
    (aspect 0.3-3.3) and whether it is erased (probability ``p``).

    Returns:
        ``(y0, x0, eh, ew, on)``, each ``[b]``.
    """
    area = rng.uniform(0.02, 0.2, b) * h * w
    aspect = np.exp(rng.uniform(np.log(0.3), np.log(1 / 0.3), b))
    eh = np.clip(np.round(np.sqrt(area * aspect)), 1, h).astype(np.int64)
    ew = np.clip(np.round(np.sqrt(area / aspect)), 1, w).astype(np.int64)
    y0 = (rng.random(b) * (h - eh + 1)).astype(np.int64)
    x0 = (rng.random(b) * (w - ew + 1)).astype(np.int64)
    return y0, x0, eh, ew, rng.random(b) < p


def _erase(x: torch.Tensor, p: float, rng: np.random.Generator) -> torch.Tensor:
    """Random erasing: with probability ``p`` a rectangle of 2-20 % of the area (aspect 0.3-3.3) becomes noise."""
    b, _, h, w = x.shape
    y0, x0, eh, ew, on_np = erase_boxes(rng, b, h, w, p)
    on = torch.from_numpy(on_np).view(b, 1, 1)
    ys, xs = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
    y0t, x0t = torch.from_numpy(y0).view(b, 1, 1), torch.from_numpy(x0).view(b, 1, 1)
    inside = (ys >= y0t) & (ys < y0t + torch.from_numpy(eh).view(b, 1, 1)) & (xs >= x0t)
    inside &= xs < x0t + torch.from_numpy(ew).view(b, 1, 1)
    noise = torch.from_numpy(rng.integers(0, 256, x.shape, dtype=np.uint8)).float()
    return torch.where((inside & on).unsqueeze(1), noise, x)


_REQUIRED = ("sample_id", "image_path", "label", "split")


def _bbox(value: object) -> tuple[int, int, int, int] | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    x, y, w, h = (int(v) for v in value)  # type: ignore[union-attr]
    return x, y, w, h


def expected_sample_id(data: bytes, bbox: tuple[int, int, int, int] | None) -> str:
    """The content address ingest gives a file: SHA-256 of its bytes, or for a face box of a larger image the SHA-256
    of ``"<file sha>#x,y,w,h"`` (several faces of one photo must not share an id)."""
    sha = hashlib.sha256(data).hexdigest()
    if bbox is None:
        return sha
    x, y, w, h = bbox
    return hashlib.sha256(f"{sha}#{x},{y},{w},{h}".encode()).hexdigest()


def _decode_row(
    path: str, sample_id: str, bbox: tuple[int, int, int, int] | None, spec: PreprocessSpec, verify_hash: bool
) -> np.ndarray | str:
    """Prepared uint8 pixels of one index row, or the reason they cannot be produced."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        return f"cannot read the file ({e.strerror or type(e).__name__})"
    if verify_hash and (got := expected_sample_id(data, bbox)) != sample_id:
        return f"content changed since indexing: SHA-256 gives {got}, the index says {sample_id}; re-run ingest"
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    if img is None or img.size == 0:
        return "cannot decode the image (corrupt, truncated, empty or not an image)"
    if bbox is not None:
        img = crop_face(img, bbox, spec.crop_margin)
    return prepare_pixels(img, spec)


def load_split(
    index_df: pd.DataFrame,
    split: str,
    spec: PreprocessSpec,
    workers: int = 1,
    verify_hash: bool = True,
    train_augment: TrainAugment | None = None,
) -> ArrayDataset:
    """Decode every image of one split of the index once into an :class:`ArrayDataset` (rows in index order).

    Each file is read, optionally checked against its ``sample_id``, decoded (``cv2.imdecode``), cropped with
    :func:`fer_core.preprocess.crop_face` when the row has a ``bbox``, and run through
    :func:`fer_core.preprocess.prepare_pixels`.

    Args:
        index_df: the dataset index (at least ``sample_id``, ``image_path``, ``label``, ``split``; ``bbox`` optional).
        split: ``"train"``, ``"val"`` or ``"test"``.
        spec: the preprocessing spec.
        workers: decoding threads (OpenCV and hashlib release the GIL).
        verify_hash: check each file's SHA-256 against its ``sample_id``.
        train_augment: the dataset's training augmentation (default flip + shift).

    Returns:
        The split's dataset, ``pixels`` uint8 ``[N, C, H, W]``.

    Raises:
        DataIntegrityError: missing columns, no row in ``split``, or unknown labels and unreadable, undecodable or
            changed files, EVERY one listed with its row, path and reason (nothing is skipped).
    """
    missing = [c for c in _REQUIRED if c not in index_df.columns]
    if missing:
        raise DataIntegrityError(f"index lacks columns {missing}; it needs {list(_REQUIRED)} (contract 3.1)")
    rows = index_df[index_df["split"] == split]
    if rows.empty:
        present = sorted(index_df["split"].unique().tolist())
        raise DataIntegrityError(f"the index has no row with split={split!r}; splits present: {present}")
    bboxes = rows["bbox"].map(_bbox).tolist() if "bbox" in rows.columns else [None] * len(rows)
    items = list(zip(rows["image_path"].astype(str), rows["sample_id"].astype(str), bboxes, strict=True))

    def one(item: tuple[str, str, tuple[int, int, int, int] | None]) -> np.ndarray | str:
        return _decode_row(*item, spec=spec, verify_hash=verify_hash)

    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            out = list(pool.map(one, items))
    else:
        out = [one(item) for item in items]
    problems = [
        (f"row {r} {item[0]}", px) for r, item, px in zip(rows.index, items, out, strict=True) if isinstance(px, str)
    ]
    problems += [
        (f"row {r} {path}", f"unknown label {lab!r}; allowed: {list(FER_CLASSES)}")
        for r, path, lab in zip(rows.index, rows["image_path"], rows["label"], strict=True)
        if lab not in CLASS_TO_INDEX
    ]
    if problems:
        raise DataIntegrityError(f"{len(problems)} row(s) of split {split!r} cannot be loaded", problems)
    labels = rows["label"].map(CLASS_TO_INDEX).to_numpy(np.int64)
    return ArrayDataset(np.stack(out), labels, rows["sample_id"].tolist(), spec, train_augment)  # type: ignore[arg-type]
