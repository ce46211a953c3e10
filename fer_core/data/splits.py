"""Group-wise split assignment: source hints respected, no group crosses splits, every forced move reported.

Policy for a group whose members carry different split hints (e.g. a near-duplicate of a train image sitting in the
test split): the group goes to the split its *original* members agree on; when the originals disagree too (or there
are none), the most held-out split wins (test > val > train), so a test set is never split up or leaked into by
training. Each member moved away from its hint is one "leakage prevented" row.

Validation is carved out of train by group, stratified by the group's majority label, deterministically by seed, when
no source provided validation hints. Groups without any hint are split by ``fractions``, stratified the same way.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fer_core.errors import ConfigError

_PRIORITY = {"test": 0, "val": 1, "train": 2}
LEAKAGE_COLUMNS: tuple[str, ...] = ("where", "image_path", "group_id", "from_split", "to_split", "reason")


def _resolve(hints: list[str], original_hints: list[str]) -> tuple[str, str]:
    """The group's split from its members' hints, with the rule that decided it."""
    distinct = set(hints)
    if len(distinct) == 1:
        return hints[0], ""
    orig = set(original_hints)
    if len(orig) == 1:
        return original_hints[0], "the original's split"
    return min(distinct, key=_PRIORITY.__getitem__), "originals disagree: the most held-out split wins"


def _stratified_pick(groups: pd.DataFrame, fraction: float, rng: np.random.Generator) -> set[str]:
    """Groups holding about ``fraction`` of each label's images (by group majority label)."""
    chosen: set[str] = set()
    for _, g in groups.sort_values("group_id").groupby("label", sort=True):
        g = g.iloc[rng.permutation(len(g))]
        before = g["size"].cumsum() - g["size"]
        chosen.update(g.loc[before < fraction * g["size"].sum(), "group_id"])
    return chosen


def assign_splits(
    records: pd.DataFrame, *, val_fraction: float = 0.1, seed: int = 0,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """Assign ``split`` per group to grouped records (output of :func:`fer_core.data.provenance.assign_groups`).

    Args:
        records: rows with ``status``, ``group_id``, ``label``, ``origin``, ``split_hint``.
        val_fraction: share of train (per label, by group) carved out as validation when no source has val hints.
        seed: random seed of the carving and of the unhinted split.
        fractions: ``(train, val, test)`` shares for groups whose members carry no hint at all.

    Returns:
        ``(records with "split", leakage moves with LEAKAGE_COLUMNS)``; rows that are not ``"ok"`` get ``""``.

    Raises:
        ConfigError: fractions out of range.
    """
    if not 0 <= val_fraction < 1 or abs(sum(fractions) - 1) > 1e-6 or min(fractions) < 0:
        raise ConfigError(f"val_fraction must be in [0, 1) and fractions (train, val, test) >= 0 summing to 1; "
                          f"got {val_fraction}, {fractions}")  # fmt: skip
    df = records.copy()
    ok = df["status"] == "ok"
    rows = df[ok]
    rng = np.random.default_rng(seed)
    hinted = rows[rows["split_hint"].notna()]
    orig_hints = hinted[hinted["origin"] == "original"].groupby("group_id")["split_hint"].agg(list)
    split_of: dict[str, str] = {}
    rule_of: dict[str, str] = {}
    for gid, hints in hinted.groupby("group_id")["split_hint"].agg(list).items():
        split_of[gid], rule_of[gid] = _resolve(hints, orig_hints.get(gid, []))

    sizes = rows.groupby("group_id").agg(size=("label", "size"), label=("label", lambda s: s.value_counts().idxmax()))
    sizes = sizes.reset_index()
    free = sizes[~sizes["group_id"].isin(split_of)]
    if len(free):
        test = _stratified_pick(free, fractions[2], rng)
        rest = free[~free["group_id"].isin(test)]
        val_share = fractions[1] / max(1e-12, fractions[0] + fractions[1])
        val = _stratified_pick(rest, val_share, rng)
        split_of.update({g: "test" if g in test else "val" if g in val else "train" for g in free["group_id"]})
    if val_fraction > 0 and "val" not in {split_of[g] for g in hinted["group_id"].unique()}:
        train_groups = sizes[sizes["group_id"].map(lambda g: split_of[g] == "train" and g in rule_of)]
        split_of.update({g: "val" for g in _stratified_pick(train_groups, val_fraction, rng)})

    df["split"] = ""
    df.loc[ok, "split"] = rows["group_id"].map(split_of).to_numpy()
    moved = hinted[hinted["split_hint"].to_numpy() != hinted["group_id"].map(split_of).to_numpy()]
    moved = moved.loc[np.array([rule_of[g] != "" for g in moved["group_id"]], dtype=bool)]
    leakage = pd.DataFrame({
        "where": moved["where"], "image_path": moved["image_path"], "group_id": moved["group_id"],
        "from_split": moved["split_hint"], "to_split": moved["group_id"].map(split_of),
        "reason": moved["group_id"].map(lambda g: f"group spans splits; {rule_of[g]}"),
    }, columns=list(LEAKAGE_COLUMNS)).reset_index(drop=True)  # fmt: skip
    return df, leakage
