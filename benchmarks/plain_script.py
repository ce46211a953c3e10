"""The plain FER2013 training script of issue 21: the baseline a ferflow teacher must match (no ferflow code here).

timm resnet18 (default stem, in_chans=1, no pretrained weights), input (x/255-0.5)/0.5 at 48x48 grey; AdamW lr 2e-3,
weight decay 0.05 on every parameter, no clipping, OneCycleLR over all steps, batch 128, plain cross-entropy;
augmentation: horizontal flip p=0.5, then pad 4 px (replicate) and a random 48x48 crop. Trains on the train/ originals
(the third-party copies ``*.jpg<N>.jpg`` dropped) and reports accuracy / macro-F1 on the validation/ (PublicTest)
originals. Full run: ``.venv/bin/python benchmarks/plain_script.py`` (~30 min on 2 cores); quick check:
``--epochs 1 --limit 2000``. ``--index`` reads the train and test rows from a ferflow index (its ``train`` and ``test``
split originals: the same split a ferflow teacher trains on, for the side-by-side parity run of issue 21 item 4);
``--out`` writes the figures as JSON.
"""

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
import timm
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.metrics import accuracy_score, f1_score

COPY = re.compile(r"\.jpg\d+\.jpg$")  # <orig>.jpg<N>.jpg: third-party blurred copies


def decode(paths: list, labels: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """48x48 grey uint8 images ``[N, 1, 48, 48]`` and their labels."""
    x = np.stack([np.asarray(Image.open(p).convert("L").resize((48, 48)), dtype=np.uint8) for p in paths])
    return torch.from_numpy(x).unsqueeze(1), torch.tensor(labels)


def load(split: Path, classes: list[str]) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    paths = [(p, c) for c, name in enumerate(classes) for p in sorted((split / name).glob("*.jpg"))
             if not COPY.search(p.name)]  # fmt: skip
    return *decode([p for p, _ in paths], [c for _, c in paths]), [str(p.resolve()) for p, _ in paths]


def load_index(index: Path, split: str, classes: list[str]) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    import pandas as pd

    rows = pd.read_parquet(index, columns=["image_path", "label", "split", "origin"])
    rows = rows[(rows.split == split) & (rows.origin == "original")].sort_values("image_path")
    return *decode(list(rows.image_path), [classes.index(c) for c in rows.label]), list(rows.image_path)


def norm(x: torch.Tensor) -> torch.Tensor:
    return (x.float() / 255 - 0.5) / 0.5


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    b = len(x)
    x = torch.where(torch.rand(b, 1, 1, 1, generator=g) < 0.5, x.flip(-1), x)
    xp = F.pad(x.float(), (4, 4, 4, 4), mode="replicate")
    dy, dx = torch.randint(0, 9, (2, b), generator=g)
    return torch.stack([xp[i, :, dy[i] : dy[i] + 48, dx[i] : dx[i] + 48] for i in range(b)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / "../shared/data/fer2013")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--limit", type=int, default=0, help="train on this many random originals (0: all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--index", type=Path, help="a ferflow index.parquet (its train and test originals)")
    ap.add_argument("--out", type=Path, help="write the figures here as JSON")
    ap.add_argument("--predictions", type=Path, help="write each test image's path, label and prediction here (CSV)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    g = torch.Generator().manual_seed(a.seed)
    classes = sorted(p.name for p in (a.data / "train").iterdir() if p.is_dir())
    if a.index:
        (xtr, ytr, _), (xte, yte, test_paths) = (load_index(a.index, s, classes) for s in ("train", "test"))
    else:
        xtr, ytr, _ = load(a.data / "train", classes)
        xte, yte, test_paths = load(a.data / "validation", classes)
    if a.limit:
        keep = torch.randperm(len(ytr), generator=g)[: a.limit]
        xtr, ytr = xtr[keep], ytr[keep]
    model = timm.create_model("resnet18", pretrained=False, in_chans=1, num_classes=len(classes))
    steps = a.epochs * -(-len(ytr) // 128)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    t0 = time.perf_counter()
    for epoch in range(a.epochs):
        model.train()
        perm, total = torch.randperm(len(ytr), generator=g), 0.0
        for i in range(0, len(perm), 128):
            rows = perm[i : i + 128]
            loss = F.cross_entropy(model(norm(augment(xtr[rows], g))), ytr[rows])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(rows)
        print(f"epoch {epoch}: train loss {total / len(ytr):.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    train_s = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(norm(xte[i : i + 512])).argmax(1) for i in range(0, len(yte), 512)])
    rate = a.epochs * len(ytr) / train_s
    print(f"train {len(ytr)} originals x {a.epochs} epochs in {train_s:.0f} s ({rate:.0f} img/s)")
    acc, mf1 = accuracy_score(yte, pred), f1_score(yte, pred, average="macro")
    f1s = f1_score(yte, pred, average=None, labels=range(len(classes))).round(4).tolist()
    per_class = dict(zip(classes, f1s, strict=True))
    print(f"PublicTest originals ({len(yte)}): accuracy {acc:.4f} macro-F1 {mf1:.4f} per-class F1 {per_class}")
    if a.out:
        fig = {"train_rows": len(ytr), "test_rows": len(yte), "epochs": a.epochs, "threads": a.threads, "seed": a.seed,
               "train_s": round(train_s, 1), "img_per_s": round(rate, 1), "accuracy": round(float(acc), 4),
               "macro_f1": round(float(mf1), 4), "per_class_f1": per_class}  # fmt: skip
        a.out.write_text(json.dumps(fig, indent=2) + "\n")
    if a.predictions:
        lines = [f"{p},{classes[int(y)]},{classes[int(q)]}" for p, y, q in zip(test_paths, yte, pred, strict=True)]
        a.predictions.write_text("image_path,label,prediction\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
