"""Screening probes for the FER2013 CPU recipe (issue 16): short runs on subsets, one torch thread, through the library.

Probes (each prints and saves a JSON row per run; every figure is compared with a baseline run of the same probe):

- ``arch``: students under the ONNX batch-1 latency budget (ONNX Runtime, 1 thread, 48 px) and their 1-thread
  training throughput; ResNet-18 (the teacher) as the throughput reference.
- ``teacher_ls``: ResNet-18 teachers with label smoothing 0.1 vs 0 on a subset; validation metrics after a global
  temperature; then one KD student from each (teacher logits divided by the teacher's fitted T) vs a CE student.
- ``augment``: the student with flip + shift (baseline) vs + rotation/zoom and random erasing.
- ``copies``: the student trained with derived copies dropped / one per original / all kept.
- ``students``: students of ``--models`` trained alike (CE), e.g. a longer run of one for the epochs-vs-gain curve
  (every run records its per-epoch validation macro-F1; the cosine schedule ends at the run's last epoch).
- ``screen``: one shared baseline (MobileNetV3-Small-0.5, copies dropped, flip + shift) and one change per run
  (``--runs``: copies kept / one per original, richer augmentation, MobileNetV3-Small-1.0; ``--train-seed`` for a
  replicate). This is the probe ``docs/fer2013_recipe.md`` reports; ``augment`` and ``copies`` are its older forms.
- ``latency``: ONNX batch-1 latency only, with the minimum beside the median (robust on a loaded machine).

Data: an index built by ``run_ingest`` (``--index``; derived_copies=keep, so that the copies probe can choose), a
subset of each class's training originals (``--train-fraction``, natural class balance); validation = all validation
originals. These are screening signals (one seed, few epochs, a subset), not estimates of the full run.

Usage: ``.venv/bin/python benchmarks/probe_recipe.py --index DIR/index.parquet --probe screen [--out DIR]``; the
commands behind the recipe doc: ``--probe arch``, ``--probe latency --models mnv3s050_stem,mnv3s100_stem,...``,
``--probe teacher_ls`` (defaults), ``--probe screen --train-fraction 0.3 --epochs 8 --runs base,keep,rich,s100``, then
``--runs base --train-seed 1`` and ``--runs base --epochs 9``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fer_core.calibrate.metrics import ece  # noqa: E402
from fer_core.calibrate.temperature import apply_temperature, fit_temperature  # noqa: E402
from fer_core.data.dataset import ArrayDataset, TrainAugment, load_split  # noqa: E402
from fer_core.data.index import read_index  # noqa: E402
from fer_core.distill import DistillConfig, make_distill_criterion  # noqa: E402
from fer_core.evaluate.metrics import classification_metrics  # noqa: E402
from fer_core.export.latency import time_calls  # noqa: E402
from fer_core.losses.ce import CELossConfig  # noqa: E402
from fer_core.losses.kd import KDConfig  # noqa: E402
from fer_core.models.backbones import create_model  # noqa: E402
from fer_core.models.config import ModelConfig  # noqa: E402
from fer_core.preprocess import PreprocessSpec  # noqa: E402
from fer_core.train.config import TrainConfig  # noqa: E402
from fer_core.train.engine import train  # noqa: E402
from fer_core.train.predict import predict_logits  # noqa: E402

SPEC = PreprocessSpec(size=(48, 48), channels=1, color="gray", mean=(0.5,), std=(0.5,))
STUDENTS = {
    "mnv3s050_stem": ModelConfig(name="mobilenetv3_small_050", small_input_stem=True),
    "mnv3s100_stem": ModelConfig(name="mobilenetv3_small_100", small_input_stem=True),
    "mnv3l100_stem": ModelConfig(name="mobilenetv3_large_100", small_input_stem=True),
    "effb0_stem": ModelConfig(name="efficientnet_b0", small_input_stem=True),
    "convnext_atto_stem": ModelConfig(name="convnext_atto", small_input_stem=True),
    "resnet18": ModelConfig(name="resnet18"),
    "resnet18_stem": ModelConfig(name="resnet18", small_input_stem=True),
}
TEACHER = ModelConfig(name="resnet18", drop_rate=0.2)
RICH_AUG = TrainAugment(flip=True, shift=0.1, rotate_deg=10.0, scale=0.1, erase_p=0.25)


def _onnx_ms(model: torch.nn.Module, tmp: Path) -> float:
    import timm

    from fer_core.export.onnx import export_onnx
    from fer_core.export.session import make_session

    with timm.layers.set_layer_config(exportable=True):
        path = export_onnx(model, SPEC, tmp / "m.onnx", dynamic_batch=False)
    sess = make_session(path, threads=1)
    x = np.random.default_rng(0).standard_normal((1, 1, 48, 48)).astype(np.float32)
    name = sess.get_inputs()[0].name
    return time_calls(lambda: sess.run(None, {name: x}), runs=400, warmup=40)["median_ms"]


def _train_img_s(cfg: ModelConfig, steps: int = 12, batch: int = 64) -> float:
    model = create_model(cfg)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    x, y = torch.randn(batch, 1, 48, 48), torch.randint(0, 7, (batch,))
    for i in range(steps + 2):
        if i == 2:
            t0 = time.perf_counter()
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return steps * batch / (time.perf_counter() - t0)


def probe_arch(out: Path, **_: object) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, cfg in STUDENTS.items():
            model = create_model(cfg).eval()
            rows.append(
                {
                    "probe": "arch",
                    "model": name,
                    "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
                    "onnx_ms_1thread": _onnx_ms(model, Path(tmp)),
                    "train_img_s_1thread": _train_img_s(cfg),
                }
            )
            print(rows[-1], flush=True)
    return rows


def probe_latency(out: Path, args: argparse.Namespace) -> list[dict]:
    """ONNX batch-1 latency only (1 thread), with the 10th percentile and minimum as well: on a shared machine the
    median of a model slower than a scheduler slice is inflated by preemption, its minimum much less."""
    import timm

    from fer_core.export.onnx import export_onnx
    from fer_core.export.session import make_session

    rows = []
    x = np.random.default_rng(0).standard_normal((1, 1, 48, 48)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            with timm.layers.set_layer_config(exportable=True):
                path = export_onnx(create_model(STUDENTS[name]).eval(), SPEC, Path(tmp) / f"{name}.onnx",
                                   dynamic_batch=False)  # fmt: skip
            sess = make_session(path, threads=1)
            inp = sess.get_inputs()[0].name
            t = []
            for i in range(2200):
                t0 = time.perf_counter()
                sess.run(None, {inp: x})
                if i >= 200:
                    t.append((time.perf_counter() - t0) * 1e3)
            rows.append({"probe": "latency", "model": name, "median_ms": float(np.median(t)),
                         "p10_ms": float(np.percentile(t, 10)), "min_ms": float(np.min(t))})  # fmt: skip
            print(rows[-1], flush=True)
    return rows


# ---------------------------------------------------------------------------------------------------------- training
def _subset(index: pd.DataFrame, fraction: float, seed: int, copies: str) -> pd.DataFrame:
    """Training rows: ``fraction`` of each class's originals (natural class balance) plus their copies per policy."""
    rng = np.random.default_rng(seed)
    tr = index[index["split"] == "train"]
    orig = tr[tr["origin"] == "original"]
    keep = []
    for _, g in orig.sort_values("sample_id").groupby("label"):
        keep.append(g.iloc[np.sort(rng.permutation(len(g))[: max(1, round(fraction * len(g)))])])
    chosen = pd.concat(keep)
    cop = tr[(tr["origin"] != "original") & tr["parent_id"].isin(chosen["sample_id"])]
    if copies == "drop":
        cop = cop.iloc[:0]
    elif copies == "one_per_original":
        cop = cop.sort_values("sample_id").drop_duplicates("parent_id")
    return pd.concat([chosen, cop]).assign(split="train")


class _Data:
    """Decoded training subsets (by copy policy) and the validation originals, loaded once per process."""

    def __init__(self, index_path: Path, fraction: float, seed: int = 0):
        self.index = read_index(index_path)
        self.fraction, self.seed = fraction, seed
        self.val = load_split(self.index[self.index["origin"] == "original"], "val", SPEC, workers=1)
        self._train: dict[str, ArrayDataset] = {}

    def train(self, copies: str = "drop", augment: TrainAugment | None = None) -> ArrayDataset:
        if copies not in self._train:
            self._train[copies] = load_split(_subset(self.index, self.fraction, self.seed, copies), "train", SPEC)
        d = self._train[copies]
        return ArrayDataset(d.pixels.permute(0, 2, 3, 1).numpy(), d.labels, d.sample_ids, SPEC, augment)


def _fit(
    name: str,
    model_cfg: ModelConfig,
    data: ArrayDataset,
    val: ArrayDataset,
    epochs: int,
    seed: int = 0,
    loss: CELossConfig = CELossConfig(),
    criterion=None,
    lr: float = 0.004,
) -> tuple[torch.nn.Module, dict]:  # noqa: ANN001,B008
    """Train one model (engine, 1 thread); returns it and a row with CPU/wall time and the per-epoch val curve."""
    cfg = TrainConfig(model=model_cfg, loss=loss, epochs=epochs, batch_size=64, lr=lr, warmup_epochs=0.3, seed=seed,
                      num_threads=1, device="cpu", amp=False)  # fmt: skip
    model = create_model(model_cfg)
    c0, w0 = time.process_time(), time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        res = train(cfg, data, val, Path(tmp), criterion=criterion, model=model)
    row = {"run": name, "model": model_cfg.name, "epochs": epochs, "train_rows": len(data),
           "cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - w0,
           "img_s_wall": res.throughput_img_s,
           "curve_macro_f1": [round(h.get("val/macro_f1", float("nan")), 4) for h in res.history],
           "curve_accuracy": [round(h.get("val/accuracy", float("nan")), 4) for h in res.history]}  # fmt: skip
    return model.eval(), row


def _evaluate(name: str, model: torch.nn.Module, row: dict, val: ArrayDataset) -> dict:
    row.update(_metrics(predict_logits(model, val), val.labels))
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    return row


def probe_teacher_ls(out: Path, args: argparse.Namespace) -> list[dict]:
    d = _Data(args.index, args.train_fraction)
    tr, va = d.train(), d.val
    rows = []
    student = STUDENTS["mnv3s050_stem"]
    m, r = _fit("student CE (baseline)", student, tr, va, args.epochs)
    rows.append(_evaluate("ce", m, r, va))
    for ls in (0.1, 0.0):
        t, r = _fit(f"teacher resnet18 ls={ls}", TEACHER, tr, va, args.teacher_epochs,
                    loss=CELossConfig(label_smoothing=ls), lr=0.002)  # fmt: skip
        rows.append(_evaluate("teacher", t, r, va))
        temp = rows[-1]["T"]
        z = predict_logits(t, tr)[:, None, :]  # [N, 1, C]: cached for the un-augmented images, as the pipeline does
        kd = DistillConfig(strategy="single", teachers=("t",), teacher_temperatures=(temp,),
                           loss=KDConfig(alpha=0.7, T=2.0))  # fmt: skip
        crit = make_distill_criterion(kd, z, tr.sample_ids)
        m, r = _fit(f"student KD from teacher ls={ls} (teacher T={temp:.2f})", student, tr, va, args.epochs,
                    criterion=crit)  # fmt: skip
        rows.append(_evaluate("kd", m, r, va))
    return rows


def probe_augment(out: Path, args: argparse.Namespace) -> list[dict]:
    d = _Data(args.index, args.train_fraction)
    rows = []
    for name, aug in (("flip + shift (baseline)", None), ("+ rotate 10, zoom 0.1, erase 0.25", RICH_AUG)):
        m, r = _fit(name, STUDENTS["mnv3s050_stem"], d.train(augment=aug), d.val, args.epochs)
        rows.append(_evaluate(name, m, r, d.val))
    return rows


def probe_copies(out: Path, args: argparse.Namespace) -> list[dict]:
    d = _Data(args.index, args.train_fraction)
    rows = []
    for policy in ("drop", "one_per_original", "keep"):
        m, r = _fit(f"derived_copies={policy}", STUDENTS["mnv3s050_stem"], d.train(policy), d.val, args.epochs)
        rows.append(_evaluate(policy, m, r, d.val))
    return rows


def probe_students(out: Path, args: argparse.Namespace) -> list[dict]:
    d = _Data(args.index, args.train_fraction)
    rows = []
    for name in args.models.split(","):
        m, r = _fit(name, STUDENTS[name], d.train(), d.val, args.epochs)
        rows.append(_evaluate(name, m, r, d.val))
    return rows


#: ``screen`` runs: (student, derived-copies policy, augmentation); the first is every other run's baseline.
SCREEN = {
    "base": ("mnv3s050_stem", "drop", None),
    "keep": ("mnv3s050_stem", "keep", None),
    "one": ("mnv3s050_stem", "one_per_original", None),
    "rich": ("mnv3s050_stem", "drop", RICH_AUG),
    "s100": ("mnv3s100_stem", "drop", None),
}


def probe_screen(out: Path, args: argparse.Namespace) -> list[dict]:
    """One shared baseline (mnv3s050, copies dropped, flip + shift), then one change per run (``--runs``)."""
    d = _Data(args.index, args.train_fraction)
    rows = []
    for key in args.runs.split(","):
        student, copies, aug = SCREEN[key]
        m, r = _fit(f"{key}: {student}, derived_copies={copies}, augment={'rich' if aug else 'flip+shift'}",
                    STUDENTS[student], d.train(copies, aug), d.val, args.epochs, seed=args.train_seed)  # fmt: skip
        rows.append(_evaluate(key, m, r, d.val))
        (out / f"screen{args.tag}.partial.json").write_text(json.dumps(rows, indent=1))
    return rows


def _metrics(z: np.ndarray, y: np.ndarray, z_fit: np.ndarray | None = None) -> dict:
    """Validation metrics of logits; ``T`` fitted on the same validation logits (a screening shortcut, stated)."""
    fit = fit_temperature(z if z_fit is None else z_fit, y, z.shape[1])
    p = apply_temperature(z, fit.temperature)
    m = classification_metrics(y, p.argmax(1))
    return {
        "accuracy": m["accuracy"],
        "macro_f1": m["macro_f1"],
        "minority_f1": m["minority_f1"],
        "f1_disgust": m["f1/disgust"],
        "T": fit.temperature,
        "nll_T": fit.nll_after,
        "ece_T": ece(p, y, 15),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path)
    ap.add_argument("--probe", required=True, choices=sorted(PROBES))
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "ferflow-probes")
    ap.add_argument("--train-fraction", type=float, default=0.15, help="share of each class's training originals")
    ap.add_argument("--tag", default="", help="suffix of the JSON file name")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--teacher-epochs", type=int, default=5)
    ap.add_argument("--models", default="mnv3s050_stem,mnv3s100_stem", help="students of the students probe")
    ap.add_argument("--runs", default="base,keep,rich,s100", help=f"screen runs, from {sorted(SCREEN)}")
    ap.add_argument("--train-seed", type=int, default=0, help="training seed of the screen runs (replicates)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows = PROBES[args.probe](args.out, args=args)
    for r in rows:
        r.setdefault("wall_s_total", time.perf_counter() - t0)
    dest = args.out / f"{args.probe}{args.tag}.json"
    dest.write_text(json.dumps(rows, indent=1))
    print(f"{args.probe}: {time.perf_counter() - t0:.0f} s wall, {time.process_time():.0f} s CPU -> {dest}")


PROBES = {
    "arch": probe_arch,
    "teacher_ls": probe_teacher_ls,
    "augment": probe_augment,
    "copies": probe_copies,
    "students": probe_students,
    "screen": probe_screen,
    "latency": probe_latency,
}

if __name__ == "__main__":
    main()
