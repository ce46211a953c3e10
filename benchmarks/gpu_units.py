"""GPU unit throughput at configs/fer2013_gpu.yaml's sizes: img/s, GPU utilisation, data-wait share, peak memory.

Trains each teacher and the student of the profile through ``fer_core.train.train`` on synthetic 48 px grey faces
(the packed layout a unit holds), epoch 0 as warm-up (cudnn autotuning, allocator), and reports epoch 1: training
img/s, the host's batch-building share of the epoch (``train/data_frac``; with batches built on the GPU this bounds the
GPU's wait for data; target <= 10 %), GPU utilisation sampled by ``nvidia-smi`` every 200 ms while the unit trains, and
the CUDA allocator's peak. Prints one JSON line per unit and a table.

Run: ``.venv/bin/python benchmarks/gpu_units.py [--n 16384] [--compile]`` (needs CUDA).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fer_core.data.dataset import ArrayDataset, TrainAugment  # noqa: E402
from fer_core.preprocess import PreprocessSpec  # noqa: E402
from fer_core.sink import ListSink  # noqa: E402
from fer_core.train import TrainConfig, train  # noqa: E402


def _faces(n: int, seed: int, spec: PreprocessSpec) -> ArrayDataset:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 7, n)
    px = (20 + 32 * y[:, None, None] + rng.integers(0, 40, (n, *spec.size))).astype(np.uint8)
    return ArrayDataset(px, y, [f"s{seed}-{i}" for i in range(n)], spec)


class _Smi:
    """``nvidia-smi`` sampling utilisation and memory in the background."""

    def __enter__(self) -> _Smi:
        self.file = tempfile.NamedTemporaryFile("w+", suffix=".csv")
        cmd = ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits", "-lms", "200"]
        try:
            self.proc = subprocess.Popen(cmd, stdout=self.file, stderr=subprocess.DEVNULL)
        except FileNotFoundError:
            self.proc = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.file.seek(0)
        rows = [line.split(",") for line in self.file.read().splitlines() if line.strip()]
        self.util = [float(r[0]) for r in rows if len(r) == 2 and r[0].strip().replace(".", "").isdigit()]
        self.file.close()


def run_unit(name: str, tcfg: TrainConfig, tr: ArrayDataset, va: ArrayDataset) -> dict:
    sink = ListSink()
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as d, _Smi() as smi:
        t = time.perf_counter()
        res = train(tcfg, tr, va, Path(d), sink=sink)
        wall = time.perf_counter() - t
    busy = smi.util[len(smi.util) // 3 :] if smi.util else []  # past the warm-up epoch, roughly
    return {
        "unit": name, "model": tcfg.model.name, "img_size": tcfg.model.img_size, "batch": tcfg.batch_size,
        "compile": tcfg.compile, "img_s": res.history[-1]["train/img_per_s"],
        "data_frac": sink.series("train/data_frac")[-1], "gpu_util_mean": float(np.mean(busy)) if busy else None,
        "peak_mem_gb": torch.cuda.max_memory_allocated() / 2**30 if cuda else 0.0, "wall_s": wall,
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=16384, help="training faces per unit")
    ap.add_argument("--compile", action="store_true", help="also run the student with torch.compile")
    ap.add_argument("--cpu-smoke", action="store_true", help="check this script on CPU (tiny, figures meaningless)")
    args = ap.parse_args()
    if not torch.cuda.is_available() and not args.cpu_smoke:
        sys.exit("gpu_units.py needs a CUDA device")
    smoke = {"device": "cpu", "batch_size": 16, "model": {"img_size": 32}} if args.cpu_smoke else {}
    prof = yaml.safe_load((ROOT / "configs/fer2013_gpu.yaml").read_text(encoding="utf-8"))
    spec = PreprocessSpec(**prof["data"]["preprocess"])
    tr, va = _faces(args.n, 0, spec), _faces(2048, 1, spec)
    units = [(f"teacher/{t['name']}", t["train"]) for t in prof["teachers"]["teachers"]]
    units.append(("student", prof["student"]["train"]))
    rows = []
    for name, raw in units:
        tcfg = TrainConfig.model_validate(raw | {"epochs": 2, "warmup_epochs": 0.5} | smoke
                                          | ({"model": raw["model"] | smoke["model"]} if smoke else {}))  # fmt: skip
        aug = tcfg.augment or TrainAugment()
        rows.append(run_unit(name, tcfg, tr.with_augment(aug), va))
        print(json.dumps(rows[-1]), flush=True)
        if args.compile and name == "student":
            rows.append(run_unit(name, tcfg.model_copy(update={"compile": True}), tr.with_augment(aug), va))
            print(json.dumps(rows[-1]), flush=True)
    where = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU smoke run"
    print(f"\n{where}; {args.n} faces 48 px packed on the GPU; epoch 1 of 2 (0 = warm-up)")
    print("| unit | model @ px, batch | img/s | host data share | GPU util (smi) | peak GB |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        util = f"{r['gpu_util_mean']:.0f} %" if r["gpu_util_mean"] is not None else "n/a"
        tag = " (compiled)" if r["compile"] else ""
        print(f"| {r['unit']}{tag} | {r['model']} @ {r['img_size']}, {r['batch']} | {r['img_s']:.0f} | "
              f"{r['data_frac']:.1%} | {util} | {r['peak_mem_gb']:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
