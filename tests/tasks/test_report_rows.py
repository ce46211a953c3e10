"""The report evaluates on validation originals and held-out test originals only."""

import pandas as pd

from fer_core.data.adapters import SourceSpec
from tasks.report import _evaluation_rows, comparison_baseline


def test_evaluation_rows_keep_originals_and_drop_moved_rows():
    rows = pd.DataFrame([
        ("/d/train/happy/a.jpg", "train", "original"),
        ("/d/train/disgust/b.jpg3.jpg", "train", "augmented"),  # training copies stay (training rows)
        ("/d/train/sad/c.jpg", "val", "original"),  # validation carved from train
        ("/d/train/disgust/d.jpg1.jpg", "val", "augmented"),
        ("/d/validation/happy/e.jpg", "test", "original"),  # the held-out face
        ("/d/validation/disgust/f.jpg2.jpg", "test", "augmented"),
        ("/d/train/fear/g.jpg", "test", "original"),  # moved in from train by an older ingest
    ], columns=["image_path", "split", "origin"]).assign(source="fer2013")  # fmt: skip
    kept, comp = _evaluation_rows(rows, [SourceSpec(kind="folder", path="/d", name="fer2013")])
    names = set(kept["image_path"].str.rsplit("/", n=1).str[1])
    assert names == {"a.jpg", "b.jpg3.jpg", "c.jpg", "e.jpg"}
    assert comp == {"held-out originals": 1, "derived copies (excluded)": 1,
                    "moved in from another split by an older ingest (excluded)": 1}  # fmt: skip


def test_unhinted_sources_keep_their_test_originals():
    rows = pd.DataFrame({"image_path": ["/s/happy/a.png", "/s/sad/b.png"], "split": ["test", "val"],
                         "origin": ["original", "original"], "source": "synth"})  # fmt: skip
    kept, comp = _evaluation_rows(rows, [SourceSpec(kind="folder", path="/s", name="synth")])
    assert len(kept) == 2 and comp["held-out originals"] == 1


def test_families_are_paired_with_the_configured_baseline_only_when_it_ran():
    fams = ["pairwise-kd", "pairwise-kd", "pairwise-kd-online", "pairwise-kd-online"]
    # an online screen's sweep has no ce variant: both families would read "baseline" against a missing ce
    assert comparison_baseline("ce", fams, packaged="pairwise-kd") == "pairwise-kd"
    assert comparison_baseline("ce", [*fams, "ce"], packaged="pairwise-kd") == "ce"
    assert comparison_baseline(None, fams, packaged="pairwise-kd") == "pairwise-kd"
