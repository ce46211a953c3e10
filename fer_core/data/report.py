"""Ingest report: class balance (JSON + bar chart) and every finding (duplicates, copies, leakage, rejected rows)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from fer_core.data.schema import SPLITS
from fer_core.io import atomic_path, atomic_write_json
from fer_core.taxonomy import FER_CLASSES

REPORT_FILES: tuple[str, ...] = ("report.json", "class_balance.png", "rejected_rows.csv", "dropped_rows.csv",
                                 "leakage.csv")  # fmt: skip


def class_balance(index: pd.DataFrame) -> dict:
    """Counts per class x split, shares within each split, and the imbalance ratio (largest / smallest class)."""
    c = index.groupby(["split", "label"]).size()
    out: dict = {"counts": {}, "shares": {}, "imbalance_ratio": {}}
    for s in (*SPLITS, "all"):
        row = {lab: int(sum(c.get((t, lab), 0) for t in (SPLITS if s == "all" else (s,)))) for lab in FER_CLASSES}
        total = sum(row.values())
        out["counts"][s] = row
        out["shares"][s] = {lab: (v / total if total else 0.0) for lab, v in row.items()}
        nonzero = [v for v in row.values() if v > 0]
        out["imbalance_ratio"][s] = (max(nonzero) / min(nonzero)) if nonzero else None
    return out


def _category(reason: str) -> str:
    return re.split(r" of | \(|: | \[", reason, maxsplit=1)[0]


def findings(records: pd.DataFrame, leakage: pd.DataFrame) -> dict:
    """Counts and row lists of everything ingest found (the final records of :func:`fer_core.data.ingest`)."""
    ok = records[records["status"] == "ok"]
    rejected = records[records["status"] == "rejected"]
    dropped = records[records["status"] == "dropped"]
    near = ok[ok["near_component"] >= 0] if "near_component" in ok else ok.iloc[:0]
    distinct = near.groupby("near_component")["sample_id"].transform("nunique")
    near = near[distinct.to_numpy() > 1]
    fams = near.groupby("near_component")["family"].transform("nunique")
    aug = ok[ok["origin"] == "augmented"] if "origin" in ok else ok.iloc[:0]
    missing = sorted(set(aug.loc[aug["parent_id"].isna(), "family"]))
    flags = ok["flags"].fillna("")
    return {
        "rows": {"ok": len(ok), "rejected": len(rejected), "dropped": len(dropped)},
        "exact_duplicates": int(dropped["reason"].str.startswith("exact duplicate").sum()),
        "exact_duplicates_label_conflict": int(dropped["reason"].str.contains("conflicting labels").sum()),
        "near_duplicate_images": len(near),
        "near_duplicate_clusters": int(near["near_component"].nunique()),
        "near_duplicate_images_across_families": int((fams > 1).sum()),
        "near_duplicate_clusters_label_conflict": int((near.groupby("near_component")["label"].nunique() > 1).sum()),
        "augmented_copies": len(aug),
        "augmented_copies_matched": int(aug["parent_id"].notna().sum()),
        "augmented_copies_missing_original": int(aug["parent_id"].isna().sum()),
        "missing_originals": missing,
        "blank_images": sorted(ok.loc[flags.str.contains("blank"), "image_path"]),
        "tiny_images": int(flags.str.contains("tiny").sum()),
        "leakage_prevented": len(leakage),
        "dropped_by_reason": {k: int(v) for k, v in dropped["reason"].map(_category).value_counts().items()},
        "rejected_rows": [{"where": w, "reason": r} for w, r in rejected[["where", "reason"]].itertuples(index=False)],
    }  # fmt: skip


def plot_balance(balance: dict, path: Path) -> None:
    """Grouped bar chart of counts per class and split (PNG, written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    x = np.arange(len(FER_CLASSES))
    for k, s in enumerate(SPLITS):
        ax.bar(x + (k - 1) * 0.27, [balance["counts"][s][c] for c in FER_CLASSES], width=0.27, label=s)
    ax.set_xticks(x, FER_CLASSES)
    ax.set_ylabel("images")
    ax.set_title(f"class balance (imbalance ratio, all: {balance['imbalance_ratio']['all'] or 0:.1f})")
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def write_report(out_dir: Path, index: pd.DataFrame, records: pd.DataFrame, leakage: pd.DataFrame) -> dict:
    """Write ``report.json``, ``class_balance.png``, ``rejected_rows.csv``, ``dropped_rows.csv``, ``leakage.csv``.

    Returns:
        The report dict (``balance`` + ``findings``).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {"balance": class_balance(index), "findings": findings(records, leakage)}
    for name, status in (("rejected_rows.csv", "rejected"), ("dropped_rows.csv", "dropped")):
        rows = records.loc[records["status"] == status, ["source", "where", "path", "reason"]]
        with atomic_path(out_dir / name) as tmp:
            rows.to_csv(tmp, index=False)
    with atomic_path(out_dir / "leakage.csv") as tmp:
        leakage.to_csv(tmp, index=False)
    plot_balance(report["balance"], out_dir / "class_balance.png")
    atomic_write_json(out_dir / "report.json", report)
    return report
