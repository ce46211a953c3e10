"""Targeted minority augmentation (placeholder signature; being implemented)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fer_core.config import FrozenModel


class AugmentConfig(FrozenModel):
    target_share: float = 0.10
    seed: int = 0


def augment_minority(index: pd.DataFrame, cfg: AugmentConfig, out_dir: Path) -> pd.DataFrame:
    raise NotImplementedError
