"""Source adapters: each public FER format → one record per image, mapped to the taxonomy through one explicit table.

Every adapter returns a records frame with :data:`RECORD_COLUMNS`. ``status`` is ``"ok"`` for a usable row,
``"rejected"`` for a bad row (counts toward the quality gate, listed with its reason) and ``"dropped"`` for a row the
format itself excludes by design (FERPlus contempt/unknown/NF votes, AffectNet contempt/none/uncertain/non-face), which
is counted in the report but is not a data error.
"""

from __future__ import annotations

import csv
import io
import os
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import pandas as pd

from fer_core.config import FrozenModel
from fer_core.data.validate import require_regular_file
from fer_core.errors import DataIntegrityError, printable
from fer_core.io import atomic_path, sha256_bytes
from fer_core.registry import Registry
from fer_core.taxonomy import FER_CLASSES, SYNONYMS

RECORD_COLUMNS: tuple[str, ...] = ("source", "where", "path", "root", "label", "split_hint", "bbox", "status", "reason")
IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})

# FER2013's "validation" folder is its PublicTest set, the only held-out set of the folder release: it becomes the test
# split and validation is carved out of train by group (see splits.py).
FOLDER_SPLIT_MAP: dict[str, str] = {
    "train": "train", "training": "train", "val": "val", "valid": "val",
    "validation": "test", "publictest": "test", "test": "test", "privatetest": "test",
}  # fmt: skip
# FER2013/FERPlus CSV releases carry all three Usage values: PublicTest is the customary validation set.
USAGE_SPLIT_MAP: dict[str, str] = {"training": "train", "publictest": "val", "privatetest": "test"}

FER2013_LABELS: dict[int, str] = {
    0: "angry",
    1: "disgust",
    2: "fear",
    3: "happy",
    4: "sad",
    5: "surprise",
    6: "neutral",
}
RAFDB_LABELS: dict[int, str] = {1: "surprise", 2: "fear", 3: "disgust", 4: "happy", 5: "sad", 6: "angry", 7: "neutral"}
AFFECTNET_LABELS: dict[int, str] = {
    0: "neutral",
    1: "happy",
    2: "sad",
    3: "surprise",
    4: "fear",
    5: "disgust",
    6: "angry",
}
AFFECTNET_DROPPED: dict[int, str] = {7: "contempt", 8: "none", 9: "uncertain", 10: "non-face"}
EXPW_LABELS: dict[int, str] = FER2013_LABELS
FERPLUS_VOTES: dict[str, str] = {
    "neutral": "neutral", "happiness": "happy", "surprise": "surprise", "sadness": "sad",
    "anger": "angry", "disgust": "disgust", "fear": "fear",
}  # fmt: skip
FERPLUS_EXCLUDED: tuple[str, ...] = ("contempt", "unknown", "NF")
FERPLUS_FOLDERS: dict[str, str] = {
    "training": "FER2013Train",
    "publictest": "FER2013Valid",
    "privatetest": "FER2013Test",
}

# control (newline, ESC, ...), format (bidi overrides, zero-width) and line/paragraph separators
_CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})

SourceKind = Literal["folder", "fer2013_csv", "ferplus_csv", "rafdb_list", "affectnet_csv", "expw_list", "csv"]


class SourceSpec(FrozenModel):
    """One data source.

    Args:
        kind: the adapter (see :data:`ADAPTERS`).
        path: the folder (``folder``) or the label file (every other kind).
        image_root: folder the label file's image paths are relative to (default: the label file's folder);
            for ``fer2013_csv`` the folder the decoded PNGs are written to once the ingest gate passes (default:
            ``<out_dir>/<name>.images``, decided by the ingest; nothing is ever written beside the source).
        name: source name stored in the index (default: ``kind``).
        split_map: lower-cased split/Usage name → ``train|val|test`` (default per adapter, see the module tables).
        split: a fixed split hint for every row (e.g. AffectNet's validation.csv → ``"test"``).
        max_entropy: FERPlus only: rows whose 7-class vote entropy (nats) exceeds this are dropped as ambiguous.
    """

    kind: SourceKind
    path: Path
    image_root: Path | None = None
    name: str | None = None
    split_map: dict[str, Literal["train", "val", "test"]] | None = None
    split: Literal["train", "val", "test"] | None = None
    max_entropy: float = 1.2

    @property
    def source_name(self) -> str:
        return self.name or self.kind

    def root(self) -> Path | None:
        """The declared data root; ``None`` for a ``fer2013_csv`` source whose image folder the ingest places."""
        if self.kind == "folder":
            return self.path
        if self.image_root is not None:
            return self.image_root
        return None if self.kind == "fer2013_csv" else self.path.parent


Adapter = Callable[[SourceSpec], pd.DataFrame]
ADAPTERS: Registry[Adapter] = Registry("source adapter")


def collect_source(spec: SourceSpec) -> pd.DataFrame:
    """Run the adapter of ``spec.kind``.

    Returns:
        Records frame with :data:`RECORD_COLUMNS`, one row per image (or per face for ExpW).

    Raises:
        ConfigError: unknown kind. DataIntegrityError: the source is missing, of the wrong type, unreadable,
            structurally malformed or holds no image at all.
    """
    check_source(spec)
    frame = ADAPTERS.get(spec.kind)(spec)
    images = frame[frame["status"] != "dropped"]
    if images.empty:
        found = "nothing" if frame.empty else f"only {len(frame)} excluded row(s): " + ", ".join(
            f"{k} ({v})" for k, v in frame["reason"].value_counts().items())
        what = "no class folder holds an image file (layout <class>/<image> or <split>/<class>/<image>)" \
            if spec.kind == "folder" else "no data rows (an empty list, or a CSV with only its header)"
        raise DataIntegrityError(f"source {spec.source_name}: {printable(spec.path)} yields no image: {what}; "
                                 f"found {found}. Fix the path or the file, or remove the source",
                                 [(printable(spec.path), "no images")])  # fmt: skip
    return frame


def check_source(spec: SourceSpec) -> None:
    """Cheap checks before any work: the path exists and is a folder (``folder``) or a regular file (the others).

    Raises:
        DataIntegrityError: naming the source and the path.
    """
    name = printable(spec.path)
    if not spec.path.exists():
        raise DataIntegrityError(f"source {spec.source_name}: {name} does not exist; fix the source path",
                                 [(name, "not found")])  # fmt: skip
    if spec.kind == "folder":
        if not spec.path.is_dir():
            raise DataIntegrityError(f"source {spec.source_name}: {name} is not a folder; a 'folder' source is "
                                     "root/<class>/<image> (use kind csv for a label file)",
                                     [(name, "not a folder")])  # fmt: skip
        return
    require_regular_file(spec.path, what=f"source {spec.source_name}: label file")


class _Rows:
    """Accumulates records of one source."""

    def __init__(self, spec: SourceSpec):
        root = spec.root()
        self.spec, self.root, self.rows, self.data = spec, "" if root is None else str(root), [], []

    def add(self, where: str, path: str, label: str | None, *, hint: str | None = None, bbox: Any = None,
            status: str = "ok", reason: str = "", data: bytes | None = None) -> None:  # fmt: skip
        if label is None and status == "ok":
            status, reason = "rejected", reason or "no label"
        bad_name = name_problem(path)
        if bad_name:
            # the name must never reach the index, a CSV or a log as it is: refuse the row, keep an escaped copy
            where, path = printable(where), printable(path)
            if status == "ok":
                status, reason = "rejected", f"{bad_name}: '{path}'; rename the file"
        self.rows.append((self.spec.source_name, where, path, self.root, label, hint or self.spec.split, bbox,
                          status, reason))  # fmt: skip
        self.data.append(data)

    def frame(self) -> pd.DataFrame:
        df = pd.DataFrame(self.rows, columns=list(RECORD_COLUMNS))
        if any(d is not None for d in self.data):
            df["data"] = pd.Series(self.data, index=df.index, dtype=object)
        return df


def name_problem(name: str) -> str:
    """Why a file name cannot be indexed (control characters, non-UTF-8 bytes), or ``""``.

    Such names break the line-oriented outputs (CSV reports, logs, terminals) and cannot be stored in Parquet.
    """
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "file name is not valid UTF-8"
    if any(unicodedata.category(c) in _CONTROL_CATEGORIES for c in name):
        return "file name contains control characters"
    return ""


def _label(table: dict[Any, str], value: Any) -> tuple[str | None, str]:
    if value in table:
        return table[value], ""
    return None, f"unknown label {value!r} (allowed: {sorted(table)})"


def read_csv_rows(path: Path, required: tuple[str, ...], delimiter: str | None = ",") -> list[tuple[int, dict]]:
    """Read a CSV/whitespace list strictly: BOM and CRLF tolerated, non-UTF-8 bytes and missing columns refused.

    Args:
        path: the file.
        required: column names that must appear in the header (matched case-insensitively).
        delimiter: a CSV delimiter, or ``None`` for whitespace-separated lines without a header (then ``required``
            names the positional columns).

    Returns:
        ``(line_number, {column: value})`` per data row (line numbers are 1-based, as an editor shows them).
    """
    require_regular_file(path, what="label file")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataIntegrityError(
            f"{path}:{line}: bytes {data[e.start : e.end]!r} are not UTF-8; re-save the file as UTF-8",
            [(f"{path}:{line}", "non-UTF-8 bytes")],
        ) from e
    if delimiter is None:
        out = []
        for n, line in enumerate(text.splitlines(), start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < len(required):
                raise DataIntegrityError(f"{path}:{n}: expected {len(required)} fields {list(required)}, "
                                         f"got {len(parts)}: {line!r}",
                                         [(f"{path}:{n}", "too few fields")])  # fmt: skip
            out.append((n, dict(zip(required, parts, strict=False))))
        return out
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [h.strip() for h in next(reader, [])]
    lower = {h.lower(): i for i, h in enumerate(header)}
    missing = [c for c in required if c.lower() not in lower]
    if missing:
        raise DataIntegrityError(
            f"{path}: missing column(s) {missing} (found {header}); add them to the header row",
            [(str(path), f"missing column {c!r}") for c in missing],
        )
    rows = []
    for rec in reader:
        if not any(f.strip() for f in rec):
            continue
        rows.append((reader.line_num, {h: (rec[i].strip() if i < len(rec) else "") for h, i in lower.items()}))
    return rows


def _check_unique(path: Path, keyed: list[tuple[int, Any]]) -> None:
    seen: dict[Any, int] = {}
    problems = []
    for line, key in keyed:
        if key in seen:
            problems.append((f"{path}:{line}", f"duplicate of row {seen[key]} ({key!r})"))
        else:
            seen[key] = line
    if problems:
        raise DataIntegrityError(f"{path}: {len(problems)} duplicate row(s); keep one row per image", problems)


def _hint(spec: SourceSpec, value: str, default: dict[str, str], where: str) -> str | None:
    table = spec.split_map or default
    if not value:
        return None
    key = value.strip().lower()
    if key not in table:
        raise DataIntegrityError(f"{where}: unknown split {value!r}; allowed: {sorted(table)} (set split_map)",
                                 [(where, f"unknown split {value!r}")])  # fmt: skip
    return table[key]


@ADAPTERS.register("folder")
def folder_adapter(spec: SourceSpec) -> pd.DataFrame:
    """``root/<class>/*`` or ``root/<split>/<class>/*``; class folders in any casing or a known synonym.

    An empty class folder becomes one ``dropped`` row (reason ``empty class folder``) so the ingest names it.
    """
    rows = _Rows(spec)
    root = spec.path
    split_map = spec.split_map or FOLDER_SPLIT_MAP
    top = _subfolders(root)
    splits = [d for d in top if d.lower() in split_map]
    if splits and len(splits) != len(top):
        others = [printable(d) for d in sorted(set(top) - set(splits))]
        raise DataIntegrityError(f"{printable(root)}: mixes split folders {splits} with others {others}; use "
                                 f"root/<split>/<class> or root/<class> (split folders: {sorted(split_map)})"
                                 )  # fmt: skip
    layout = [(d, split_map[d.lower()]) for d in splits] if splits else [("", None)]
    for sub, hint in layout:
        base = root / sub if sub else root
        for cls in _subfolders(base):
            label = SYNONYMS.get(cls.strip().lower())
            files = sorted(os.scandir(base / cls), key=lambda e: e.name)
            if not files:
                rel = f"{sub}/{cls}/" if sub else f"{cls}/"
                rows.add(rel, rel, label, hint=hint, status="dropped", reason="empty class folder: no files in it")
            for f in files:
                rel = f"{sub}/{cls}/{f.name}" if sub else f"{cls}/{f.name}"
                if os.path.splitext(f.name)[1].lower() not in IMAGE_EXTENSIONS:
                    rows.add(rel, rel, label, hint=hint, status="dropped", reason="not an image file extension")
                elif label is None:
                    rows.add(rel, rel, None, hint=hint, reason=f"unknown label folder {printable(cls)!r} "
                                                               f"(allowed: {sorted(SYNONYMS)})")  # fmt: skip
                else:
                    rows.add(rel, rel, label, hint=hint)
    return rows.frame()


def _subfolders(path: Path) -> list[str]:
    """Names of the visible sub-folders of ``path`` (symlinks to folders included), sorted."""
    return sorted(e.name for e in os.scandir(path) if e.is_dir() and not e.name.startswith("."))


@ADAPTERS.register("csv")
def generic_csv_adapter(spec: SourceSpec) -> pd.DataFrame:
    """``path,label[,split]``; labels in any casing or a known synonym."""
    rows = _Rows(spec)
    data = read_csv_rows(spec.path, ("path", "label"))
    _check_unique(spec.path, [(n, r["path"]) for n, r in data])
    for n, r in data:
        where = f"{spec.path}:{n}"
        label = SYNONYMS.get(r["label"].lower())
        reason = "" if label else f"unknown label {r['label']!r} (allowed: {sorted(SYNONYMS)})"
        rows.add(where, r["path"], label, hint=_hint(spec, r.get("split", ""), FOLDER_SPLIT_MAP, where), reason=reason)
    return rows.frame()


def _decode_fer_pixels(text: str) -> np.ndarray | None:
    try:
        px = np.array(text.split(), dtype=np.int64)
    except ValueError:
        return None
    if px.size != 48 * 48 or px.min(initial=0) < 0 or px.max(initial=0) > 255:
        return None
    return px.astype(np.uint8).reshape(48, 48)


@ADAPTERS.register("fer2013_csv")
def fer2013_csv_adapter(spec: SourceSpec) -> pd.DataFrame:
    """``emotion,pixels,Usage``: each row becomes a 48x48 PNG held in memory (``data`` column).

    Nothing is written here: :func:`write_generated` stores the PNGs in the image folder once the ingest gate has
    passed. A row repeating an earlier one (same emotion, pixels and Usage) is dropped, naming both lines.
    """
    rows = _Rows(spec)
    first_line: dict[str, int] = {}
    for n, r in read_csv_rows(spec.path, ("emotion", "pixels", "Usage")):
        where = f"{spec.path}:{n}"
        label, reason = _label(FER2013_LABELS, int(r["emotion"]) if r["emotion"].isdigit() else r["emotion"])
        hint = _hint(spec, r["usage"], USAGE_SPLIT_MAP, where)
        name = f"row{n:06d}.png"
        key = sha256_bytes(f"{r['emotion']}|{r['usage']}|{' '.join(r['pixels'].split())}".encode())
        if key in first_line:
            rows.add(where, name, label, hint=hint, status="dropped",
                     reason=f"duplicate row: line {n} repeats line {first_line[key]} (same emotion, pixels, Usage)")
            continue
        first_line[key] = n
        img = _decode_fer_pixels(r["pixels"])
        if img is None:
            rows.add(where, name, label, hint=hint, status="rejected", reason="pixels are not 2304 integers in 0..255")
            continue
        _, buf = cv2.imencode(".png", img)
        rows.add(where, name, label, hint=hint, reason=reason, data=buf.tobytes())
    return rows.frame()


def place_generated(records: pd.DataFrame, out_dir: Path) -> pd.DataFrame:
    """Give rows whose adapter left the image folder to the ingest (``root == ""``) ``<out_dir>/<source>.images``."""
    unplaced = records["root"] == ""
    if not unplaced.any():
        return records
    df = records.copy()
    df.loc[unplaced, "root"] = [str(Path(out_dir) / f"{name}.images") for name in df.loc[unplaced, "source"]]
    return df


def write_generated(records: pd.DataFrame) -> int:
    """Write the in-memory images (``data``) of the good rows to their ``image_path``; call after the gate passed.

    Files already holding the same bytes are left alone, so a re-ingest rewrites nothing.

    Returns:
        The number of files written.
    """
    if "data" not in records.columns:
        return 0
    good = records[(records["status"] == "ok") & records["data"].map(lambda d: isinstance(d, bytes))]
    written = 0
    for path, data in zip(good["image_path"], good["data"], strict=True):
        target = Path(path)
        if target.is_file() and target.stat().st_size == len(data) and target.read_bytes() == data:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:  # rename-only atomicity: an fsync per 48x48 PNG would dominate
            tmp.write_bytes(data)
        written += 1
    return written


@ADAPTERS.register("ferplus_csv")
def ferplus_csv_adapter(spec: SourceSpec) -> pd.DataFrame:
    """FERPlus votes: argmax over the 7 classes, rows dominated by contempt/unknown/NF or ambiguous are dropped."""
    rows = _Rows(spec)
    cols = ("Usage", "Image name", *FERPLUS_VOTES, *FERPLUS_EXCLUDED)
    data = read_csv_rows(spec.path, cols)
    folders = {k.lower(): v for k, v in FERPLUS_FOLDERS.items()}
    _check_unique(spec.path, [(n, (r["usage"], r["image name"])) for n, r in data if r["image name"]])
    for n, r in data:
        where = f"{spec.path}:{n}"
        usage = r["usage"].lower()
        path = f"{folders.get(usage, r['usage'])}/{r['image name']}"
        try:
            votes = np.array([float(r[c.lower()]) for c in (*FERPLUS_VOTES, *FERPLUS_EXCLUDED)])
        except ValueError:
            rows.add(where, path, None, reason="vote counts are not numbers")
            continue
        hint = _hint(spec, r["usage"], USAGE_SPLIT_MAP, where)
        reason = _ferplus_drop_reason(r["image name"], votes, spec.max_entropy)
        label = list(FERPLUS_VOTES.values())[int(np.argmax(votes[:7]))]
        rows.add(where, path, label, hint=hint, status="dropped" if reason else "ok", reason=reason)
    return rows.frame()


def _ferplus_drop_reason(name: str, votes: np.ndarray, max_entropy: float) -> str:
    if not name:
        return "no image name (FERPlus excluded the image)"
    if votes.max() <= 0:
        return "no votes"
    top = int(np.argmax(votes))
    if top >= 7:
        return f"votes dominated by {FERPLUS_EXCLUDED[top - 7]}"
    seven = votes[:7]
    if (seven == seven.max()).sum() > 1:
        return "tied top votes"
    p = seven[seven > 0] / seven.sum()
    entropy = float(-(p * np.log(p)).sum())
    if entropy > max_entropy:
        return f"ambiguous votes (entropy {entropy:.2f} > {max_entropy:.2f} nats)"
    return ""


@ADAPTERS.register("rafdb_list")
def rafdb_list_adapter(spec: SourceSpec) -> pd.DataFrame:
    """RAF-DB ``list_patition_label.txt``: ``<name> <1..7>``; ``train_``/``test_`` name prefixes give split hints."""
    rows = _Rows(spec)
    data = read_csv_rows(spec.path, ("name", "label"), delimiter=None)
    _check_unique(spec.path, [(n, r["name"]) for n, r in data])
    for n, r in data:
        where = f"{spec.path}:{n}"
        label, reason = _label(RAFDB_LABELS, int(r["label"]) if r["label"].isdigit() else r["label"])
        prefix = r["name"].split("_", 1)[0].lower()
        hint = spec.split or {"train": "train", "test": "test"}.get(prefix)
        rows.add(where, r["name"], label, hint=hint, reason=reason)
    return rows.frame()


@ADAPTERS.register("affectnet_csv")
def affectnet_csv_adapter(spec: SourceSpec) -> pd.DataFrame:
    """AffectNet ``subDirectory_filePath, face_x.., expression``; contempt/none/uncertain/non-face dropped (counted)."""
    rows = _Rows(spec)
    cols = ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "expression")
    data = read_csv_rows(spec.path, cols)
    _check_unique(spec.path, [(n, r["subdirectory_filepath"]) for n, r in data])
    for n, r in data:
        where, path = f"{spec.path}:{n}", r["subdirectory_filepath"]
        try:
            code = int(r["expression"])
            bbox = [int(float(r[c])) for c in ("face_x", "face_y", "face_width", "face_height")]
        except ValueError:
            rows.add(where, path, None, reason="expression or face box is not a number")
            continue
        if code in AFFECTNET_DROPPED:
            rows.add(where, path, None, bbox=bbox, status="dropped", reason=f"label {AFFECTNET_DROPPED[code]}")
            continue
        label, reason = _label(AFFECTNET_LABELS, code)
        rows.add(where, path, label, bbox=bbox if bbox[2] > 0 and bbox[3] > 0 else None, reason=reason)
    return rows.frame()


@ADAPTERS.register("expw_list")
def expw_list_adapter(spec: SourceSpec) -> pd.DataFrame:
    """ExpW ``label.lst``: ``name face_id top left right bottom confidence label``; box → ``x, y, w, h``."""
    rows = _Rows(spec)
    cols = ("name", "face_id", "top", "left", "right", "bottom", "confidence", "label")
    data = read_csv_rows(spec.path, cols, delimiter=None)
    _check_unique(spec.path, [(n, (r["name"], r["face_id"])) for n, r in data])
    for n, r in data:
        where = f"{spec.path}:{n}"
        try:
            top, left, right, bottom = (int(r[c]) for c in ("top", "left", "right", "bottom"))
            code = int(r["label"])
        except ValueError:
            rows.add(where, r["name"], None, reason="face box or label is not an integer")
            continue
        label, reason = _label(EXPW_LABELS, code)
        if right <= left or bottom <= top:
            label, reason = None, f"empty face box top={top} left={left} right={right} bottom={bottom}"
        rows.add(where, r["name"], label, bbox=[left, top, right - left, bottom - top], reason=reason)
    return rows.frame()


def label_table(kind: str) -> dict[Any, str]:
    """The explicit source-label → canonical-class table of an adapter (documentation and tests)."""
    tables: dict[str, dict[Any, str]] = {
        "fer2013_csv": FER2013_LABELS, "rafdb_list": RAFDB_LABELS, "affectnet_csv": AFFECTNET_LABELS,
        "expw_list": EXPW_LABELS, "ferplus_csv": FERPLUS_VOTES, "folder": SYNONYMS, "csv": SYNONYMS,
    }  # fmt: skip
    table = tables[kind]
    if not set(table.values()) <= set(FER_CLASSES):
        raise DataIntegrityError(f"label table of {kind} maps outside the taxonomy")
    return table
