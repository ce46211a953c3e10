"""Offline evaluation of a bundle on a folder-per-class dataset, using only the bundle (and, with ``detect=True``,
the runner's own detection and crop code)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fer_core.errors import DataIntegrityError
from fer_core.evaluate.metrics import classification_metrics
from fer_core.export.bundle import load_bundle
from fer_core.io import atomic_write_json
from fer_core.preprocess import to_uint8
from fer_core.realtime.detect import DetectorConfig, create_detector
from fer_core.realtime.roi import face_roi
from fer_core.realtime.sources import IMAGE_SUFFIXES, special_file_kind
from fer_core.taxonomy import MINORITY_CLASSES, canonical_label

ECE_BINS = 15


def _list_dataset(data_dir: Path, classes: tuple[str, ...]) -> list[tuple[Path, int]]:
    if not data_dir.is_dir():
        raise DataIntegrityError(f"dataset folder {data_dir} does not exist")
    items, problems = [], []
    for folder in sorted(p for p in data_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        label = canonical_label(folder.name, where=str(folder))
        if label not in classes:
            problems.append((str(folder), f"class {label!r} is not an output of the bundle {list(classes)}"))
            continue
        for f in sorted(folder.iterdir()):
            if f.name.startswith("."):
                continue
            if f.suffix.lower() not in IMAGE_SUFFIXES:
                problems.append((str(f), f"not an image ({', '.join(IMAGE_SUFFIXES)})"))
            elif kind := special_file_kind(f):
                problems.append((str(f), f"{kind}, not a regular file (refused without opening it)"))
            else:
                items.append((f, classes.index(label)))
    if problems:
        raise DataIntegrityError(f"dataset {data_dir} has {len(problems)} problem(s); fix or remove them", problems)
    if not items:
        raise DataIntegrityError(f"dataset {data_dir} holds no image in class folders (<class>/<image>)")
    return items


def _read(path: Path) -> np.ndarray | None:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        return None
    img = to_uint8(img)
    return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR) if img.ndim == 3 and img.shape[2] == 4 else img


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> float:
    """Top-label ECE with equal-width confidence bins; ``probs`` ``[N, K]``, ``y`` ``[N]``."""
    conf, pred = probs.max(1), probs.argmax(1)
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            ece += m.mean() * abs(float(np.mean(pred[m] == y[m])) - float(conf[m].mean()))
    return float(ece)


def _evaluate(
    bundle: Any,
    items: list[tuple[Path, int]],
    where: str,
    detect: bool,
    detector: str,
    detector_model_path: str | os.PathLike[str] | None,
    batch_size: int,
) -> dict[str, Any]:
    det = create_detector(DetectorConfig(kind=detector, model_path=detector_model_path)) if detect else None
    xs, ys, problems, no_face = [], [], [], 0
    for path, y in items:
        img = _read(path)
        if img is None:
            problems.append((str(path), "cannot be decoded"))
            continue
        crop = img
        if det is not None:
            faces = det.detect(img)
            if faces:
                crop = face_roi(img, faces[0].box, bundle.spec.crop_margin, faces[0].landmarks)
            else:
                no_face += 1
        xs.append(bundle.preprocess(crop))
        ys.append(y)
    if problems:
        raise DataIntegrityError(f"{len(problems)} unreadable image(s) in {where}", problems)
    x, y = np.stack(xs), np.asarray(ys, dtype=np.int64)
    logits = np.concatenate([bundle.predict_logits(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    probs = bundle.calibrate(logits)
    minority = [c for c in MINORITY_CLASSES if c in bundle.classes]
    m = classification_metrics(y, probs.argmax(1), classes=bundle.classes, minority=minority)
    nll = float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y].astype(np.float64), 1e-12, 1.0))))
    result = {
        "n": len(y), "accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "minority_f1": m["minority_f1"],
        "per_class_f1": {c: m[f"f1/{c}"] for c in bundle.classes}, "ece": expected_calibration_error(probs, y),
        "nll": nll, "no_face": no_face, "no_face_rate": no_face / len(y), "detect": detect,
        "detector": detector if detect else None,
    }  # fmt: skip
    return result


def evaluate_bundle(
    bundle_dir: str | os.PathLike[str],
    data_dir: str | os.PathLike[str],
    detect: bool = False,
    detector: str = "haar",
    detector_model_path: str | os.PathLike[str] | None = None,
    batch_size: int = 64,
    threads: int = 2,
    per_class_temperature: bool = False,
    out: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Metrics of a bundle on ``data_dir/<class>/<image>`` (class folder names through ``canonical_label``).

    With ``detect=True`` each image goes through the runner's detector and ``face_roi`` crop (largest face). An
    image where no face is found is NOT dropped: the whole image is used as the crop (as for inputs that are already
    face crops) and counted in ``no_face`` / ``no_face_rate``, so the metrics cover every image.

    Args:
        out: also write the result as JSON to this file, atomically and only once everything succeeded (a failed
            evaluation leaves no file, and an existing one untouched).

    Returns:
        JSON-serialisable dict: ``n``, ``accuracy``, ``macro_f1``, ``minority_f1``, ``per_class_f1``, ``ece``,
        ``nll``, ``no_face``, ``no_face_rate``, ``detect``, ``detector``.

    Raises:
        BundleError: the bundle fails verification.
        DataIntegrityError: a missing folder, an unknown class folder, a non-image or undecodable file (all listed).
    """
    bundle = load_bundle(bundle_dir, threads=threads, per_class_temperature=per_class_temperature)
    items = _list_dataset(Path(data_dir), bundle.classes)
    result = _evaluate(bundle, items, str(data_dir), detect, detector, detector_model_path, batch_size)
    if out is not None:
        atomic_write_json(out, result)
    return result


def read_file_list(list_csv: str | os.PathLike[str], data_root: str | os.PathLike[str],
                   classes: tuple[str, ...]) -> list[tuple[Path, int]]:  # fmt: skip
    """The (path, class index) items of a file list ``path,label,sha256`` (paths relative to ``data_root``).

    Every file must exist and hash to its ``sha256``: a list names exact bytes, so an evaluation on it is the same
    evaluation wherever it runs.

    Raises:
        DataIntegrityError: a malformed list, an unknown label, a missing or changed file (all listed).
    """
    import csv

    root, problems, items = Path(data_root), [], []
    try:
        with open(list_csv, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataIntegrityError(f"file list {list_csv} cannot be read: {e}") from e
    if not rows or not {"path", "label", "sha256"} <= set(rows[0]):
        raise DataIntegrityError(f"file list {list_csv} needs the columns path, label, sha256 and at least one row")
    for n, row in enumerate(rows, start=2):
        path = root / row["path"]
        if row["label"] not in classes:
            problems.append((f"{list_csv} row {n}", f"label {row['label']!r} is not one of {list(classes)}"))
        elif not path.is_file():
            problems.append((f"{list_csv} row {n}", f"{path} does not exist"))
        elif hashlib.sha256(path.read_bytes()).hexdigest() != row["sha256"]:
            problems.append((f"{list_csv} row {n}", f"{path} differs from the listed SHA-256 (other bytes)"))
        else:
            items.append((path, classes.index(row["label"])))
    if problems:
        raise DataIntegrityError(f"file list {list_csv}: {len(problems)} row(s) do not match {root}", problems)
    return items


def evaluate_file_list(
    bundle_dir: str | os.PathLike[str],
    list_csv: str | os.PathLike[str],
    data_root: str | os.PathLike[str],
    batch_size: int = 64,
    threads: int = 2,
) -> dict[str, Any]:
    """:func:`evaluate_bundle` on the exact files of a list (see :func:`read_file_list`), images used as crops."""
    bundle = load_bundle(bundle_dir, threads=threads)
    items = read_file_list(list_csv, data_root, bundle.classes)
    return _evaluate(bundle, items, str(list_csv), False, "haar", None, batch_size)
