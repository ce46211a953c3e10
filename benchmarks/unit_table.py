"""The finished teacher and student units in an artifact store, scored on their index's validation and test originals.

Every unit exports its logits for every split (contract 3.2); this joins them to the index by ``sample_id`` and scores
the last-epoch model on the ``val`` and ``test`` originals (accuracy, macro-F1, disgust and fear F1), with the
plain script's figures (``benchmarks/plain_script.py --out``) beside them for the teacher-parity comparison. Selection
reads ``val`` only; ``test`` (FER2013 PublicTest) is reported, never chosen on.

Usage: ``.venv/bin/python benchmarks/unit_table.py --store $FERFLOW_HOME/store --index A.parquet [--index B.parquet]
[--plain plain_s0.json ...] [--out table.csv]``. Reads only.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Collection, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fer_core.evaluate.metrics import classification_metrics  # noqa: E402
from fer_core.logits.store import read_logits  # noqa: E402
from fer_core.taxonomy import FER_CLASSES  # noqa: E402


def score(logits: pd.DataFrame, rows: pd.DataFrame) -> dict[str, float]:
    """Figures of the units' logits on ``rows`` (originals of one split)."""
    z = logits.loc[rows.sample_id].to_numpy()
    y = rows.label.map(FER_CLASSES.index).to_numpy()
    m = classification_metrics(y, z.argmax(1))
    return {k: round(m[k], 4) for k in ("accuracy", "macro_f1", "f1/disgust", "f1/fear")}


def unit_logits(store: Path, names: Collection[str] | None = None) -> Iterator[tuple[Path, dict, pd.DataFrame]]:
    """Every finished unit in ``store`` with a logits export (only those named, when ``names`` is given): its
    ``result.json`` path, the result, and its last-epoch logits indexed by ``sample_id``."""
    for res in sorted(store.glob("runs/*/*/result.json")):
        r = json.loads(res.read_text())
        if "logits" in r and (names is None or r.get("name") in names):
            table = read_logits(store / r["logits"])
            yield res, r, pd.DataFrame(np.asarray(table.logits), index=list(table.ids))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--index", type=Path, action="append", required=True, help="an index.parquet (repeatable)")
    ap.add_argument("--plain", type=Path, action="append", default=[], help="a plain_script.py --out JSON")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    indexes = {}
    for p in a.index:
        ix = pd.read_parquet(p, columns=["sample_id", "label", "split", "origin"])
        indexes[frozenset(ix.sample_id)] = (p.parent.name, ix[ix.origin == "original"])
    out = []
    for res, r, lg in unit_logits(a.store):
        ids = set(lg.index)
        # the unit's own index: the largest one its logits cover (a keep index's units also cover its drop twin's rows)
        covered = [k for k in indexes if k <= ids]
        if not covered:
            continue
        name, ix = indexes[max(covered, key=len)]
        row = {"stage": res.parent.parent.name, "unit": r["name"], "seed": r["seed"], "index": name,
               "kind": r.get("kind", r.get("teacher", ""))}  # fmt: skip
        for split in ("val", "test"):
            row.update({f"{split} {k}": v for k, v in score(lg, ix[ix.split == split]).items()})
        out.append(row)
    for p in a.plain:
        f = json.loads(p.read_text())
        pc = f["per_class_f1"]
        out.append({"stage": "plain_script", "unit": p.stem, "seed": f["seed"], "index": "-", "kind": "plain",
                    "test accuracy": f["accuracy"], "test macro_f1": f["macro_f1"], "test f1/disgust": pc["disgust"],
                    "test f1/fear": pc["fear"]})  # fmt: skip
    df = pd.DataFrame(out)
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(df.to_string(index=False))
    if a.out:
        df.to_csv(a.out, index=False)


if __name__ == "__main__":
    main()
