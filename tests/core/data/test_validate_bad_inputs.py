"""One test per bad input: the ingest gate fails naming the row and the reason, and nothing is written."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from fer_core.data.adapters import SourceSpec, collect_source
from fer_core.data.ingest import run_ingest
from fer_core.data.validate import inspect_bytes, require_regular_file
from fer_core.errors import DataIntegrityError, GateFailedError

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


def test_fifo_named_like_an_image_is_refused_by_type(tmp_path):
    def make(root):
        os.mkfifo(root / "pipe.png")
        return "pipe.png"

    assert "a FIFO (named pipe), not a regular file" in _run_bad(tmp_path, make)  # and it did not block


def test_require_regular_file_names_the_type(tmp_path):
    os.mkfifo(tmp_path / "p.csv")
    with pytest.raises(DataIntegrityError, match=r"p\.csv is a FIFO"):
        require_regular_file(tmp_path / "p.csv", what="label file")
    with pytest.raises(DataIntegrityError, match="is a folder"):
        require_regular_file(tmp_path)
    with pytest.raises(DataIntegrityError, match="does not exist"):
        require_regular_file(tmp_path / "nope")
    assert require_regular_file(write_img(tmp_path / "a.png", face(1))).st_size > 0


def test_sub_minimum_image_rejected_tiny_one_flagged(tmp_path):
    root = tmp_path / "data"
    for i, cls in enumerate(("happy", "sad", "fear")):
        write_img(root / cls / "a.png", face(10 + i))
    write_img(root / "happy" / "dot.png", face(20)[:1, :1])
    write_img(root / "sad" / "small.png", face(21, 20))  # 20 px: between reject_side 8 and min_side 32
    with pytest.raises(GateFailedError, match=r"happy/dot\.png: image is 1x1 px, below the minimum side 8"):
        run_ingest(cfg(root, tmp_path / "out", max_bad_fraction=0.0))
    res = run_ingest(cfg(root, tmp_path / "out2", max_bad_fraction=0.5))
    kept = pd.read_parquet(res.index_path)
    assert kept.loc[kept["flags"] == "tiny", "image_path"].str.endswith("sad/small.png").tolist() == [True]
    assert not kept["image_path"].str.endswith("dot.png").any()


@pytest.mark.parametrize(("raw", "shown"), [(b"a\nb.png", "a\\nb.png"), (b"caf\xff.png", "caf\\xff.png"),
                                            (b"x\x1b[31m.png", "x\\x1b[31m.png")])  # fmt: skip
def test_bad_file_names_refused_and_escaped(tmp_path, raw, shown):
    root = tmp_path / "data"
    for i, cls in enumerate(("happy", "sad")):
        write_img(root / cls / "a.png", face(30 + i))
    write_img(Path(os.fsdecode(bytes(root / "happy") + b"/" + raw)), face(40))
    df = collect_source(SourceSpec(kind="folder", path=root))
    bad = df[df["status"] == "rejected"]
    assert bad["where"].tolist() == [f"happy/{shown}"]
    assert shown in bad["reason"].iat[0] and "rename the file" in bad["reason"].iat[0]
    assert bad["where"].iat[0].isprintable()


def test_empty_class_folder_named_and_empty_sources_refused(tmp_path):
    root = tmp_path / "data"
    write_img(root / "happy" / "a.png", face(50))
    (root / "disgust").mkdir()
    df = collect_source(SourceSpec(kind="folder", path=root))
    assert df.loc[df["status"] == "dropped", ["where", "reason"]].values.tolist() == [
        ["disgust/", "empty class folder: no files in it"]]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataIntegrityError, match="yields no image: no class folder holds an image file"):
        collect_source(SourceSpec(kind="folder", path=tmp_path / "empty"))
    (tmp_path / "h.csv").write_text("path,label\n")
    with pytest.raises(DataIntegrityError, match="yields no image: no data rows"):
        collect_source(SourceSpec(kind="csv", path=tmp_path / "h.csv"))


def test_empty_frames_validate_without_numpy_errors():
    from fer_core.data.adapters import RECORD_COLUMNS
    from fer_core.data.validate import validate_records

    out = validate_records(pd.DataFrame(columns=list(RECORD_COLUMNS)), workers=1)
    assert out.empty and "sample_id" in out.columns


def test_fer2013_duplicate_row_names_both_lines_and_nothing_is_written_before_the_gate(tmp_path):
    px = " ".join(str(v) for v in face(3, 48).ravel())
    src = tmp_path / "src"
    src.mkdir()
    (src / "fer.csv").write_text(f"emotion,pixels,Usage\n3,{px},Training\n3,{px},Training\n4,1 2,Training\n")
    out = tmp_path / "out"
    with pytest.raises(GateFailedError, match=r"fer\.csv:4: pixels are not 2304"):
        run_ingest(cfg(src / "fer.csv", out, kind="fer2013_csv", max_bad_fraction=0.0))
    assert sorted(p.name for p in src.iterdir()) == ["fer.csv"] and nothing_written(out)
    res = run_ingest(cfg(src / "fer.csv", out, kind="fer2013_csv", max_bad_fraction=0.5, fractions=(1, 0, 0)))
    dropped = pd.read_csv(out / "dropped_rows.csv")
    assert dropped["reason"].tolist() == ["duplicate row: line 3 repeats line 2 (same emotion, pixels, Usage)"]
    assert sorted(p.name for p in src.iterdir()) == ["fer.csv"]  # the PNGs live in the output folder
    assert pd.read_parquet(res.index_path)["image_path"].tolist() == [str(out / "fer2013_csv.images/row000002.png")]
