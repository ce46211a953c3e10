"""Reading teacher logits back for the ensemble: per teacher seed, [K, N, C] joined to the validation ids."""

from __future__ import annotations

from typing import Any

import numpy as np

from fer_core.logits.store import read_logits, stack_aligned
from fer_core.taxonomy import CLASS_TO_INDEX
from tasks._data import load_index
from tasks.teachers import teachers_of_seed


def validation_logits_by_seed(
    teachers: list[dict[str, Any]], names: list[str], index_path: str, index_sha256: str
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """``{seed: (logits [K, N, C], labels [N])}`` over the validation split, joined by sample_id."""
    rows = load_index(index_path, index_sha256)
    val = rows[rows["split"] == "val"]
    ids = val["sample_id"].tolist()
    y = val["label"].map(CLASS_TO_INDEX).to_numpy(np.int64)
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for seed in sorted({t["seed"] for t in teachers}):
        runs = teachers_of_seed(teachers, names, seed)
        out[seed] = (stack_aligned([read_logits(t["logits"]) for t in runs], ids, allow_extra=True), y)
    return out
