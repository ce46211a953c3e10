"""Source adapters parse tiny hand-written files of each format; CSV robustness errors name the file and row."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fer_core.data.adapters import (
    ADAPTERS,
    FER2013_LABELS,
    RAFDB_LABELS,
    SourceSpec,
    collect_source,
    label_table,
)  # fmt: skip
from fer_core.errors import ConfigError, DataIntegrityError
from fer_core.taxonomy import FER_CLASSES

from ._ingest_util import face, write_img


def _ok(df):
    return df[df["status"] == "ok"]


def test_every_adapter_registered_with_a_table_inside_the_taxonomy():
    assert set(ADAPTERS.names()) == {"affectnet_csv", "csv", "expw_list", "fer2013_csv", "ferplus_csv", "folder",
                                     "rafdb_list"}  # fmt: skip
    for kind in ADAPTERS:
        assert set(label_table(kind).values()) <= set(FER_CLASSES)
    assert RAFDB_LABELS[1] == "surprise" and RAFDB_LABELS[4] == "happy" and RAFDB_LABELS[7] == "neutral"
    assert FER2013_LABELS[1] == "disgust" and FER2013_LABELS[6] == "neutral"
    with pytest.raises(ConfigError, match="valid"):
        ADAPTERS.get("nope")


def test_folder_split_layout_synonyms_and_hints(tmp_path):
    for split, cls in (("train", "Happiness"), ("validation", "ANGER"), ("train", "sad")):
        write_img(tmp_path / split / cls / "a.png", face(1))
    (tmp_path / "train" / "sad" / "notes.txt").write_text("x")
    df = collect_source(SourceSpec(kind="folder", path=tmp_path))
    ok = _ok(df).set_index("path")
    assert ok.loc["train/Happiness/a.png", ["label", "split_hint"]].tolist() == ["happy", "train"]
    assert ok.loc["validation/ANGER/a.png", ["label", "split_hint"]].tolist() == ["angry", "test"]
    dropped = df[df["status"] == "dropped"]
    assert dropped["path"].tolist() == ["train/sad/notes.txt"]


def test_folder_unknown_class_rows_are_rejected_with_reason(tmp_path):
    write_img(tmp_path / "contempt" / "a.png", face(1))
    df = collect_source(SourceSpec(kind="folder", path=tmp_path))
    assert df["status"].tolist() == ["rejected"]
    assert "unknown label folder 'contempt'" in df["reason"].iat[0]


def test_fer2013_csv_decodes_pixels_to_png_cache(tmp_path):
    px = " ".join(str(v) for v in face(3, 48).ravel())
    (tmp_path / "fer.csv").write_text(
        f"emotion,pixels,Usage\n1,{px},Training\n6,{px},PrivateTest\n3,1 2 3,PublicTest\n"
    )
    df = collect_source(SourceSpec(kind="fer2013_csv", path=tmp_path / "fer.csv"))
    assert df["label"].tolist() == ["disgust", "neutral", "happy"]
    assert df["split_hint"].tolist() == ["train", "test", "val"]
    assert df["status"].tolist() == ["ok", "ok", "rejected"]
    assert df["where"].iat[2].endswith("fer.csv:4")
    # nothing beside the source: the PNGs wait in memory until the ingest gate passes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fer.csv"]
    png = cv2.imdecode(np.frombuffer(df["data"].iat[0], np.uint8), cv2.IMREAD_UNCHANGED)
    assert png.shape == (48, 48) and (png == face(3, 48)).all()


def test_ferplus_argmax_entropy_and_counted_drops(tmp_path):
    head = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n"
    rows = [
        "Training,a.png,0,9,1,0,0,0,0,0,0,0",  # happy
        "Training,b.png,0,0,0,0,0,0,0,8,2,0",  # contempt dominates -> dropped
        "PublicTest,c.png,2,2,2,2,1,1,0,0,0,0",  # tie -> dropped
        "PrivateTest,d.png,3,2,2,2,1,0,0,0,0,0",  # too flat -> dropped by entropy
        "Training,,5,5,0,0,0,0,0,0,0,0",  # no image
    ]
    (tmp_path / "fer2013new.csv").write_text(head + "\n".join(rows) + "\n")
    df = collect_source(SourceSpec(kind="ferplus_csv", path=tmp_path / "fer2013new.csv"))
    assert _ok(df)[["path", "label", "split_hint"]].values.tolist() == [["FER2013Train/a.png", "happy", "train"]]
    reasons = df.loc[df["status"] == "dropped", "reason"].tolist()
    assert len(reasons) == 4 and "contempt" in reasons[0] and "tied" in reasons[1] and "entropy" in reasons[2]


def test_rafdb_list_order(tmp_path):
    (tmp_path / "list.txt").write_text("train_00001.jpg 1\ntrain_00002.jpg 4\ntest_0001.jpg 6\ntest_0002.jpg 9\n")
    df = collect_source(SourceSpec(kind="rafdb_list", path=tmp_path / "list.txt"))
    assert df["label"].tolist()[:3] == ["surprise", "happy", "angry"]
    assert df["split_hint"].tolist() == ["train", "train", "test", "test"]
    assert df["status"].iat[3] == "rejected" and "unknown label 9" in df["reason"].iat[3]


def test_affectnet_drops_counted_and_bbox(tmp_path):
    head = "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal\n"
    body = "1/a.jpg,1,2,30,31,,1,0,0\n1/b.jpg,0,0,10,10,,7,0,0\n1/c.jpg,0,0,10,10,,10,0,0\n"
    (tmp_path / "training.csv").write_text(head + body)
    df = collect_source(SourceSpec(kind="affectnet_csv", path=tmp_path / "training.csv", split="train"))
    assert _ok(df)[["label", "split_hint"]].values.tolist() == [["happy", "train"]]
    assert _ok(df)["bbox"].iat[0] == [1, 2, 30, 31]
    assert df.loc[df["status"] == "dropped", "reason"].tolist() == ["label contempt", "label non-face"]


def test_expw_box_conversion_and_faces_of_one_image(tmp_path):
    (tmp_path / "label.lst").write_text("a.jpg 0 10 20 70 90 50.1 3\na.jpg 1 5 5 25 25 40.0 1\n")
    df = collect_source(SourceSpec(kind="expw_list", path=tmp_path / "label.lst"))
    assert df["label"].tolist() == ["happy", "disgust"]
    assert df["bbox"].tolist() == [[20, 10, 50, 80], [5, 5, 20, 20]]


def test_generic_csv_bom_crlf_and_split(tmp_path):
    (tmp_path / "l.csv").write_bytes(b"\xef\xbb\xbfpath,label,split\r\nx/a.png,Fearful,train\r\nx/b.png,sad,test\r\n")
    df = collect_source(SourceSpec(kind="csv", path=tmp_path / "l.csv"))
    assert df[["path", "label", "split_hint"]].values.tolist() == [
        ["x/a.png", "fear", "train"],
        ["x/b.png", "sad", "test"],
    ]


def test_generic_csv_unknown_label_is_a_rejected_row(tmp_path):
    (tmp_path / "l.csv").write_text("path,label\na.png,sad\nb.png,bored\n")
    df = collect_source(SourceSpec(kind="csv", path=tmp_path / "l.csv"))
    assert df["status"].tolist() == ["ok", "rejected"]
    assert df["where"].iat[1].endswith("l.csv:3") and "unknown label 'bored'" in df["reason"].iat[1]


def test_csv_missing_column_names_file_and_column(tmp_path):
    (tmp_path / "l.csv").write_text("path,lbl\na.png,sad\n")
    with pytest.raises(DataIntegrityError, match=r"l\.csv: missing column\(s\) \['label'\]"):
        collect_source(SourceSpec(kind="csv", path=tmp_path / "l.csv"))


def test_csv_non_utf8_path_names_row(tmp_path):
    (tmp_path / "l.csv").write_bytes(b"path,label\na.png,sad\nb\xe9.png,sad\n")
    with pytest.raises(DataIntegrityError, match=r"l\.csv:3: bytes .* not UTF-8") as e:
        collect_source(SourceSpec(kind="csv", path=tmp_path / "l.csv"))
    assert e.value.problems == [(f"{tmp_path / 'l.csv'}:3", "non-UTF-8 bytes")]


def test_csv_duplicate_rows_name_both_rows(tmp_path):
    (tmp_path / "l.csv").write_text("path,label\na.png,sad\nb.png,sad\na.png,happy\n")
    with pytest.raises(DataIntegrityError, match="duplicate") as e:
        collect_source(SourceSpec(kind="csv", path=tmp_path / "l.csv"))
    assert e.value.problems == [(f"{tmp_path / 'l.csv'}:4", "duplicate of row 2 ('a.png')")]
