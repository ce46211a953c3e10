"""The one preprocessing function shared by training-time evaluation, offline evaluation and the realtime runner.

Order (contract 3.4): crop (with margin) → colour conversion from OpenCV's BGR → CLAHE (grey image, or the L channel
of LAB for RGB; Gaussian pre-blur first when ``blur_sigma`` > 0) → resize → × scale → (x − mean) / std.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
from pydantic import Field, model_validator

from fer_core.config import FrozenModel
from fer_core.errors import ConfigError

_INTERP = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}


class ClaheSpec(FrozenModel):
    clip: float = Field(2.0, gt=0)
    tile: int = Field(8, ge=1)
    blur_sigma: float = Field(0.5, ge=0)


class PreprocessSpec(FrozenModel):
    """How a face crop becomes a model input; serialised verbatim as the bundle's ``preprocess.json``."""

    input_name: str = "input"
    layout: Literal["NCHW"] = "NCHW"
    size: tuple[int, int] = (48, 48)
    channels: Literal[1, 3] = 1
    color: Literal["gray", "rgb"] = "gray"
    scale: float = 1.0 / 255.0
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)
    clahe: ClaheSpec | None = None
    crop_margin: float = Field(0.2, ge=0)
    resize_interpolation: Literal["area", "linear", "cubic"] = "area"

    @model_validator(mode="after")
    def _consistent(self) -> PreprocessSpec:
        want = 1 if self.color == "gray" else 3
        if self.channels != want:
            raise ConfigError(f"color={self.color!r} needs channels={want}, got {self.channels}")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ConfigError(f"mean/std need {self.channels} values each, got {self.mean} / {self.std}")
        if any(s <= 0 for s in self.std):
            raise ConfigError(f"std must be positive, got {self.std}")
        if min(self.size) < 8:
            raise ConfigError(f"size must be at least 8x8, got {self.size}")
        return self


def _to_color(img: np.ndarray, color: str) -> np.ndarray:
    if img.ndim == 2:
        return img if color == "gray" else cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY if color == "gray" else cv2.COLOR_BGR2RGB)


def _clahe(img: np.ndarray, spec: ClaheSpec) -> np.ndarray:
    op = cv2.createCLAHE(clipLimit=spec.clip, tileGridSize=(spec.tile, spec.tile))

    def apply(gray: np.ndarray) -> np.ndarray:
        if spec.blur_sigma > 0:
            gray = cv2.GaussianBlur(gray, (0, 0), spec.blur_sigma)
        return op.apply(gray)

    if img.ndim == 2:
        return apply(img)
    lab = cv2.cvtColor(img, cv2.COLOR_RGB2LAB)
    lab[..., 0] = apply(np.ascontiguousarray(lab[..., 0]))
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Bring 16-bit or float images to uint8 (16-bit PNGs are legal input)."""
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return (img >> 8).astype(np.uint8)
    return np.clip(img, 0, 255).astype(np.uint8)


def prepare_pixels(crop_bgr: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Colour conversion → CLAHE → resize, returning uint8 ``[H, W]`` (grey) or ``[H, W, 3]`` (RGB).

    Training augmentation operates on this output; :func:`normalize` finishes the job.
    """
    img = _to_color(to_uint8(crop_bgr), spec.color)
    if spec.clahe is not None:
        img = _clahe(img, spec.clahe)
    h, w = spec.size
    if img.shape[:2] != (h, w):
        img = cv2.resize(img, (w, h), interpolation=_INTERP[spec.resize_interpolation])
    return img


def normalize(pixels: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """uint8 ``[H, W]`` / ``[H, W, C]`` → float32 ``[C, H, W]``, scaled and standardised."""
    x = pixels.astype(np.float32) * np.float32(spec.scale)
    if x.ndim == 2:
        x = x[None]
    else:
        x = x.transpose(2, 0, 1)
    mean = np.asarray(spec.mean, np.float32)[:, None, None]
    std = np.asarray(spec.std, np.float32)[:, None, None]
    return np.ascontiguousarray((x - mean) / std)


def preprocess_face(crop_bgr: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """A face crop (BGR, BGRA or grey, any size) → model input ``[C, H, W]`` float32.

    The single function used by training-time evaluation, ``ferflow evaluate`` and the realtime runner.
    """
    return normalize(prepare_pixels(crop_bgr, spec), spec)


def square_box(box: tuple[float, float, float, float], margin: float, frame_hw: tuple[int, int]) -> tuple[int, ...]:
    """Expand an ``(x, y, w, h)`` box to a square with ``margin`` added per side, clipped to the frame.

    Returns:
        ``(x0, y0, x1, y1)`` integer pixel bounds.
    """
    x, y, w, h = box
    cx, cy = x + w / 2.0, y + h / 2.0
    side = max(w, h) * (1.0 + 2.0 * margin)
    fh, fw = frame_hw
    x0, y0 = int(round(max(0.0, cx - side / 2))), int(round(max(0.0, cy - side / 2)))
    x1, y1 = int(round(min(float(fw), cx + side / 2))), int(round(min(float(fh), cy + side / 2)))
    return x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)


def crop_face(frame_bgr: np.ndarray, box: tuple[float, float, float, float], margin: float) -> np.ndarray:
    """Square crop with margin around a detected ``(x, y, w, h)`` face box."""
    x0, y0, x1, y1 = square_box(box, margin, frame_bgr.shape[:2])
    return frame_bgr[y0:y1, x0:x1]
