"""Group-wise split assignment: held-out originals stay untouched, nothing is moved, every drop is reported.

Rules (a *group* is an original with its derived copies, exact and near duplicates; see ``provenance.py``):

1. A group's split is the most held-out split (test > val > train) its *original* members' hints name (its derived
   copies' hints only when it has no hinted original). Groups without any hint are split by ``fractions``.
2. A row is never placed in a split other than its own hint. A hinted member whose hint differs from its group's
   split (a train face that duplicates a held-out test face) is **dropped** with the reason, never moved: the
   held-out split stays exactly the source's held-out originals, and the training side loses the duplicates.
3. Validation and test hold originals only: derived copies (``origin == "augmented"``) there are dropped.
4. Training keeps derived copies by the ``derived_copies`` policy: ``keep`` all, ``one_per_original`` (one per
   original, drawn by a seeded hash of ``sample_id``, so row order does not matter) or ``drop``.

Validation is carved out of train by group, stratified by the group's majority label and sized by its originals,
deterministically by seed, when no source provided validation hints.
"""

from __future__ import annotations

import hashlib
from typing import Literal

import numpy as np
import pandas as pd

from fer_core.errors import ConfigError, DataIntegrityError

DerivedCopies = Literal["drop", "one_per_original", "keep"]
HELD_OUT: tuple[str, ...] = ("val", "test")
_PRIORITY = {"test": 0, "val": 1, "train": 2}
LEAKAGE_COLUMNS: tuple[str, ...] = ("where", "image_path", "group_id", "from_split", "to_split", "reason")
#: Reason prefixes of the rows this module drops (the ingest report counts them by prefix).
DUPLICATE_OF_HELD_OUT = "duplicates a held-out face"
COPY_IN_HELD_OUT = "derived copy in a held-out split"
COPY_BY_POLICY = "derived copy not kept for training"


def _most_held_out(hints: pd.Series) -> str:
    return min(hints, key=_PRIORITY.__getitem__)


def _stratified_pick(groups: pd.DataFrame, fraction: float, rng: np.random.Generator) -> set[str]:
    """Groups holding about ``fraction`` of each label's images (by group majority label)."""
    chosen: set[str] = set()
    for _, g in groups.sort_values("group_id").groupby("label", sort=True):
        g = g.iloc[rng.permutation(len(g))]
        before = g["size"].cumsum() - g["size"]
        chosen.update(g.loc[before < fraction * g["size"].sum(), "group_id"])
    return chosen


def _group_splits(rows: pd.DataFrame) -> dict[str, str]:
    """Split of every hinted group (rule 1)."""
    hinted = rows[rows["split_hint"].notna()]
    split_of = hinted.groupby("group_id")["split_hint"].agg(_most_held_out).to_dict()
    orig = hinted[hinted["origin"] == "original"]
    split_of.update(orig.groupby("group_id")["split_hint"].agg(_most_held_out).to_dict())
    return split_of


def _group_sizes(rows: pd.DataFrame) -> pd.DataFrame:
    """Per group: originals count (at least 1) and majority label, for stratified carving."""
    is_orig = (rows["origin"] == "original").astype(int)
    g = rows.assign(_o=is_orig).groupby("group_id")
    out = g.agg(size=("_o", "sum"), label=("label", lambda s: s.value_counts().idxmax())).reset_index()
    out["size"] = out["size"].clip(lower=1)
    return out


def assign_splits(
    records: pd.DataFrame, *, val_fraction: float = 0.1, seed: int = 0,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), derived_copies: DerivedCopies = "keep",
) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """Assign ``split`` per group to grouped records (output of :func:`fer_core.data.provenance.assign_groups`).

    Args:
        records: rows with ``status``, ``group_id``, ``label``, ``origin``, ``parent_id``, ``split_hint``.
        val_fraction: share of train originals (per label, by group) carved out as validation when no source has
            val hints.
        seed: random seed of the carving, of the unhinted split and of ``one_per_original``'s draw.
        fractions: ``(train, val, test)`` shares for groups whose members carry no hint at all.
        derived_copies: what training keeps of derived copies (rule 4).

    Returns:
        ``(records with "split", cross-split drops with LEAKAGE_COLUMNS)``. Rows dropped by rules 2-4 become
        ``status == "dropped"`` with ``split == ""`` and a reason starting with :data:`DUPLICATE_OF_HELD_OUT`,
        :data:`COPY_IN_HELD_OUT` or :data:`COPY_BY_POLICY`; other rows that are not ``"ok"`` get ``""`` too.

    Raises:
        ConfigError: fractions out of range or an unknown ``derived_copies``.
    """
    if not 0 <= val_fraction < 1 or abs(sum(fractions) - 1) > 1e-6 or min(fractions) < 0:
        raise ConfigError(f"val_fraction must be in [0, 1) and fractions (train, val, test) >= 0 summing to 1; "
                          f"got {val_fraction}, {fractions}")  # fmt: skip
    if derived_copies not in ("drop", "one_per_original", "keep"):
        raise ConfigError(f"derived_copies must be drop, one_per_original or keep, got {derived_copies!r}")
    df = records.copy()
    ok = df["status"] == "ok"
    rows = df[ok]
    rng = np.random.default_rng(seed)
    resolved = _group_splits(rows)
    split_of = dict(resolved)
    hinted_groups = set(resolved)
    sizes = _group_sizes(rows)
    free = sizes[~sizes["group_id"].isin(hinted_groups)]
    if len(free):
        test = _stratified_pick(free, fractions[2], rng)
        rest = free[~free["group_id"].isin(test)]
        val_share = fractions[1] / max(1e-12, fractions[0] + fractions[1])
        val = _stratified_pick(rest, val_share, rng)
        split_of.update({g: "test" if g in test else "val" if g in val else "train" for g in free["group_id"]})
    if val_fraction > 0 and "val" not in {split_of[g] for g in hinted_groups}:
        train_groups = sizes[sizes["group_id"].map(lambda g: split_of[g] == "train" and g in hinted_groups)]
        split_of.update({g: "val" for g in _stratified_pick(train_groups, val_fraction, rng)})

    df["split"] = ""
    df.loc[ok, "split"] = rows["group_id"].map(split_of).to_numpy()
    leakage = _drop_cross_split(df, resolved)
    _drop_held_out_copies(df)
    _apply_copy_policy(df, derived_copies, seed)
    df.loc[df["status"] != "ok", "split"] = ""
    return df, leakage


def _drop(df: pd.DataFrame, mask: pd.Series, reasons: pd.Series | str) -> None:
    df.loc[mask, "status"] = "dropped"
    df.loc[mask, "reason"] = reasons if isinstance(reasons, str) else reasons[mask]


def _drop_cross_split(df: pd.DataFrame, resolved: dict[str, str]) -> pd.DataFrame:
    """Rule 2: hinted ``ok`` rows whose group's hinted split (before val carving) differs are dropped.

    Returns:
        The dropped rows as leakage rows (:data:`LEAKAGE_COLUMNS`).
    """
    ok = df["status"] == "ok"
    hint = df["split_hint"]
    cross = ok & hint.notna() & (hint != df["group_id"].map(resolved))
    # the group's held-out face: its first original in the group's split (for the reason and the report)
    keep = df[ok & ~cross & (df["origin"] == "original")].sort_values("image_path")
    face = keep.drop_duplicates("group_id").set_index("group_id")["image_path"]
    where = df.loc[cross, "group_id"].map(face).fillna("(a derived copy)")
    reasons = pd.Series("", index=df.index, dtype=object)
    reasons[cross] = [
        f"{COPY_IN_HELD_OUT}: hinted {h}, its provenance group is in {s}" if o != "original" and h in HELD_OUT
        else f"{DUPLICATE_OF_HELD_OUT} in {s}: {w} (same provenance group; dropped from {h}, not moved)"
        for s, w, h, o in zip(df.loc[cross, "split"], where, hint[cross], df.loc[cross, "origin"], strict=True)
    ]  # fmt: skip
    leakage = pd.DataFrame({
        "where": df.loc[cross, "where"], "image_path": df.loc[cross, "image_path"],
        "group_id": df.loc[cross, "group_id"], "from_split": hint[cross], "to_split": "dropped",
        "reason": reasons[cross],
    }, columns=list(LEAKAGE_COLUMNS)).reset_index(drop=True)  # fmt: skip
    _drop(df, cross, reasons)
    return leakage


def _drop_held_out_copies(df: pd.DataFrame) -> None:
    """Rule 3: validation and test keep originals only."""
    m = (df["status"] == "ok") & (df["origin"] != "original") & df["split"].isin(HELD_OUT)
    _drop(df, m, f"{COPY_IN_HELD_OUT}: validation and test keep originals only")


def _rank_key(seed: int, sample_id: str) -> str:
    return hashlib.sha256(f"{seed}:{sample_id}".encode()).hexdigest()


def _apply_copy_policy(df: pd.DataFrame, policy: DerivedCopies, seed: int) -> None:
    """Rule 4 on the training rows."""
    copies = (df["status"] == "ok") & (df["origin"] != "original") & (df["split"] == "train")
    if policy == "keep" or not copies.any():
        return
    if policy == "drop":
        _drop(df, copies, f"{COPY_BY_POLICY} (derived_copies=drop)")
        return
    c = df[copies]
    # copies of one original share its parent_id; an orphan copy (original missing) counts as its own original
    parent = c["parent_id"].where(c["parent_id"].notna(), c["family"] if "family" in c else c["sample_id"])
    key = c["sample_id"].map(lambda s: _rank_key(seed, s))
    first = pd.DataFrame({"p": parent, "k": key}).sort_values("k").drop_duplicates("p").index
    extra = copies & ~df.index.isin(first)
    _drop(df, extra, f"{COPY_BY_POLICY} (derived_copies=one_per_original: another copy of the original is kept)")


def check_held_out_originals(index: pd.DataFrame) -> None:
    """Refuse an index whose validation or test split holds a derived row (``origin != "original"``).

    Raises:
        DataIntegrityError: listing every such row (e.g. minority augmentation configured for ``val``).
    """
    bad = index[index["split"].isin(HELD_OUT) & (index["origin"] != "original")]
    if len(bad):
        raise DataIntegrityError(
            f"{len(bad)} derived row(s) in validation/test; those splits must hold originals only (evaluation, "
            "temperature fitting, thresholds and selection read them). Augment the train split only.",
            [(str(p), f"origin={o} in split {s}") for p, o, s in zip(bad["image_path"], bad["origin"], bad["split"],
                                                                       strict=True)],
        )  # fmt: skip
