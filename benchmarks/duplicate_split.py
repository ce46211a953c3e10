"""Test accuracy split by whether a test face has a duplicate among the FER2013 Training faces (issue 21's gap).

ferflow's ingest drops from training every face that duplicates a held-out one (exact pixels, or the same dHash
provenance group) and says so in the index's ``dropped_rows.csv``. The plain script trains on every Training
original, duplicates included. This scores models on the index's test originals in two parts, the faces that have a
dropped training duplicate ("duplicated") and the rest ("clean"), so a gap between the two trainings can be read as
what the duplicates of test faces give (a figure inflated by near-copies of the answer) and what the extra rows give.

Models: ferflow units by name from an artifact store (their logits export), and plain-script runs by their
``--predictions`` CSV (path, label, prediction; a run on all of PublicTest is also scored on every row it holds).

Usage: ``.venv/bin/python benchmarks/duplicate_split.py --index $FERFLOW_HOME/indexes/fer2013/index.parquet
--store $FERFLOW_HOME/store --unit resnet18-s0 --predictions plain_all.csv``. Reads only.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from unit_table import unit_logits  # noqa: E402 - the units' logits, read as the unit table reads them

from fer_core.taxonomy import FER_CLASSES  # noqa: E402

HELD_OUT = re.compile(r"(?:held-out|test:) (\S+?\.jpg)\b")  # the held-out face a dropped training row duplicates


def duplicated_test_paths(dropped_rows: Path) -> set[str]:
    """The held-out faces that a training row was dropped for duplicating."""
    reasons = pd.read_csv(dropped_rows)["reason"].astype(str)
    return {m.group(1) for r in reasons if (m := HELD_OUT.search(r))}


def accuracy(correct: pd.Series) -> str:
    return f"{correct.mean():.4f} ({len(correct)})"


def split_row(model: str, scored: str, correct: pd.Series, dup: pd.Series) -> dict[str, str]:
    """One table row: accuracy on every test original, on those with a Training duplicate, and on the rest."""
    return {"model": model, "all it scored": scored, "test originals": accuracy(correct),
            "duplicated": accuracy(correct[dup]), "clean": accuracy(correct[~dup])}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, required=True, help="an index.parquet, its dropped_rows.csv beside it")
    ap.add_argument("--store", type=Path, help="the artifact store holding --unit's")
    ap.add_argument("--unit", action="append", default=[], help="a ferflow unit's name (repeatable)")
    ap.add_argument("--predictions", type=Path, action="append", default=[], help="a plain_script.py --predictions CSV")
    a = ap.parse_args()
    if a.unit and a.store is None:
        ap.error("--unit needs --store")
    ix = pd.read_parquet(a.index, columns=["sample_id", "image_path", "label", "split", "origin"])
    test = ix[(ix.split == "test") & (ix.origin == "original")].copy()
    test["y"] = test.label.map(FER_CLASSES.index)
    test["dup"] = test.image_path.isin(duplicated_test_paths(a.index.parent / "dropped_rows.csv"))
    rows = []
    units = {r["name"]: lg for _, r, lg in unit_logits(a.store, set(a.unit))} if a.unit else {}
    for name in a.unit:
        if name not in units:
            raise SystemExit(f"duplicate_split: no finished unit {name!r} with logits under {a.store}")
        pred = units[name].loc[test.sample_id].to_numpy().argmax(1)
        rows.append(split_row(name, "-", pd.Series(pred == test.y.to_numpy(), index=test.index), test.dup))
    for p in a.predictions:
        pr = pd.read_csv(p).set_index("image_path")
        scored = accuracy(pr.label == pr.prediction)
        mine = pr.reindex(test.image_path)
        if mine.prediction.isna().any():
            raise SystemExit(f"duplicate_split: {p} lacks {int(mine.prediction.isna().sum())} of the index's test rows")
        rows.append(split_row(p.stem, scored, pd.Series(mine.prediction.to_numpy() == test.label.to_numpy(),
                                                         index=test.index), test.dup))  # fmt: skip
    print(f"test originals {len(test)}: duplicated in Training {int(test.dup.sum())}, "
          f"clean {int((~test.dup).sum())}; accuracy (rows)")
    with pd.option_context("display.width", 200, "display.max_columns", 10):
        print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
