"""Targeted minority augmentation: new image files (and index rows) for classes under a target share of their split.

Each new image comes from one original parent of the same split and class, through one or two ops drawn from a
registry (MixUp with a negative-valence image, CutMix, geometric, photometric, and webcam-domain ops: gamma, motion
blur, JPEG round-trip, sensor noise). The parent's label always dominates. Randomness is keyed by
``(seed, parent sample_id, copy number)``, so the same index and config give the same rows and bytes whatever the row
order of the index.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from fer_core.config import FrozenModel
from fer_core.data.schema import INDEX_COLUMNS, SPLITS
from fer_core.data.validate import dhash64
from fer_core.errors import ConfigError, DataIntegrityError
from fer_core.io import atomic_write_bytes, sha256_bytes
from fer_core.preprocess import crop_face, to_uint8
from fer_core.registry import Registry
from fer_core.taxonomy import FER_CLASSES

NEGATIVE_VALENCE: tuple[str, ...] = ("angry", "disgust", "fear", "sad")
_MAX_ATTEMPTS = 8  # redraws when an output happens to repeat an existing sample's bytes


@dataclass
class OpContext:
    """What an op may use besides its image: partners from the parent's split, already matched to its shape."""

    negative: Callable[[np.random.Generator], np.ndarray]  # another negative-valence original
    other: Callable[[np.random.Generator], np.ndarray]  # any other original


AugmentOp = Callable[[np.ndarray, np.random.Generator, OpContext], np.ndarray]
AUGMENT_OPS: Registry[AugmentOp] = Registry("augment op")


@AUGMENT_OPS.register("mixup_negative")
def mixup_negative(img: np.ndarray, rng: np.random.Generator, ctx: OpContext) -> np.ndarray:
    """``λ·img + (1 − λ)·partner`` with a negative-valence partner, ``λ ∈ [0.6, 0.9]`` (the parent's label stays)."""
    lam = rng.uniform(0.6, 0.9)
    return lam * img + (1.0 - lam) * ctx.negative(rng)


@AUGMENT_OPS.register("cutmix")
def cutmix(img: np.ndarray, rng: np.random.Generator, ctx: OpContext) -> np.ndarray:
    """Paste the same-place patch (10-30 % of the area) of another same-split image; the parent keeps ≥ 70 %."""
    h, w = img.shape[:2]
    area = rng.uniform(0.1, 0.3)
    ph, pw = max(1, round(h * math.sqrt(area))), max(1, round(w * math.sqrt(area)))
    y, x = int(rng.integers(0, h - ph + 1)), int(rng.integers(0, w - pw + 1))
    out = img.copy()
    out[y : y + ph, x : x + pw] = ctx.other(rng)[y : y + ph, x : x + pw]
    return out


@AUGMENT_OPS.register("geometric")
def geometric(img: np.ndarray, rng: np.random.Generator, ctx: OpContext) -> np.ndarray:
    """Flip (p = 0.5), rotation ±12°, scale 0.9-1.1, shift ±8 % (reflected border)."""
    h, w = img.shape[:2]
    if rng.random() < 0.5:
        img = img[:, ::-1]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-12, 12), rng.uniform(0.9, 1.1))
    m[:, 2] += rng.uniform(-0.08, 0.08, 2) * (w, h)
    return cv2.warpAffine(np.ascontiguousarray(img), m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


@AUGMENT_OPS.register("photometric")
def photometric(img: np.ndarray, rng: np.random.Generator, ctx: OpContext) -> np.ndarray:
    """Contrast 0.75-1.3 about the mean, brightness ±30 grey levels."""
    mean = float(img.mean())
    return (img - mean) * rng.uniform(0.75, 1.3) + mean + rng.uniform(-30, 30)


@AUGMENT_OPS.register("gamma")
def gamma(img: np.ndarray, rng: np.random.Generator, ctx: OpContext) -> np.ndarray:
    """Webcam exposure curve: ``255·(x/255)^γ``, ``γ ∈ [0.6, 1.6]``."""
    return 255.0 * (np.clip(img, 0, 255) / 255.0) ** rng.uniform(0.6, 1.6)


@AUGMENT_OPS.register("motion_blur")
def motion_blur(img: np.ndarray, rng: np.random.Generator, ctx: OpContext) -> np.ndarray:
    """Linear motion blur, length ~4-12 % of the side, random direction."""
    side = min(img.shape[:2])
    k = max(3, int(round(side * rng.uniform(0.04, 0.12))) | 1)
    kernel = np.zeros((k, k), np.float32)
    kernel[k // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D(((k - 1) / 2, (k - 1) / 2), rng.uniform(0, 180), 1.0)
    kernel = cv2.warpAffine(kernel, rot, (k, k))
    return cv2.filter2D(img, -1, kernel / kernel.sum(), borderType=cv2.BORDER_REFLECT)


@AUGMENT_OPS.register("jpeg")
def jpeg(img: np.ndarray, rng: np.random.Generator, ctx: OpContext) -> np.ndarray:
    """JPEG round-trip at quality 20-70 (webcam/stream compression artefacts)."""
    ok, buf = cv2.imencode(".jpg", _to_u8(img), [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(20, 71))])
    if not ok:
        raise DataIntegrityError("JPEG encoding failed during augmentation")
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED).astype(np.float32)


@AUGMENT_OPS.register("sensor_noise")
def sensor_noise(img: np.ndarray, rng: np.random.Generator, ctx: OpContext) -> np.ndarray:
    """Shot noise (Poisson, 150-800 photons at full scale) plus read noise (Gaussian σ 2-6 grey levels)."""
    photons = rng.uniform(150, 800)
    shot = rng.poisson(np.clip(img, 0, 255) / 255.0 * photons) / photons * 255.0
    return shot + rng.normal(0.0, rng.uniform(2, 6), img.shape)


class AugmentConfig(FrozenModel):
    """Which classes to augment, how far, and with which ops.

    Attributes:
        target_share: classes below this share of their split are augmented up to it (shares of the final split).
        classes: the only classes that may be augmented; ``None`` = every class below the target.
        splits: splits to augment; val/test stay untouched by default.
        ops: op names from :data:`AUGMENT_OPS`; each new image gets one or two of them, in this order.
        max_per_parent: most new images drawn from one original (a plan needing more is refused).
        seed: base seed.
        image_format: file format of the new images.
        crop_margin: margin of the square crop taken around a parent's face box (rows with ``bbox``).
    """

    target_share: float = Field(0.10, gt=0, lt=1)
    classes: tuple[str, ...] | None = None
    splits: tuple[str, ...] = ("train",)
    ops: tuple[str, ...] = tuple(AUGMENT_OPS.names())
    max_per_parent: int = Field(8, ge=1)
    seed: int = 0
    image_format: Literal["png"] = "png"
    crop_margin: float = Field(0.2, ge=0)

    @field_validator("classes")
    @classmethod
    def _known_classes(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        bad = [c for c in v or () if c not in FER_CLASSES]
        if bad:
            raise ValueError(f"unknown classes {bad}; valid: {list(FER_CLASSES)}")
        return v

    @field_validator("splits")
    @classmethod
    def _known_splits(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [s for s in v if s not in SPLITS]
        if bad:
            raise ValueError(f"unknown splits {bad}; valid: {list(SPLITS)}")
        return v

    @field_validator("ops")
    @classmethod
    def _known_ops(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError(f"ops is empty; choose from {AUGMENT_OPS.names()}")
        bad = [o for o in v if o not in AUGMENT_OPS]
        if bad:
            raise ValueError(f"unknown ops {bad}; valid: {AUGMENT_OPS.names()}")
        return v


def plan_augmentation(index: pd.DataFrame, cfg: AugmentConfig) -> dict[tuple[str, str], int]:
    """How many new images each ``(split, label)`` needs so every augmented class reaches ``target_share``.

    Shares are of the final split (the new rows count), so a class just above the target before augmentation may join
    the plan. Counts include every existing row of the split.

    Returns:
        ``{(split, label): n_new}`` for the classes to augment (``n_new`` > 0).

    Raises:
        ConfigError: the target cannot be met (too many classes below it for the share asked).
    """
    t = cfg.target_share
    plan: dict[tuple[str, str], int] = {}
    for split in cfg.splits:
        part = index.loc[index["split"] == split, "label"]
        if part.empty:
            continue
        counts = part.value_counts().reindex(FER_CLASSES, fill_value=0)
        eligible = cfg.classes if cfg.classes is not None else FER_CLASSES
        chosen: set[str] = set()
        final = float(len(part))
        while True:
            grow = {c for c in eligible if c not in chosen and counts[c] < t * final}
            if not grow:
                break
            chosen |= grow
            if len(chosen) * t >= 1:
                raise ConfigError(
                    f"split {split!r}: {len(chosen)} classes below target_share={t} cannot all reach it; lower it"
                )
            final = (len(part) - sum(int(counts[c]) for c in chosen)) / (1 - len(chosen) * t)
        for c in sorted(chosen):
            plan[(split, c)] = math.ceil(t * final) - int(counts[c])
    return plan


def _bbox(value: object) -> tuple[int, int, int, int] | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    x, y, w, h = (int(v) for v in value)  # type: ignore[union-attr]
    return x, y, w, h


def _decode(path: str, bbox: tuple[int, int, int, int] | None, margin: float) -> np.ndarray | str:
    """Grey ``[H, W]`` or BGR ``[H, W, 3]`` uint8, cropped to the face box; or the reason it cannot be read."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        return f"cannot read ({e.strerror or type(e).__name__})"
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    if img is None or img.size == 0:
        return "cannot decode (corrupt, empty or not an image)"
    img = to_uint8(img)
    if img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(crop_face(img, bbox, margin)) if bbox is not None else img


def _load_all(rows: pd.DataFrame, margin: float) -> dict[str, np.ndarray]:
    """Decode every row once (threads: cv2 releases the GIL); raise listing every unreadable file."""
    items = list(zip(rows["sample_id"], rows["image_path"], rows["bbox"].map(_bbox), strict=True))
    with ThreadPoolExecutor(max_workers=4) as pool:
        imgs = list(pool.map(lambda it: _decode(it[1], it[2], margin), items))
    problems = [(f"{path} (sample {sid})", img) for (sid, path, _), img in zip(items, imgs, strict=True)]
    problems = [p for p in problems if isinstance(p[1], str)]
    if problems:
        raise DataIntegrityError(f"{len(problems)} image(s) needed for augmentation cannot be read", problems)
    return {sid: img for (sid, _, _), img in zip(items, imgs, strict=True)}  # type: ignore[misc]


def _match(img: np.ndarray, like: np.ndarray) -> np.ndarray:
    """``img`` as float32 with ``like``'s channels and size."""
    if img.ndim != like.ndim:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR if like.ndim == 3 else cv2.COLOR_BGR2GRAY)
    if img.shape[:2] != like.shape[:2]:
        img = cv2.resize(img, (like.shape[1], like.shape[0]), interpolation=cv2.INTER_AREA)
    return img.astype(np.float32)


def _partner(pool: list[str], images: dict[str, np.ndarray], parent: str, what: str) -> Callable:
    def pick(rng: np.random.Generator) -> np.ndarray:
        others = len(pool) - (parent in pool)
        if others < 1:
            raise ConfigError(f"op needs {what} besides the parent {parent}, and the split has none; drop the op")
        i = int(rng.integers(len(pool)))
        if pool[i] == parent:
            i = (i + 1) % len(pool)
        return _match(images[pool[i]], images[parent])

    return pick


def _to_u8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _seed_of(sample_id: str) -> int:
    return int(hashlib.sha256(sample_id.encode()).hexdigest()[:16], 16)


def _render_copy(
    parent_img: np.ndarray, parent_id: str, copy: int, cfg: AugmentConfig, ctx: OpContext, taken: set[str]
) -> tuple[bytes, str, np.ndarray]:
    """One new image: PNG bytes, their SHA-256 and the pixels; redrawn if the bytes repeat a known sample."""
    for attempt in range(_MAX_ATTEMPTS):
        rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, _seed_of(parent_id), copy, attempt]))
        n_ops = int(rng.integers(1, min(2, len(cfg.ops)) + 1))
        chosen = sorted(rng.choice(len(cfg.ops), size=n_ops, replace=False))
        img = parent_img.astype(np.float32)
        for i in chosen:
            img = AUGMENT_OPS.get(cfg.ops[i])(img, rng, ctx)
        out = _to_u8(img)
        ok, buf = cv2.imencode(f".{cfg.image_format}", out)
        if not ok:
            raise DataIntegrityError(f"{cfg.image_format} encoding failed for a copy of {parent_id}")
        data = buf.tobytes()
        sid = sha256_bytes(data)
        if sid not in taken:
            return data, sid, out
    raise DataIntegrityError(f"copies of {parent_id} keep repeating existing images; use other ops", [(parent_id, "")])


def _new_row(parent: pd.Series, sid: str, path: Path, out: np.ndarray) -> dict[str, object]:
    grey = out if out.ndim == 2 else cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)
    return {
        "sample_id": sid, "image_path": str(path), "label": parent["label"], "split": parent["split"],
        "source": "augment", "group_id": parent["group_id"], "origin": "augmented", "parent_id": parent["sample_id"],
        "width": out.shape[1], "height": out.shape[0], "dhash": dhash64(grey), "bbox": None, "flags": "",
    }  # fmt: skip


def _frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(INDEX_COLUMNS))
    df["width"] = df["width"].astype(np.int32)
    df["height"] = df["height"].astype(np.int32)
    df["dhash"] = df["dhash"].astype(np.uint64)
    df["bbox"] = pd.Series([None] * len(df), dtype=object)
    return df


def _check_index(index: pd.DataFrame) -> None:
    missing = [c for c in INDEX_COLUMNS if c not in index.columns]
    if missing:
        raise DataIntegrityError(f"index lacks columns {missing}; expected {list(INDEX_COLUMNS)} (contract 3.1)")


def _select_parents(
    originals: pd.DataFrame, plan: dict[tuple[str, str], int], max_per_parent: int
) -> dict[tuple[str, str], pd.DataFrame]:
    """Original rows each planned ``(split, label)`` draws from, sorted by ``sample_id``; refuses impossible plans."""
    parents: dict[tuple[str, str], pd.DataFrame] = {}
    for (split, label), k in plan.items():
        rows = originals[(originals["split"] == split) & (originals["label"] == label)].sort_values("sample_id")
        if rows.empty:
            raise ConfigError(f"split {split!r} has no original {label!r} image to augment; set cfg.classes without it")
        if math.ceil(k / len(rows)) > max_per_parent:
            raise ConfigError(
                f"split {split!r}, class {label!r}: {k} new images from {len(rows)} originals needs "
                f"{math.ceil(k / len(rows))} per parent > max_per_parent={max_per_parent}; raise it or lower "
                f"target_share"
            )
        parents[(split, label)] = rows
    return parents


def augment_minority(index: pd.DataFrame, cfg: AugmentConfig, out_dir: Path) -> pd.DataFrame:
    """Write new images for the classes below ``cfg.target_share`` of their split and return their index rows.

    Parents are ``origin == "original"`` rows of the same split and class (sorted by ``sample_id``, copies spread
    evenly); partners for MixUp/CutMix come from the same split. Files go to ``out_dir/<split>/<label>/<sha256>.png``,
    written atomically.

    Args:
        index: the dataset index (all :data:`INDEX_COLUMNS`).
        cfg: what to augment and how.
        out_dir: destination folder of the new files.

    Returns:
        ONLY the new rows, with every index column (``source="augment"``, ``origin="augmented"``, the parent's split,
        label and group, ``parent_id`` = the parent's ``sample_id``, ``bbox`` None, ``flags`` "").

    Raises:
        DataIntegrityError: missing columns, or parent/partner images that cannot be read (every one listed).
        ConfigError: a class to augment has no original in its split, or needs more than ``max_per_parent`` copies.
    """
    _check_index(index)
    plan = plan_augmentation(index, cfg)
    originals = index[index["origin"] == "original"]
    parents = _select_parents(originals, plan, cfg.max_per_parent)
    splits = sorted({s for s, _ in plan})
    pool_rows = originals[originals["split"].isin(splits)] if {"mixup_negative", "cutmix"} & set(cfg.ops) else None
    needed = pd.concat([*parents.values(), *([pool_rows] if pool_rows is not None else [])])
    images = _load_all(needed.drop_duplicates("sample_id"), cfg.crop_margin) if len(needed) else {}
    taken, new_rows = set(index["sample_id"]), []
    out_root = Path(out_dir).resolve()
    for (split, label), rows in sorted(parents.items()):
        in_split = originals[originals["split"] == split]
        neg = sorted(in_split.loc[in_split["label"].isin(NEGATIVE_VALENCE), "sample_id"])
        every = sorted(in_split["sample_id"])
        k, n_par = plan[(split, label)], len(rows)
        for j, (_, parent) in enumerate(rows.iterrows()):
            pid = parent["sample_id"]
            ctx = OpContext(
                negative=_partner(neg, images, pid, "a negative-valence original"),
                other=_partner(every, images, pid, "another original"),
            )
            for copy in range(k // n_par + (j < k % n_par)):
                data, sid, out = _render_copy(images[pid], pid, copy, cfg, ctx, taken)
                path = out_root / split / label / f"{sid}.{cfg.image_format}"
                atomic_write_bytes(path, data)
                taken.add(sid)
                new_rows.append(_new_row(parent, sid, path, out))
    return _frame(new_rows)
