"""Builders of the bad-input suite: small real files (images, CSVs, an index, a bundle) and a tree snapshot."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]


def face(seed: int, size: int = 40) -> np.ndarray:
    """A random textured grey image (distinct seeds give unrelated dHashes)."""
    small = np.random.default_rng(seed).integers(0, 256, (6, 6), dtype=np.uint8)
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)


def png(path: Path, img: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cv2.imencode(".png", img)[1].tobytes())
    return path


def dataset(root: Path, classes=("happy", "sad", "angry"), per_class: int = 3) -> Path:
    """``root/<class>/img<i>.png``: a good folder dataset."""
    for ci, cls in enumerate(classes):
        for i in range(per_class):
            png(root / cls / f"img{i}.png", face(100 * ci + i))
    return root


def labels_csv(tmp: Path, rows: list[str], header: str = "path,label") -> Path:
    """A ``csv`` source: images ``good<i>.png`` in ``tmp/img`` and a label file with ``rows``."""
    for i in range(3):
        png(tmp / "img" / f"good{i}.png", face(i))
    path = tmp / "img" / "labels.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def index(tmp: Path) -> Path:
    """A real index (library ingest, no Prefect) of a 9-image folder dataset; returns the index path."""
    from fer_core.data.adapters import SourceSpec
    from fer_core.data.ingest import IngestConfig, run_ingest

    data = dataset(tmp / "data")
    cfg = IngestConfig(sources=[SourceSpec(kind="folder", path=data)], out_dir=tmp / "idx", workers=1,
                       fractions=(0.34, 0.33, 0.33))  # fmt: skip
    return run_ingest(cfg).index_path


def manifest(index_path: Path) -> Path:
    return Path(str(index_path) + ".manifest.json")


def edit_manifest(index_path: Path, **changes) -> None:
    m = json.loads(manifest(index_path).read_text())
    m.update(changes)
    manifest(index_path).write_text(json.dumps(m))


def fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    os.mkfifo(path)
    return path


def bundle(tmp: Path) -> Path:
    """A real, verified student bundle (tiny CNN exported to ONNX)."""
    from tests.core.export.helpers import make_bundle

    return make_bundle(tmp)


def copy_bundle(src: Path, tmp: Path) -> Path:
    return Path(shutil.copytree(src, tmp / "bundle"))


def profile(tmp: Path, edit=None, name: str = "p.yaml") -> Path:
    """The tiny profile as YAML, optionally edited (``edit(dict)``), with its index folder inside ``tmp``."""
    import yaml

    cfg = yaml.safe_load((REPO / "configs" / "tiny.yaml").read_text())
    cfg["data"]["ingest"]["out_dir"] = str(tmp / "idx")
    if edit is not None:
        edit(cfg)
    path = tmp / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every entry under ``root`` (not following links): ``{relative path: (mode, size, mtime_ns)}``."""
    out = {}
    for d, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(d, name)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def swap_classes(bundle: Path) -> None:
    """A hand edit that re-hashes: two class names swapped in calibration.json, the manifest's hash fixed up."""
    from fer_core.io import sha256_file

    cal = json.loads((bundle / "calibration.json").read_text())
    cal["classes"][0], cal["classes"][3] = cal["classes"][3], cal["classes"][0]
    (bundle / "calibration.json").write_text(json.dumps(cal))
    man = json.loads((bundle / "manifest.json").read_text())
    man["files"]["calibration.json"] = {"sha256": sha256_file(bundle / "calibration.json"),
                                        "size": (bundle / "calibration.json").stat().st_size}  # fmt: skip
    (bundle / "manifest.json").write_text(json.dumps(man))
