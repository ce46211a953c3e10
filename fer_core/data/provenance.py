"""Provenance: augmented copies (``<orig>.jpg<N>.jpg``) → their originals, and groups of everything related.

A group is the union of an original, its derived copies, its exact duplicates and its near-duplicates (horizontal
dHash distance below the threshold, confirmed by the vertical dHash: see ``dedup.near_duplicate_components``).
``group_id`` is the smallest ``sample_id`` in the group, so it is stable across runs and row orders.
Blank images and derived copies are kept out of near-duplicate linking: every constant image has the same dHash, and
blurred copies of different faces hash alike; neither says anything about provenance (copies join by name).
"""

from __future__ import annotations

import os
import re

import numpy as np
import pandas as pd

from fer_core.data.dedup import near_duplicate_components, union_labels

AUGMENTED_NAME = re.compile(r"^(?P<orig>.+\.(?:jpe?g|png|bmp|webp))(?P<n>\d+)\.(?:jpe?g|png|bmp|webp)$", re.I)
PROVENANCE_COLUMNS: tuple[str, ...] = ("origin", "parent_id", "group_id", "family", "near_component")


def original_path(image_path: str) -> str | None:
    """The path of the original an augmented copy was derived from (same folder), or ``None`` for an original.

    ``/d/disgust/Training_1.jpg3.jpg`` → ``/d/disgust/Training_1.jpg``.
    """
    m = AUGMENTED_NAME.match(os.path.basename(image_path))
    return os.path.join(os.path.dirname(image_path), m.group("orig")) if m else None


def _link_rep(codes: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Edges ``[P, 2]`` joining each valid row to the first valid row with the same code."""
    idx = np.flatnonzero(valid)
    if len(idx) == 0:
        return np.empty((0, 2), np.int64)
    c = codes[idx]
    _, first = np.unique(c, return_index=True)
    rep_of_code = dict(zip(c[first].tolist(), idx[first].tolist(), strict=True))
    rep = np.array([rep_of_code[v] for v in c.tolist()], np.int64)
    edges = np.stack([idx, rep], axis=1)
    return edges[edges[:, 0] != edges[:, 1]]


def assign_groups(records: pd.DataFrame, near_dup_hamming: int = 8) -> pd.DataFrame:
    """Add provenance and group columns to validated records (only ``status == "ok"`` rows take part).

    Args:
        records: output of :func:`fer_core.data.validate.validate_records`.
        near_dup_hamming: images whose dHashes differ in fewer bits than this are near-duplicates.

    Returns:
        A copy with ``origin``, ``parent_id`` (the original's ``sample_id``, ``None`` when it is missing),
        ``group_id``, ``family`` (the original's path, shared by an original and its copies) and
        ``near_component`` (near-duplicate component, -1 for rows outside the search).
    """
    df = records.copy()
    ok = (df["status"] == "ok").to_numpy()
    paths = df["image_path"].tolist()
    orig = [original_path(p) for p in paths]
    df["origin"] = ["augmented" if o else "original" for o in orig]
    df["family"] = [o or p for o, p in zip(orig, paths, strict=True)]
    sid_of_path = dict(zip(df.loc[ok, "image_path"], df.loc[ok, "sample_id"], strict=True))
    df["parent_id"] = [sid_of_path.get(o) if o else None for o in orig]

    near = np.full(len(df), -1, np.int64)
    # derived copies join their original by name only: blurred copies of different faces hash alike, and searching
    # them chained unrelated faces into one group (FER2013: 58 training faces tied to one held-out disgust face)
    searchable = ok & ~df["flags"].str.contains("blank", regex=False).to_numpy()
    searchable &= (df["origin"] == "original").to_numpy()
    confirm = df["dhash_v"].to_numpy(np.uint64)[searchable] if "dhash_v" in df else None
    labels, _ = near_duplicate_components(df["dhash"].to_numpy(np.uint64)[searchable], near_dup_hamming, confirm)
    near[searchable] = labels
    df["near_component"] = near

    fam_codes = pd.factorize(df["family"])[0]
    sid_codes = pd.factorize(df["sample_id"])[0]
    edges = np.concatenate([_link_rep(fam_codes, ok), _link_rep(sid_codes, ok), _link_rep(near, searchable)])
    comp = union_labels(len(df), edges)
    gid = pd.Series(df["sample_id"].where(ok, None)).groupby(comp).transform("min")
    df["group_id"] = gid.where(ok, "").fillna("").to_numpy()
    return df


_HINT_RANK = {"test": 0, "val": 1, "train": 2}


def drop_exact_duplicates(records: pd.DataFrame) -> pd.DataFrame:
    """Keep one row per ``sample_id`` (the index's key); the other copies become ``"dropped"`` with the reason.

    The kept copy is the most held-out one (split hint test > val > train > none), so a held-out face is never lost
    to its training duplicate; then an original (not an augmented name), then the smallest path. Copies in a less
    held-out split are dropped as duplicates of the held-out one, whatever their label. When the copies in the kept
    copy's own split disagree on the label, every copy is dropped: identical pixels with two labels have no
    trustworthy ground truth.
    """
    df = records.copy()
    ok = df["status"] == "ok"
    hint = df["split_hint"] if "split_hint" in df else pd.Series(None, index=df.index, dtype=object)
    view = df[ok].assign(_rank=hint[ok].map(_HINT_RANK).fillna(3).astype(int))
    # "original" sorts after "augmented": descending puts an original first
    view = view.sort_values(["sample_id", "_rank", "origin", "image_path"], ascending=[True, True, False, True],
                            kind="stable")  # fmt: skip
    dup = view["sample_id"].duplicated(keep=False)
    if not dup.any():
        return df
    for _, grp in view[dup].groupby("sample_id", sort=False):
        top = grp[grp["_rank"] == grp["_rank"].iat[0]]
        keep = grp.index[0]
        if top["label"].nunique() > 1:
            labels = sorted(set(top["label"]))
            for i in grp.index:
                df.loc[i, ["status", "reason"]] = ["dropped", f"exact duplicates with conflicting labels {labels}: "
                                                              f"{', '.join(top['where'])}"]  # fmt: skip
            continue
        held = "held-out " if grp["_rank"].iat[0] < 2 else ""
        for i in grp.index[1:]:
            what = held if grp.at[i, "_rank"] > grp["_rank"].iat[0] else ""
            df.loc[i, ["status", "reason"]] = ["dropped", f"exact duplicate of {what}{df.at[keep, 'image_path']}"]
    return df
