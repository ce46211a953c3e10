"""Student candidates for the FER2013 CPU reference (issue 21 item 5): ONNX size and batch-1 latency, same run.

Each candidate is a ``ModelConfig`` as a profile writes it, built through the library (``create_model``), exported
through the library (``export_onnx``, which reparameterises RepVGG/MobileOne-style models first) and, when asked,
statically quantised to INT8 (``quantize_int8``, calibrated on random inputs: latency and size only, accuracy comes
from the training runs). Latency: ONNX Runtime, 1 intra-op thread, batch 1, 48x48x1; the candidates are timed in
interleaved rounds so machine load falls on all of them alike, and every figure is also given as a ratio to the
shipped student (MobileNetV3-Small-0.5, small-input stem) measured in the same rounds.

Usage: ``.venv/bin/python benchmarks/bench_student_choice.py [--rounds 5] [--runs 300] [--int8] [--out FILE.json]``.
Nothing is written inside the repository (a temp folder holds the ONNX files).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fer_core.export.latency import time_calls  # noqa: E402
from fer_core.export.onnx import export_onnx  # noqa: E402
from fer_core.export.quantize import quantize_int8  # noqa: E402
from fer_core.export.session import make_session  # noqa: E402
from fer_core.models import create_model  # noqa: E402
from fer_core.models.config import ModelConfig  # noqa: E402
from fer_core.preprocess import PreprocessSpec  # noqa: E402

BASELINE = "mnv3s_050_small_stem (shipped)"
CANDIDATES: dict[str, dict] = {
    BASELINE: {"name": "mobilenetv3_small_050", "small_input_stem": True},
    "resnet18_w050": {"name": "resnet18", "kwargs": {"channels": [32, 64, 128, 256]}},
    "resnet18_w0375": {"name": "resnet18", "kwargs": {"channels": [24, 48, 96, 192]}},
    "resnet10t": {"name": "resnet10t"},
    "repvgg_a0": {"name": "repvgg_a0"},
    "resnet18": {"name": "resnet18"},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=300, help="timed calls per candidate per round")
    ap.add_argument("--int8", action="store_true", help="also time the INT8 (QDQ) model of each candidate")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    torch.manual_seed(0)
    spec = PreprocessSpec(size=(48, 48), channels=1)
    x = np.random.default_rng(0).standard_normal((1, 1, 48, 48)).astype(np.float32)
    rows: dict[str, dict] = {}
    sessions = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, kw in CANDIDATES.items():
            cfg = ModelConfig(in_chans=1, img_size=48, **kw)
            model = create_model(cfg)
            params = sum(p.numel() for p in model.parameters())
            path = export_onnx(model, spec, Path(tmp) / f"{name}.onnx")
            variants = {"fp32": path}
            if a.int8:
                calib = np.random.default_rng(1).standard_normal((64, 1, 48, 48)).astype(np.float32)
                variants["int8"] = quantize_int8(path, calib, Path(tmp) / f"{name}.int8.onnx")
            for v, p in variants.items():
                key = f"{name} {v}"
                rows[key] = {"params_m": round(params / 1e6, 3), "onnx_mb": round(p.stat().st_size / 2**20, 2),
                             "median_ms": []}  # fmt: skip
                sessions[key] = make_session(p, threads=1)
        for _ in range(a.rounds):
            for key, sess in sessions.items():
                t = time_calls(lambda s=sess: s.run(None, {"input": x}), runs=a.runs, warmup=30)
                rows[key]["median_ms"].append(t["median_ms"])
    base = np.array(rows[f"{BASELINE} fp32"]["median_ms"])
    print(f"{'candidate':38s} {'params M':>9s} {'ONNX MB':>8s} {'median ms':>10s} {'x shipped':>10s}")
    for key, row in rows.items():
        ms = np.array(row["median_ms"])
        row["median_of_rounds_ms"] = round(float(np.median(ms)), 4)
        row["ratio_to_shipped"] = round(float(np.median(ms / base)), 2)  # per-round ratio: same load on both
        print(f"{key:38s} {row['params_m']:9.2f} {row['onnx_mb']:8.2f} {row['median_of_rounds_ms']:10.3f} "
              f"{row['ratio_to_shipped']:10.2f}")  # fmt: skip
    if a.out:
        a.out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
