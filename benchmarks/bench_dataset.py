"""Data-path figures: split decoding (threads, hash check), batch augmentation cost, minority augmentation rate.

Run: ``.venv/bin/python benchmarks/bench_dataset.py [--quick]``. Uses FER2013 validation when present, else a synthetic
set rendered to a temp folder. Figures are ratios against a baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a plain script from a checkout

from fer_core.data.augment import AugmentConfig, augment_minority
from fer_core.data.dataset import TrainAugment, load_split
from fer_core.data.schema import INDEX_COLUMNS
from fer_core.data.synth import render_dataset
from fer_core.preprocess import PreprocessSpec
from fer_core.taxonomy import SYNONYMS

REAL = Path("/work/shared/data/fer2013/validation")


def _index(root: Path, limit: int) -> pd.DataFrame:
    rows = []
    for cls_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(cls_dir.iterdir())[:limit]:
            sid = hashlib.sha256(path.read_bytes()).hexdigest()
            rows.append(dict(sample_id=sid, image_path=str(path), label=SYNONYMS[cls_dir.name.lower()], split="train",
                             source="bench", group_id=sid, origin="original", parent_id=None, width=48, height=48,
                             dhash=0, bbox=None, flags=""))  # fmt: skip
    return pd.DataFrame(rows, columns=list(INDEX_COLUMNS))


def _time(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(2)
    tmp = Path(tempfile.mkdtemp(prefix="bench_dataset_"))
    limit = 150 if args.quick else 10_000
    root = REAL if REAL.is_dir() else tmp / "synth"
    if root != REAL:
        render_dataset(root, per_class=60 if args.quick else 300, size=48)
    index = _index(root, limit)
    spec = PreprocessSpec()
    print(f"data: {root} ({len(index)} images)")
    base = _time(lambda: load_split(index, "train", spec, workers=1, verify_hash=True))
    variants = [("workers=2", dict(workers=2)), ("workers=4", dict(workers=4)), ("no hash", dict(verify_hash=False))]
    for name, kw in variants:
        t = _time(lambda kw=kw: load_split(index, "train", spec, **kw))
        print(f"load_split {name:10s}: {base / t:5.2f}x vs workers=1+hash ({len(index) / base:,.0f} img/s baseline)")
    full = TrainAugment(rotate_deg=10, scale=0.1, erase_p=0.25, jitter=0.2)
    ds = load_split(index, "train", spec, workers=2)
    idx = np.arange(min(256, len(ds)))
    rng = np.random.default_rng(0)
    t_eval = _time(lambda: ds.get_batch(idx, train=False), 5)
    t_def = _time(lambda: ds.get_batch(idx, train=True, rng=rng), 5)
    ds.train_augment = full
    t_full = _time(lambda: ds.get_batch(idx, train=True, rng=rng), 5)
    print(f"get_batch B={len(idx)}: eval {t_eval * 1e3:.2f} ms; flip+shift {t_def / t_eval:.1f}x eval; "
          f"full TrainAugment {t_full / t_def:.1f}x flip+shift ({t_full * 1e3:.2f} ms)")  # fmt: skip
    small = index.groupby("label").head(20 if args.quick else 100)
    small = pd.concat([small[small["label"] != "disgust"], small[small["label"] == "disgust"].head(4)])
    cfg = AugmentConfig(target_share=0.12, max_per_parent=50)
    t = time.perf_counter()
    new = augment_minority(small, cfg, tmp / "aug")
    dt = time.perf_counter() - t
    print(f"augment_minority: {len(new)} new images in {dt:.2f} s ({len(new) / dt:,.0f} img/s incl. decode + fsync)")


if __name__ == "__main__":
    main()
