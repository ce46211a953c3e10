"""Ingest report: class balance (JSON + bar chart) and every finding (duplicates, copies, leakage, rejected rows)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from fer_core.data.schema import SPLITS
from fer_core.data.splits import COPY_BY_POLICY, COPY_IN_HELD_OUT, DUPLICATE_OF_HELD_OUT
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


def held_out_effects(records: pd.DataFrame, derived_copies: str | None = None) -> dict:
    """What keeping validation/test untouched removed, and the derived-copy policy's effect (split records).

    Returns:
        ``duplicates_of_held_out_dropped`` (``exact`` / ``near``: ``{split hint: rows}``), ``derived_copies``
        (policy and counts) and ``test_composition`` (test rows by origin and hint).
    """
    df = records.reindex(columns=[*records.columns, *({"origin", "split", "split_hint"} - set(records.columns))])
    dropped = df[df["status"] == "dropped"]
    reason = dropped["reason"].fillna("")
    hint = dropped["split_hint"].fillna("none")

    def by_hint(m: pd.Series) -> dict[str, int]:
        return {str(k): int(v) for k, v in hint[m].value_counts().sort_index().items()}

    ok = df[df["status"] == "ok"]
    test = ok[ok["split"] == "test"]
    orig = test["origin"] == "original"
    return {
        "duplicates_of_held_out_dropped": {
            "exact": by_hint(reason.str.startswith("exact duplicate of held-out")),
            "near": by_hint(reason.str.startswith(DUPLICATE_OF_HELD_OUT)),
        },
        "derived_copies": {
            "policy": derived_copies,
            "found": int((df["origin"] == "augmented").sum()),
            "dropped_from_held_out_splits": int(reason.str.startswith(COPY_IN_HELD_OUT).sum()),
            "dropped_from_train_by_policy": int(reason.str.startswith(COPY_BY_POLICY).sum()),
            "kept_in_train": int(((ok["origin"] == "augmented") & (ok["split"] == "train")).sum()),
        },
        "test_composition": {
            "held-out originals (test hint)": int((orig & (test["split_hint"] == "test")).sum()),
            "originals assigned by fractions (no hint)": int((orig & test["split_hint"].isna()).sum()),
            "derived rows": int((~orig).sum()),
        },
    }


def findings(records: pd.DataFrame, leakage: pd.DataFrame, derived_copies: str | None = None) -> dict:
    """Counts and row lists of everything ingest found (the final records of :func:`fer_core.data.ingest`)."""
    ok = records[records["status"] == "ok"]
    rejected = records[records["status"] == "rejected"]
    dropped = records[records["status"] == "dropped"]
    near = ok[ok["near_component"] >= 0] if "near_component" in ok else ok.iloc[:0]
    distinct = near.groupby("near_component")["sample_id"].transform("nunique")
    near = near[distinct.to_numpy() > 1]
    fams = near.groupby("near_component")["family"].transform("nunique")
    # copies the split step dropped (held-out splits, training policy) were found all the same
    split_drop = dropped["reason"].fillna("").str.startswith((DUPLICATE_OF_HELD_OUT, COPY_IN_HELD_OUT, COPY_BY_POLICY))
    grouped = pd.concat([ok, dropped[split_drop]])
    aug = grouped[grouped["origin"] == "augmented"] if "origin" in grouped else ok.iloc[:0]
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
        **held_out_effects(records, derived_copies),
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


def split_shares(index: pd.DataFrame, records: pd.DataFrame, fractions: tuple[float, float, float] | None,
                 tolerance: float = 0.05) -> dict:  # fmt: skip
    """Asked vs achieved split shares, and why they differ: splits go by provenance group, so one large group of
    near-duplicates moves a whole split's share.

    Only where no row had a split hint (hinted sources keep their own splits and ``fractions`` does not apply).

    Returns:
        ``{"asked", "got", "largest_groups", "note"}`` (``note`` empty when every share is within ``tolerance``), or
        ``{}`` when it does not apply.
    """
    if fractions is None or index.empty or ("split_hint" in records and records["split_hint"].notna().any()):
        return {}
    got = index["split"].value_counts(normalize=True)
    asked = dict(zip(("train", "val", "test"), fractions, strict=True))
    shares = {k: round(float(got.get(k, 0.0)), 3) for k in asked}
    sizes = index.groupby(["split", "group_id"]).size().sort_values(ascending=False)
    largest = [{"split": sp, "group_id": str(g), "rows": int(n)} for (sp, g), n in sizes.head(3).items()]
    note = ""
    if any(abs(shares[k] - asked[k]) > tolerance for k in asked):
        top = largest[0]
        note = (f"split shares asked {'/'.join(f'{asked[k]:.0%}' for k in asked)}, got "
                f"{'/'.join(f'{shares[k]:.0%}' for k in asked)} (train/val/test): splits are assigned per provenance "
                f"group so no near-duplicate crosses splits, and the largest group ({top['rows']} rows of "
                f"{len(index)}, near-duplicates by dHash) went to {top['split']} whole")  # fmt: skip
    return {"asked": asked, "got": shares, "largest_groups": largest, "note": note}


def write_report(out_dir: Path, index: pd.DataFrame, records: pd.DataFrame, leakage: pd.DataFrame,
                 derived_copies: str | None = None,
                 fractions: tuple[float, float, float] | None = None) -> dict:  # fmt: skip
    """Write ``report.json``, ``class_balance.png``, ``rejected_rows.csv``, ``dropped_rows.csv``, ``leakage.csv``.

    Returns:
        The report dict (``balance`` + ``findings``).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {"balance": class_balance(index), "findings": findings(records, leakage, derived_copies)}
    shares = split_shares(index, records, fractions)
    if shares:
        report["findings"]["split_shares"] = shares
    for name, status in (("rejected_rows.csv", "rejected"), ("dropped_rows.csv", "dropped")):
        rows = records.loc[records["status"] == status, ["source", "where", "path", "reason"]]
        with atomic_path(out_dir / name) as tmp:
            rows.to_csv(tmp, index=False)
    with atomic_path(out_dir / "leakage.csv") as tmp:
        leakage.to_csv(tmp, index=False)
    plot_balance(report["balance"], out_dir / "class_balance.png")
    atomic_write_json(out_dir / "report.json", report)
    return report
