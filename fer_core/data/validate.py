"""Validation: root containment, existence, header-first bomb check, strict decode, SHA-256, dHash and quality flags.

Each file is read once; hashing and decoding work on the bytes in memory. Many files go through a process pool in
chunks. A cache keyed by ``(path, size, mtime_ns)`` lets a warm re-validation only ``stat`` unchanged files.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat as stat_mod
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from fer_core.preprocess import to_uint8

DEFAULT_MAX_PIXELS = 50_000_000
BLANK_STD = 2.0
_CHUNK = 512
_INLINE_BELOW = 2_000  # a pool costs more than it saves on small sources
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
VALIDATED_COLUMNS: tuple[str, ...] = ("image_path", "sample_id", "width", "height", "dhash", "dhash_v", "flags")

# (sample_id, width, height, dhash, flags, reason, size, mtime_ns, dhash_v); reason "" when the file is good.
Result = tuple[str, int, int, int, str, str, int, int, int]
ProgressFn = Callable[[str, int, int], None]


def dhash64(gray: np.ndarray) -> int:
    """64-bit difference hash: resize to 9x8 (INTER_AREA), bit = pixel brighter than its left neighbour.

    Args:
        gray: uint8 ``[H, W]``.

    Returns:
        The hash as a Python int in ``[0, 2**64)`` (row-major bits, most significant first).
    """
    small = cv2.resize(gray, (9, 8), interpolation=cv2.INTER_AREA)
    bits = (small[:, 1:] > small[:, :-1]).ravel()
    return int(np.packbits(bits).view(">u8")[0])


def _jpeg_info(data: bytes) -> tuple[int, int, int] | None:
    """``(width, height, offset of the first SOS)`` from the JPEG markers, or ``None`` when malformed."""
    i, n, size = 2, len(data), None
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):
            i += 2
            continue
        seg = int.from_bytes(data[i + 2 : i + 4], "big")
        if marker in _JPEG_SOF and i + 9 <= n:
            size = (int.from_bytes(data[i + 7 : i + 9], "big"), int.from_bytes(data[i + 5 : i + 7], "big"))
        if marker == 0xDA:
            return (*size, i) if size else None
        i += 2 + seg
    return None


def header_size(data: bytes) -> tuple[int, int, str] | str:
    """Image dimensions from the header alone (no pixel decoding): ``(width, height, format)`` or a rejection reason."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        if data[12:16] != b"IHDR":
            return "PNG without an IHDR header"
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big"), "png"
    if data[:3] == b"\xff\xd8\xff":
        info = _jpeg_info(data)
        if info is None:
            return "truncated or malformed JPEG (no frame header before the image data)"
        if data.rfind(b"\xff\xd9") < info[2]:  # FFD9 cannot occur inside entropy-coded data (FF is stuffed)
            return "truncated JPEG (no end-of-image marker FFD9 after the image data)"
        return info[0], info[1], "jpeg"
    from PIL import Image  # lazily: only formats other than JPEG/PNG need it

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                return im.size[0], im.size[1], (im.format or "unknown").lower()
    except Image.DecompressionBombError:
        return "decompression bomb: header dimensions exceed Pillow's hard limit"
    except Exception as e:  # noqa: BLE001 - any Pillow failure means "not an image we can read"
        return f"not a recognised image format ({type(e).__name__})"


def _bad(w: int, h: int, reason: str) -> tuple[str, int, int, int, str, str, int]:
    return "", w, h, 0, "", reason, 0


def inspect_bytes(
    data: bytes, bbox: Iterable[int] | None, min_side: int, max_pixels: int
) -> tuple[str, int, int, int, str, str, int]:
    """Check one file's bytes.

    Returns:
        ``(sample_id, width, height, dhash, flags, reason, dhash_v)``; ``reason`` is ``""`` for a good image, else
        why it is rejected (then the other fields are placeholders). ``dhash_v`` is the dHash of the transposed
        image (vertical gradients), the second opinion that confirms near-duplicate candidates.
    """
    if not data:
        return _bad(0, 0, "zero-byte file")
    head = header_size(data)
    if isinstance(head, str):
        return _bad(0, 0, head)
    w, h, fmt = head
    if w * h > max_pixels:
        return _bad(w, h, f"decompression bomb: header claims {w}x{h} = {w * h} pixels > max_pixels {max_pixels}")
    if fmt == "png" and data.rfind(b"IEND") < 0:
        return _bad(w, h, "truncated PNG (no IEND chunk)")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        return _bad(w, h, f"cannot decode the {fmt} data (corrupt or not an image)")
    img = to_uint8(img)
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2GRAY if img.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
    sample_id = hashlib.sha256(data).hexdigest()
    if bbox is not None:
        x, y, bw, bh = (int(v) for v in bbox)
        x0, y0, x1, y1 = max(0, x), max(0, y), min(img.shape[1], x + bw), min(img.shape[0], y + bh)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return _bad(w, h, f"face box {[x, y, bw, bh]} lies outside the {img.shape[1]}x{img.shape[0]} image")
        img = img[y0:y1, x0:x1]
        # several faces of one photo must not share a content address: the box is part of the sample's identity
        sample_id = hashlib.sha256(f"{sample_id}#{x},{y},{bw},{bh}".encode()).hexdigest()
    flags = []
    if float(img.std()) < BLANK_STD:
        flags.append("blank")
    if min(img.shape[:2]) < min_side:
        flags.append("tiny")
    dh, dv = dhash64(img), dhash64(np.ascontiguousarray(img.T))
    return sample_id, int(img.shape[1]), int(img.shape[0]), dh, ",".join(flags), "", dv


_SPECIAL: tuple[tuple[Callable[[int], bool], str], ...] = (
    (stat_mod.S_ISFIFO, "a FIFO (named pipe)"), (stat_mod.S_ISSOCK, "a socket"),
    (stat_mod.S_ISCHR, "a character device"), (stat_mod.S_ISBLK, "a block device"), (stat_mod.S_ISDIR, "a folder"),
)  # fmt: skip


def special_file_reason(mode: int) -> str:
    """Why a file of this ``st_mode`` is refused (a FIFO, socket, device or folder), or ``""`` for a regular file."""
    if stat_mod.S_ISREG(mode):
        return ""
    kind = next((name for test, name in _SPECIAL if test(mode)), f"a special file (mode {oct(mode)})")
    return f"{kind}, not a regular file: opening it could block forever; remove it from the data folder"


def require_regular_file(path: str | os.PathLike[str], what: str = "file") -> os.stat_result:
    """Refuse a missing path or anything but a regular file (symlinks followed) by its type, without opening it.

    A FIFO named like an image would block the first ``open`` forever; a device could stream without end.

    Args:
        path: the file to check.
        what: how the message names it (``"image"``, ``"log"``, ...).

    Returns:
        Its ``os.stat`` result.

    Raises:
        DataIntegrityError: naming the (escaped) path and its type.
    """
    from fer_core.errors import DataIntegrityError, printable

    name = printable(os.fspath(path))
    try:
        st = os.stat(path)
    except FileNotFoundError as e:
        raise DataIntegrityError(f"{what} {name} does not exist; check the path", [(name, "not found")]) from e
    except OSError as e:
        raise DataIntegrityError(f"cannot stat {what} {name}: {e.strerror or e}", [(name, "unreadable")]) from e
    reason = special_file_reason(st.st_mode)
    if reason:
        raise DataIntegrityError(f"{what} {name} is {reason}", [(name, reason.split(":", 1)[0])])
    return st


def read_regular_file(path: str) -> tuple[bytes, os.stat_result] | str:
    """The bytes and ``stat`` of a regular file, or why it cannot be read; never blocks on a FIFO or device.

    The type is checked before opening, and again on the open descriptor (``O_NONBLOCK``: a FIFO swapped in between
    opens without waiting for a writer and is then refused by type).
    """
    try:
        reason = special_file_reason(os.stat(path).st_mode)
        if reason:
            return reason
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return "file not found"
    except OSError as e:
        return f"cannot read: {e.strerror or e}"
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        reason = special_file_reason(st.st_mode)
        if reason:
            return reason
        try:
            return f.read(), st
        except OSError as e:
            return f"cannot read: {e.strerror or e}"


def inspect_file(path: str, bbox: Iterable[int] | None, min_side: int, max_pixels: int) -> Result:
    """Read ``path`` once and :func:`inspect_bytes` it; also returns ``(size, mtime_ns)`` for the warm cache."""
    got = read_regular_file(path)
    if isinstance(got, str):
        return ("", 0, 0, 0, "", got, 0, 0, 0)
    data, st = got
    r = inspect_bytes(data, bbox, min_side, max_pixels)
    return (*r[:6], st.st_size, st.st_mtime_ns, r[6])


def _inspect_chunk(items: list[tuple[str, object]], min_side: int, max_pixels: int) -> list[Result]:
    return [inspect_file(p, b, min_side, max_pixels) for p, b in items]


def inspect_many(
    items: list[tuple[str, object]], *, min_side: int, max_pixels: int, workers: int | None = None,
    progress: ProgressFn | None = None,
) -> list[Result]:  # fmt: skip
    """:func:`inspect_file` over ``(path, bbox)`` items, in a process pool (chunks of 512) when there are many."""
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or len(items) < _INLINE_BELOW:
        out = _inspect_chunk(items, min_side, max_pixels)
        if progress:
            progress("validate", len(items), len(items))
        return out
    chunks = [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]
    out: list[Result] = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for part in pool.map(_inspect_chunk, chunks, [min_side] * len(chunks), [max_pixels] * len(chunks)):
            out.extend(part)
            if progress:
                progress("validate", len(out), len(items))
    return out


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def resolve_path(path: str, root: str) -> tuple[str, str]:
    """Resolve a source path against its declared root.

    Returns:
        ``(real_path, reason)``; ``reason`` is ``""`` when the path stays inside the root, else names the escape.
    """
    root_abs = os.path.abspath(root)
    joined = os.path.normpath(os.path.join(root_abs, path))
    if not _inside(joined, root_abs):
        return joined, f"path {path!r} escapes the declared root {root_abs} ('..' or absolute path outside it)"
    real, root_real = os.path.realpath(joined), os.path.realpath(root_abs)
    if not _inside(real, root_real):
        return real, f"path {path!r} is a symlink escape: resolves to {real}, outside the declared root {root_real}"
    return real, ""


def cache_key(path: str, bbox: object) -> str:
    """Warm-cache key of one record: the real path, plus the face box when there is one."""
    return path if bbox is None else path + "#" + ",".join(str(int(v)) for v in bbox)  # type: ignore[union-attr]


def validate_records(
    records: pd.DataFrame, *, min_side: int = 32, max_pixels: int = DEFAULT_MAX_PIXELS, workers: int | None = None,
    cache: pd.DataFrame | None = None, progress: ProgressFn | None = None, reject_side: int = 0,
) -> pd.DataFrame:  # fmt: skip
    """Validate every ``status == "ok"`` record; failing rows become ``"rejected"`` with their reason.

    Args:
        records: frame with ``path``, ``root``, ``bbox``, ``status``, ``reason`` (see ``adapters.RECORD_COLUMNS``);
            an optional ``data`` column holds the bytes of images an adapter generated in memory (FER2013 CSV rows),
            checked from memory because their files are written only after the gate.
        min_side: images whose shorter side is below this get the ``tiny`` flag.
        max_pixels: header-claimed pixel counts above this are refused before any decoding.
        workers: process count (default: all cores).
        cache: a previous run's :func:`cache_frame`; unchanged files (same size and mtime_ns) are only stat'ed.
        progress: ``progress(stage, done, total)``.
        reject_side: images whose shorter side is below this are rejected (0: none); those between it and
            ``min_side`` are kept and flagged ``tiny``.

    Returns:
        A copy of ``records`` with :data:`VALIDATED_COLUMNS` added.
    """
    df = records.copy()
    resolved = [resolve_path(p, r) for p, r in zip(df["path"], df["root"], strict=True)]
    df["image_path"] = [r for r, _ in resolved]
    escape = np.array([bool(reason) for _, reason in resolved], dtype=bool)
    ok = (df["status"] == "ok").to_numpy(dtype=bool)
    df.loc[ok & escape, "status"] = "rejected"
    df.loc[ok & escape, "reason"] = [reason for (_, reason), e in zip(resolved, ok & escape, strict=True) if e]
    todo = np.flatnonzero(ok & ~escape)
    results: list[Result | None] = [None] * len(df)
    data = df["data"].tolist() if "data" in df.columns else [None] * len(df)
    in_memory = [i for i in todo if isinstance(data[i], bytes)]
    for i in in_memory:
        r = inspect_bytes(data[i], df["bbox"].iat[i], min_side, max_pixels)
        results[i] = (*r[:6], len(data[i]), 0, r[6])
    cached = _cache_dict(cache)
    missing = []
    for i in todo:
        if results[i] is not None:
            continue
        path, bbox = df["image_path"].iat[i], df["bbox"].iat[i]
        hit = cached.get(cache_key(path, bbox))
        if hit is not None:
            try:
                st = os.stat(path)
            except OSError:
                st = None
            if st is not None and (st.st_size, st.st_mtime_ns) == hit[6:8]:
                results[i] = hit
                continue
        missing.append(i)
    fresh = inspect_many([(df["image_path"].iat[i], df["bbox"].iat[i]) for i in missing], min_side=min_side,
                         max_pixels=max_pixels, workers=workers, progress=progress)  # fmt: skip
    for i, r in zip(missing, fresh, strict=True):
        results[i] = r
    _fill(df, results)
    if reject_side > 0:
        _reject_small(df, reject_side)
    return df


def _reject_small(df: pd.DataFrame, reject_side: int) -> None:
    """Reject good rows whose shorter side is below ``reject_side`` (cached rows included), naming the size."""
    side = np.minimum(df["width"].to_numpy(), df["height"].to_numpy())
    small = (df["status"] == "ok").to_numpy(dtype=bool) & (side < reject_side)
    if small.any():
        df.loc[small, "status"] = "rejected"
        df.loc[small, "reason"] = [
            f"image is {w}x{h} px, below the minimum side {reject_side} (reject_side); remove it or lower reject_side"
            for w, h in zip(df.loc[small, "width"], df.loc[small, "height"], strict=True)
        ]


def _fill(df: pd.DataFrame, results: list[Result | None]) -> None:
    blank: Result = ("", 0, 0, 0, "", "", 0, 0, 0)
    rows = [r if r is not None else blank for r in results]
    df["sample_id"] = [r[0] for r in rows]
    df["width"] = np.array([r[1] for r in rows], dtype=np.int32)
    df["height"] = np.array([r[2] for r in rows], dtype=np.int32)
    df["dhash"] = np.array([r[3] for r in rows], dtype=np.uint64)
    df["dhash_v"] = np.array([r[8] for r in rows], dtype=np.uint64)
    df["flags"] = [r[4] for r in rows]
    df["_size"] = np.array([r[6] for r in rows], dtype=np.int64)
    df["_mtime_ns"] = np.array([r[7] for r in rows], dtype=np.int64)
    bad = np.array([bool(r[5]) for r in rows], dtype=bool)
    df.loc[bad, "status"] = "rejected"
    df.loc[bad, "reason"] = [r[5] for r in rows if r[5]]


def cache_frame(validated: pd.DataFrame) -> pd.DataFrame:
    """The warm-validation cache of good rows: key, size, mtime_ns and the derived fields."""
    good = validated[(validated["status"] == "ok") & (validated["sample_id"] != "")]
    keys = [cache_key(p, b) for p, b in zip(good["image_path"], good["bbox"], strict=True)]
    return pd.DataFrame({
        "key": keys, "sample_id": good["sample_id"].to_numpy(), "width": good["width"].to_numpy(),
        "height": good["height"].to_numpy(), "dhash": good["dhash"].to_numpy(np.uint64),
        "dhash_v": good["dhash_v"].to_numpy(np.uint64),
        "flags": good["flags"].to_numpy(), "size": good["_size"].to_numpy(), "mtime_ns": good["_mtime_ns"].to_numpy(),
    })  # fmt: skip


def _cache_dict(cache: pd.DataFrame | None) -> dict[str, Result]:
    if cache is None or cache.empty:
        return {}
    names = ("sample_id", "width", "height", "dhash", "flags", "size", "mtime_ns", "dhash_v")
    cols = [cache[c].tolist() for c in names]
    keys = cache["key"].tolist()
    return {k: (s, w, h, d, f, "", z, m, v) for k, s, w, h, d, f, z, m, v in zip(keys, *cols, strict=True)}


def write_cache(cache: pd.DataFrame, path: Path) -> None:
    """Store the cache atomically (Parquet) beside the index."""
    from fer_core.io import atomic_path

    with atomic_path(path) as tmp:
        cache.to_parquet(tmp, index=False)
