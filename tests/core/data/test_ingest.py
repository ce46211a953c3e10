"""Provenance and splits keep groups together; the gate passes below threshold; the index refuses tampering."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from fer_core.data.adapters import SourceSpec
from fer_core.data.index import read_index, revalidate_index
from fer_core.data.ingest import IngestConfig, build_index, collect_records, group_step, run_ingest, validate_step
from fer_core.data.provenance import original_path
from fer_core.data.schema import INDEX_COLUMNS
from fer_core.errors import DataIntegrityError

from ._ingest_util import cfg, face, folder_dataset, write_img

FER2013 = Path("/work/shared/data/fer2013")


def test_original_path_of_augmented_names():
    assert original_path("/d/disgust/Training_1.jpg3.jpg") == "/d/disgust/Training_1.jpg"
    assert original_path("/d/disgust/Training_1.jpg") is None


def _provenance_tree(root: Path) -> None:
    """train: an original with 2 copies, an orphan copy; test: a near-duplicate of the train original."""
    img = face(7, 40)
    write_img(root / "train" / "sad" / "o.png", img)
    write_img(root / "train" / "sad" / "o.png0.png", cv2.flip(img, 1))
    write_img(root / "train" / "sad" / "o.png1.png", np.rot90(img).copy())
    write_img(root / "train" / "sad" / "gone.png0.png", face(8, 40))
    near = img.astype(np.int16)
    near[0, 0] += 3
    write_img(root / "validation" / "sad" / "near.png", near.clip(0, 255).astype(np.uint8))
    write_img(root / "validation" / "sad" / "dup.png", img)  # exact duplicate of the original
    for i in range(12):
        write_img(root / "train" / ("happy" if i % 2 else "sad") / f"x{i}.png", face(100 + i, 40))


def test_provenance_groups_and_leakage(tmp_path):
    _provenance_tree(tmp_path / "d")
    res = run_ingest(cfg(tmp_path / "d", tmp_path / "out", val_fraction=0.2, derived_copies="keep"))
    idx = read_index(res.index_path)
    idx.index = idx["image_path"].map(lambda p: Path(p).name)
    # o.png (train) has the same bytes as the held-out dup.png: the held-out copy is kept, the train one dropped;
    # its derived copies (train) join the held-out group and are dropped, never moved into test
    assert idx.loc[["dup.png", "near.png"], "split"].eq("test").all()
    assert idx.loc["dup.png", "group_id"] == idx.loc["near.png", "group_id"]
    assert not {"o.png", "o.png0.png", "o.png1.png"} & set(idx.index)
    assert idx.loc["gone.png0.png", "origin"] == "augmented" and pd.isna(idx.loc["gone.png0.png", "parent_id"])
    assert idx.loc["gone.png0.png", "split"] in {"train", "val"}
    f = res.report["findings"]
    assert f["exact_duplicates"] == 1 and f["augmented_copies_matched"] == 2
    assert f["augmented_copies_missing_original"] == 1 and f["missing_originals"][0].endswith("gone.png")
    assert f["leakage_prevented"] == 2  # o.png's two copies dropped from train (not moved to test)
    assert f["duplicates_of_held_out_dropped"] == {"exact": {"train": 1}, "near": {"train": 2}}
    leak = pd.read_csv(tmp_path / "out" / "leakage.csv")
    assert set(leak["from_split"]) == {"train"} and set(leak["to_split"]) == {"dropped"}
    assert set(idx["split"]) == {"train", "val", "test"}
    assert idx.groupby("group_id")["split"].nunique().max() == 1


def test_gate_passes_below_threshold_and_reports_rejected_rows(tmp_path):
    root = folder_dataset(tmp_path / "d", per_class=5)
    (root / "sad" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    res = run_ingest(cfg(root, tmp_path / "out", max_bad_fraction=0.2))
    assert len(read_index(res.index_path)) == 10
    rej = res.report["findings"]["rejected_rows"]
    assert rej == [{"where": "sad/broken.jpg", "reason": rej[0]["reason"]}] and "JPEG" in rej[0]["reason"]
    csv = pd.read_csv(tmp_path / "out" / "rejected_rows.csv")
    assert csv["where"].tolist() == ["sad/broken.jpg"]
    balance = json.loads((tmp_path / "out" / "report.json").read_text())["balance"]
    assert balance["counts"]["all"]["sad"] == 5 and balance["imbalance_ratio"]["all"] == 1.0
    assert (tmp_path / "out" / "class_balance.png").read_bytes()[:4] == b"\x89PNG"


def test_index_refused_when_manifest_does_not_match(tmp_path):
    res = run_ingest(cfg(folder_dataset(tmp_path / "d"), tmp_path / "out"))
    df = read_index(res.index_path)
    assert list(df.columns) == list(INDEX_COLUMNS) and df["image_path"].map(lambda p: p.startswith("/")).all()
    assert len(read_index(res.index_path, verify=False)) == 4
    manifest = json.loads(res.manifest_path.read_text())
    manifest["counts"]["sad"]["train"] += 1
    res.manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(DataIntegrityError, match="counts differ from manifest"):
        read_index(res.index_path)
    res.index_path.write_bytes(res.index_path.read_bytes() + b"\0")
    with pytest.raises(DataIntegrityError, match="does not match its manifest: sha256"):
        read_index(res.index_path)
    res.manifest_path.unlink()
    with pytest.raises(DataIntegrityError, match="has no manifest"):
        read_index(res.index_path)


def test_revalidate_detects_changed_and_missing_files(tmp_path):
    root = folder_dataset(tmp_path / "d")
    res = run_ingest(cfg(root, tmp_path / "out"))
    assert revalidate_index(res.index_path) == []
    write_img(root / "sad" / "img0.png", face(999))
    (root / "happy" / "img1.png").unlink()
    problems = dict(revalidate_index(res.index_path))
    assert problems[str((root / "happy" / "img1.png").resolve())] == "file not found"
    assert problems[str((root / "sad" / "img0.png").resolve())].startswith("content changed")


def test_steps_are_dataframe_in_dataframe_out_through_parquet(tmp_path):
    c = cfg(folder_dataset(tmp_path / "d"), tmp_path / "out")
    recs = validate_step(collect_records(c.sources), c)
    recs.to_parquet(tmp_path / "r.parquet")
    again = group_step(pd.read_parquet(tmp_path / "r.parquet"), c.near_dup_hamming)
    assert (again["status"] == "ok").sum() == 4 and again["group_id"].str.len().eq(64).all()
    assert build_index(again.assign(split="train")).columns.tolist() == list(INDEX_COLUMNS)


@pytest.mark.skipif(not FER2013.is_dir(), reason="FER2013 folder absent")
def test_fer2013_subset_copies_stay_with_their_originals(tmp_path):
    src = FER2013 / "train" / "disgust"
    originals = sorted(p for p in src.glob("Training_*.jpg") if (src / (p.name + "0.jpg")).exists())[:3]
    others = sorted((FER2013 / "train" / "happy").glob("*.jpg"))[:6]
    test = sorted((FER2013 / "validation" / "happy").glob("*.jpg"))[:4]
    lines = ["path,label,split"]
    for o in originals:
        lines += [f"train/disgust/{p.name},disgust,train" for p in [o, *sorted(src.glob(o.name + "*.jpg"))]]
    lines += [f"train/happy/{p.name},happy,train" for p in others]
    lines += [f"validation/happy/{p.name},happy,test" for p in test]
    (tmp_path / "subset.csv").write_text("\n".join(dict.fromkeys(lines)) + "\n")
    c = IngestConfig(sources=[SourceSpec(kind="csv", path=tmp_path / "subset.csv", image_root=FER2013)],
                     out_dir=tmp_path / "out", workers=1, val_fraction=0.0, derived_copies="keep")  # fmt: skip
    idx = read_index(run_ingest(c).index_path)
    for o in originals:
        fam = idx[idx["image_path"].str.startswith(str(o.resolve()))]
        orig = fam[fam["origin"] == "original"]
        copies = fam[fam["origin"] == "augmented"]
        assert len(orig) == 1 and len(copies) >= 1
        assert (copies["parent_id"] == orig["sample_id"].iat[0]).all()
        assert fam["group_id"].nunique() == 1 and fam["split"].nunique() == 1
