"""Helpers of the ingestion tests: tiny generated images and a one-source ingest config."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from fer_core.data.adapters import SourceSpec
from fer_core.data.ingest import IngestConfig


def face(seed: int, size: int = 40) -> np.ndarray:
    """A random textured uint8 grey image ``[size, size]`` (distinct seeds give unrelated dHashes)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 6), dtype=np.uint8)
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)


def write_img(path: Path, img: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(path.suffix, img)
    path.write_bytes(buf.tobytes())
    return path


def folder_dataset(root: Path, per_class: int = 2, classes=("happy", "sad")) -> Path:
    for ci, cls in enumerate(classes):
        for i in range(per_class):
            write_img(root / cls / f"img{i}.png", face(100 * ci + i))
    return root


def cfg(path: Path, out: Path, kind: str = "folder", **kw) -> IngestConfig:
    spec_kw = {k: kw.pop(k) for k in ("image_root", "split_map", "split", "name") if k in kw}
    return IngestConfig(sources=[SourceSpec(kind=kind, path=path, **spec_kw)], out_dir=out, workers=1, **kw)


def nothing_written(out: Path) -> bool:
    return not out.exists() or not any(out.iterdir())
