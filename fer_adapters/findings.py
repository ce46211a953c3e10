"""The ingest's findings for people: every drop, rejection and flag by name, read back from the files it wrote."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path

from fer_core.errors import printable

SHOWN = 10  # rows listed per kind of finding; the rest are counted and live in the report's CSV files


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _listing(rows: list[tuple[str, str]], more_in: str) -> list[str]:
    out = [f"    - {printable(w)}: {printable(r)}" for w, r in rows[:SHOWN]]
    if len(rows) > SHOWN:
        out.append(f"    ... and {len(rows) - SHOWN} more in {more_in}")
    return out


def ingest_summary(index_path: str | Path, report_json: str | Path) -> str:
    """Every drop, rejection and flag of an ingest, from the files it wrote (index, report and row CSVs).

    Args:
        index_path: the index Parquet.
        report_json: its ``report.json`` (``rejected_rows.csv`` and ``dropped_rows.csv`` beside it).

    Returns:
        A few lines: rows per split, then each kind of finding with its count and the first rows by name.
    """
    import pyarrow.parquet as pq

    out_dir = Path(report_json).parent
    index = pq.read_table(index_path, columns=["image_path", "label", "split", "flags"]).to_pydict()
    report = json.loads(Path(report_json).read_text(encoding="utf-8"))
    splits = Counter(index["split"])
    lines = [f"ingest: {len(index['split'])} images indexed ("
             + ", ".join(f"{s} {splits.get(s, 0)}" for s in ("train", "val", "test")) + f") -> {index_path}"]
    dropped = _rows(out_dir / "dropped_rows.csv")
    if dropped:
        by_reason = Counter(_kind(r["reason"]) for r in dropped)
        lines.append(f"  dropped {len(dropped)} row(s): " + ", ".join(f"{k} ({v})" for k, v in by_reason.items()))
        lines += _listing([(r["where"], r["reason"]) for r in dropped], str(out_dir / "dropped_rows.csv"))
    rejected = _rows(out_dir / "rejected_rows.csv")
    if rejected:
        lines.append(f"  rejected {len(rejected)} bad row(s) (within max_bad_fraction, not indexed):")
        lines += _listing([(r["where"], r["reason"]) for r in rejected], str(out_dir / "rejected_rows.csv"))
    for flag, meaning in (("tiny", "shorter side below min_side; kept"), ("blank", "nearly uniform; kept")):
        named = [p for p, f in zip(index["image_path"], index["flags"], strict=True) if flag in (f or "").split(",")]
        if named:
            lines.append(f"  flagged {flag} {len(named)} image(s) ({meaning}):")
            lines += _listing([(p, flag) for p in named], str(index_path))
    present = set(index["label"])
    from fer_core.taxonomy import FER_CLASSES

    absent = [c for c in FER_CLASSES if c not in present]
    if absent:
        lines.append(f"  warning: no image of class(es) {absent} in the index")
    note = (report.get("findings", {}).get("split_shares") or {}).get("note")
    if note:
        lines.append(f"  note: {note}")
    moved = report.get("findings", {}).get("leakage_prevented", 0)
    if moved:
        lines.append(f"  {moved} row(s) moved or dropped to keep groups inside one split (leakage.csv)")
    lines.append(f"  report: {report_json}")
    return "\n".join(lines)


def _kind(reason: str) -> str:
    """The kind of a drop: its reason up to the first detail (the same cut as the report's ``dropped_by_reason``)."""
    return re.split(r" of | \(|: | \[", reason, maxsplit=1)[0].strip() or "unspecified"
