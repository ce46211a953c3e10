"""One test per bad input: the ingest gate fails naming the row and the reason, and nothing is written."""

from __future__ import annotations

import os
import struct
import zlib

import cv2
import numpy as np
import pytest

from fer_core.data.ingest import run_ingest
from fer_core.data.validate import inspect_bytes
from fer_core.errors import GateFailedError

from ._ingest_util import cfg, face, nothing_written, write_img


def _run_bad(tmp_path, make_bad) -> str:
    """A CSV source with two good images and one bad row made by ``make_bad(root) -> path as written``."""
    root = tmp_path / "data"
    write_img(root / "good1.png", face(1))
    write_img(root / "good2.png", face(2))
    bad = make_bad(root)
    (tmp_path / "labels.csv").write_text(f"path,label\ngood1.png,sad\ngood2.png,happy\n{bad},fear\n")
    out = tmp_path / "out"
    with pytest.raises(GateFailedError) as e:
        run_ingest(cfg(tmp_path / "labels.csv", out, kind="csv", image_root=root, max_bad_fraction=0.0))
    msg = str(e.value)
    assert "labels.csv:4" in msg and "1 of 3 rows are bad" in msg and "nothing was written" in msg
    assert nothing_written(out)
    return msg


def test_dotdot_escape(tmp_path):
    write_img(tmp_path / "outside.png", face(3))
    assert "escapes the declared root" in _run_bad(tmp_path, lambda root: "../outside.png")


def test_symlink_escape(tmp_path):
    write_img(tmp_path / "outside.png", face(3))

    def make(root):
        os.symlink(tmp_path / "outside.png", root / "link.png")
        return "link.png"

    assert "symlink escape" in _run_bad(tmp_path, make)


def test_missing_file(tmp_path):
    assert "file not found" in _run_bad(tmp_path, lambda root: "nope.png")


def test_zero_byte(tmp_path):
    def make(root):
        (root / "empty.jpg").write_bytes(b"")
        return "empty.jpg"

    assert "zero-byte file" in _run_bad(tmp_path, make)


def _truncated(root, ext):
    data = cv2.imencode(ext, face(4, 48))[1].tobytes()
    (root / f"cut{ext}").write_bytes(data[: len(data) * 2 // 3])
    return f"cut{ext}"


def test_truncated_jpeg(tmp_path):
    assert "truncated JPEG" in _run_bad(tmp_path, lambda root: _truncated(root, ".jpg"))


def test_truncated_png(tmp_path):
    assert "truncated PNG" in _run_bad(tmp_path, lambda root: _truncated(root, ".png"))


def test_non_image_with_jpg_extension(tmp_path):
    def make(root):
        (root / "fake.jpg").write_text("this is a text file, not a JPEG\n")
        return "fake.jpg"

    assert "not a recognised image format" in _run_bad(tmp_path, make)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_decompression_bomb_refused_from_header(tmp_path):
    def make(root):  # a valid header claiming 50000x50000 grey, with one tiny IDAT: never decoded
        ihdr = struct.pack(">IIBBBBB", 50_000, 50_000, 8, 0, 0, 0, 0)
        png = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        (root / "bomb.png").write_bytes(png + _png_chunk(b"IEND", b""))
        return "bomb.png"

    assert "decompression bomb: header claims 50000x50000" in _run_bad(tmp_path, make)


@pytest.mark.parametrize("kind", ["gray16", "rgba", "palette", "gray"])
def test_special_pngs_are_handled(tmp_path, kind):
    from PIL import Image

    g = face(5, 40)
    path = tmp_path / f"{kind}.png"
    if kind == "gray16":
        cv2.imwrite(str(path), g.astype(np.uint16) * 257)
    elif kind == "rgba":
        cv2.imwrite(str(path), cv2.cvtColor(g, cv2.COLOR_GRAY2BGRA))
    elif kind == "palette":
        Image.fromarray(cv2.cvtColor(g, cv2.COLOR_GRAY2RGB)).convert("P", palette=Image.ADAPTIVE).save(path)
    else:
        cv2.imwrite(str(path), g)
    sid, w, h, dh, flags, reason, _ = inspect_bytes(path.read_bytes(), None, 32, 10_000_000)
    assert reason == "" and (w, h) == (40, 40) and flags == "" and len(sid) == 64
    _, _, _, dh_ref, _, _, _ = inspect_bytes(cv2.imencode(".png", g)[1].tobytes(), None, 32, 10_000_000)
    assert bin(dh ^ dh_ref).count("1") <= 4  # the same picture whatever the encoding


def test_quality_flags_blank_and_tiny():
    blank = cv2.imencode(".png", np.full((40, 40), 128, np.uint8))[1].tobytes()
    tiny = cv2.imencode(".png", face(6, 20))[1].tobytes()
    assert inspect_bytes(blank, None, 32, 10**7)[4] == "blank"
    assert inspect_bytes(tiny, None, 32, 10**7)[4] == "tiny"
