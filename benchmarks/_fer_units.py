"""ferflow's unit graph for a pipeline profile, with per-unit durations from a table of named throughput figures.

Every figure is a :class:`Param` with its source, so a measured value can replace an assumption by name
(``{**DEFAULT_PARAMS, "data_train_img_s": Param(...)}``). Pure: takes the profile as the dict ``yaml.safe_load`` gives.

Duration of one GPU training unit (teacher x seed, student x seed, sweep trial)::

    startup + n_all/decode + epochs * (n_train * t_train + n_val * t_eval) + n_all * t_eval   (last: logits export)
    t_train = 1/gpu_rate + 1/data_train_rate + bytes/h2d
    t_eval = forward_share/gpu_rate + 1/data_eval_rate + bytes/h2d

The terms add rather than overlap because the engine assembles each batch on the host and then blocks on the GPU
every step (``float(loss)`` and the clipped gradient norm in ``fer_core/train/step.py``), so host and device take
turns. Students distil from precomputed teacher logits, so no teacher forward is charged to them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from _schedsim import Unit

from fer_core.errors import ConfigError


@dataclass(frozen=True)
class Param:
    value: float
    unit: str
    source: str


_REPORT = "reports/fer2013-cpu/report.md"
_TIMM = "timm results/benchmark-train-amp-nchw-pt112-cu113-rtx3090.csv (AMP, batch 512/128)"

DEFAULT_PARAMS: dict[str, Param] = {
    "n_train": Param(27_529, "images", f"{_REPORT} section 1, train row (after dedup and provenance moves)"),
    "n_val": Param(3_068, "images", f"{_REPORT} section 1, val row"),
    "n_test": Param(4_058, "images", f"{_REPORT} section 1, test row"),
    "rtx3090/resnet18": Param(2764.2, "img/s", f"{_TIMM}, 224 px"),
    "rtx3090/mobilenetv3_large_100": Param(2167.3, "img/s", f"{_TIMM}, 224 px"),
    # timm lists efficientnet_b3 at its 288 px default (456.8 img/s); conv cost scales with pixels, so x (288/224)^2.
    "rtx3090/efficientnet_b3": Param(456.8 * (288 / 224) ** 2, "img/s", f"{_TIMM}, 288 px scaled to 224 px"),
    # Reasoned, not measured: dense fp16/bf16 tensor peak is ~7-14x a 3090's, but small convnets in eager PyTorch are
    # bound by memory bandwidth (H100 3.35 / H200 4.8 TB/s vs 0.94 TB/s: 3.6-5x) and by per-kernel launch overhead at
    # batch 128, so 3x, a little under the bandwidth ratio. The benchmark prints 2x and 4x beside it.
    "hopper_over_3090": Param(3.0, "x", "reasoned: under the 3.6-5x memory-bandwidth ratio (launch overhead)"),
    "forward_share": Param(1 / 3, "of a step", "rule of thumb: backward ~ 2x forward, so inference ~ 1/3 of a step"),
    # Measured by bench_schedule_sim.py on this machine and replaced there; these defaults are one such measurement.
    "data_train_img_s": Param(1150.0, "img/s", "ArrayDataset.get_batch 224x224x3 flip+shift: 288/CPU-s x 4 CPUs"),
    "data_eval_img_s": Param(3090.0, "img/s", "ArrayDataset.get_batch, no augmentation: 772/CPU-s x 4 CPUs"),
    "decode_img_s": Param(15_900.0, "img/s", "cv2.imdecode + prepare_pixels 48->224 cubic, per CPU-second"),
    "h2d_bytes_s": Param(10e9, "B/s", "reasoned: pageable host-to-device copy of the float32 batch (PCIe 4/5)"),
    "startup_s": Param(
        30.0,
        "s",
        "reasoned: worker process, imports, CUDA context, MLflow run (PLATFORM.md: "
        "Ray ~1 s per Tune trial, ray.init 4-5 s)",
    ),
    "ingest_s": Param(120.0, "s", f"assumed: {_REPORT} lists ingest under 0.05 min of MLflow run time (cache hit)"),
    "ensemble_s": Param(60.0, "s", "assumed: Ray Tune, 4 vectorised trials (PLATFORM.md ~1 s/trial) + Ray start"),
    "calibrate_s": Param(15.0, "s", "assumed: temperature fit on cached validation logits, one per student"),
    "package_s": Param(90.0, "s", "assumed: ONNX export, parity on 256 samples, latency, registry (CPU)"),
    "report_s": Param(180.0, "s", "assumed: plots, bootstrap/permutation tests over the cached logits"),
}


def gpu_bound(params: dict[str, Param]) -> dict[str, Param]:
    """The same table with the host data path off the critical path (augmentation on the GPU, prefetch)."""
    off = "scenario: data path overlapped / on the GPU"
    inf = float("inf")
    return {
        **params,
        "data_train_img_s": Param(inf, "img/s", off),
        "data_eval_img_s": Param(inf, "img/s", off),
        "h2d_bytes_s": Param(inf, "B/s", off),
    }


def gpu_img_s(model: str, img_size: int, p: dict[str, Param]) -> float:
    """Training img/s of ``model`` at ``img_size`` on a Hopper GPU (the RTX 3090 figure x the speed-up, per pixel).

    Raises:
        ConfigError: no throughput figure for ``model`` (the message lists those known).
    """
    key = f"rtx3090/{model}"
    if key not in p:
        known = sorted(k.split("/", 1)[1] for k in p if k.startswith("rtx3090/"))
        raise ConfigError(f"no throughput figure for model {model!r}; known: {known}; add 'rtx3090/{model}'")
    return p[key].value * p["hopper_over_3090"].value * (224 / img_size) ** 2


def train_unit_s(model: str, img_size: int, channels: int, epochs: float, p: dict[str, Param]) -> float:
    """Seconds for one training run (load, epochs with validation, logits export); see the module docstring."""
    v = {k: x.value for k, x in p.items()}
    g = gpu_img_s(model, img_size, p)
    bytes_per_img = 4 * channels * img_size * img_size  # the batch travels as normalised float32
    t_train = 1 / g + 1 / v["data_train_img_s"] + bytes_per_img / v["h2d_bytes_s"]
    t_eval = v["forward_share"] / g + 1 / v["data_eval_img_s"] + bytes_per_img / v["h2d_bytes_s"]
    n_all = v["n_train"] + v["n_val"] + v["n_test"]
    return (
        v["startup_s"]
        + n_all / v["decode_img_s"]
        + epochs * (v["n_train"] * t_train + v["n_val"] * t_eval)
        + n_all * t_eval
    )


def gpu_compute_s(model: str, img_size: int, epochs: float, p: dict[str, Param]) -> float:
    """The part of :func:`train_unit_s` the GPU spends computing (train steps, validation, export)."""
    v = {k: x.value for k, x in p.items()}
    g = gpu_img_s(model, img_size, p)
    n_all = v["n_train"] + v["n_val"] + v["n_test"]
    return (epochs * (v["n_train"] + v["n_val"] * v["forward_share"]) + n_all * v["forward_share"]) / g


def family(strategy: str, loss: str, mode: str) -> str:
    """A distilled recipe's family name, as ``DistillConfig.family`` writes it: ``-online`` when online."""
    return f"{strategy}-{loss}" + ("-online" if mode == "online" else "")


def sweep_kinds(sweep: dict[str, Any], mode: str = "offline") -> list[str]:
    """The kind of every sweep variant, one entry per variant, in the order ``tasks.distill.sweep_variants`` builds.

    ``ce`` once; per strategy, ``kd`` x alphas x temperatures and ``dkd`` x alphas x betas x temperatures, each in
    every one of the sweep's ``modes`` (default: ``mode``, the student's distillation mode); then the ``variants``
    filter. Defaults follow the profile's ``SweepSection``.

    Raises:
        ConfigError: ``variants`` names a kind outside the grid.
    """
    alphas, betas = sweep.get("alphas", [0.5]), sweep.get("betas", [4.0])
    temps = sweep.get("temperatures", [2.0])
    kinds: list[str] = []
    for strategy in sweep.get("strategies", ["pairwise"]):
        for loss in sweep.get("losses", ["kd", "dkd"]):
            if loss == "ce":
                kinds += [] if "ce" in kinds else ["ce"]
                continue
            points = len(alphas) * len(temps) * (len(betas) if loss == "dkd" else 1)
            kinds += [family(strategy, loss, m) for _ in range(points) for m in sweep.get("modes") or [mode]]
    wanted = sweep.get("variants")
    if wanted is not None:
        unknown = sorted(set(wanted) - set(kinds))
        if unknown:
            raise ConfigError(f"sweep.variants {unknown} are not in the strategies x losses grid {sorted(set(kinds))}")
        kinds = [k for k in kinds if k in wanted]
    return kinds


def _train(cfg: dict[str, Any], epochs_default: float = 1) -> tuple[str, int, int, float]:
    m = cfg["model"]
    return m["name"], int(m.get("img_size", 224)), int(m.get("in_chans", 3)), float(cfg.get("epochs", epochs_default))


def build_units(profile: dict[str, Any], p: dict[str, Param], *, ce_early: bool = False) -> list[Unit]:
    """The profile's unit graph in submission order: ingest -> teachers -> ensemble -> students + sweep (+ nested)
    -> calibrate -> package -> report.

    Dependencies are the real data dependencies: a teacher needs the index; the ensemble every teacher's logits; a
    distilled student the tuned ensemble; calibrating a student only that student; packaging every calibrated
    student; the report the package and the sweep. The sweep and the packaged family run side by side (both need
    only the ensemble). ``ce_early``: CE-baseline trials need no teacher, so they may start right after ingest
    (today's sweep is one Tune call after the ensemble, so they do not).

    Args:
        profile: the YAML profile as a dict.
        p: the duration table.
        ce_early: let CE trials depend on ingest only.

    Returns:
        Units; GPU units hold ``{gpu: 1, cpu: student.sweep.resources.cpu}`` (default 4).
    """
    v = {k: x.value for k, x in p.items()}
    st, sweep = profile["student"], profile["student"].get("sweep", {})
    cpu = int(sweep.get("resources", {}).get("cpu", 4))
    units = [Unit("ingest", v["ingest_s"], group="cpu")]
    for t in profile["teachers"]["teachers"]:
        for seed in profile["teachers"].get("seeds", [0]):
            dur = train_unit_s(*_train(t["train"]), p)
            units.append(Unit(f"teacher/{t['name']}/s{seed}", dur, 1, cpu, ("ingest",), "teacher"))
    teachers = tuple(u.name for u in units if u.group == "teacher")
    units.append(Unit("ensemble", v["ensemble_s"], deps=teachers, group="cpu"))
    student_s = train_unit_s(*_train(st["train"]), p)
    d = st["distill"]
    mode = d.get("mode", "offline")
    packaged = family(d.get("strategy", "pairwise"), d.get("loss", {}).get("kind", "kd"), mode)
    students = [Unit(f"student/{packaged}/s{s}", student_s, 1, cpu, ("ensemble",), "student") for s in st["seeds"]]
    units += students
    if sweep.get("enabled", False):
        for i, kind in enumerate(sweep_kinds(sweep, mode)):
            deps = ("ingest",) if ce_early and kind == "ce" else ("ensemble",)
            for s in sweep.get("seeds", [42, 1337, 2025, 7, 11]):
                units.append(Unit(f"sweep/{kind}#{i}/s{s}", student_s, 1, cpu, deps, "student"))
    if st.get("nested"):  # assumed: a Nested Learning run costs one student run (same model, data and epochs)
        units += [Unit(f"nested/s{s}", student_s, 1, cpu, ("ensemble",), "nested") for s in st["seeds"]]
    cal = [Unit(f"calibrate/{u.name}", v["calibrate_s"], deps=(u.name,), group="cpu") for u in students]
    units += cal
    units.append(Unit("package", v["package_s"], deps=tuple(u.name for u in cal), group="cpu"))
    rest = tuple(u.name for u in units if u.name.startswith(("sweep/", "nested/")))
    units.append(Unit("report", v["report_s"], deps=("package", *rest), group="cpu"))
    return units


STUDY_SEEDS = [42, 1337, 2025, 7, 11]
# The 20-run study: the packaged family (pairwise KD) plus CE, pairwise DKD and fused KD, 5 seeds each.
STUDY_SWEEP = {"enabled": True, "strategies": ["pairwise", "fused"], "losses": ["ce", "kd", "dkd"],
               "scheduler": "fifo"}  # fmt: skip
STUDY_VARIANTS = [("pairwise", "dkd"), ("fused", "kd")]  # beside CE; named in the GPU profile's distillation mode


def study_profile(gpu: dict[str, Any], reference: dict[str, Any], seeds: list[int] | None = None) -> dict[str, Any]:
    """The issue's student study on the GPU profile: 4 families (packaged pairwise KD + CE, pairwise DKD, fused KD)
    x 5 seeds, with the GPU profile's models, epochs and per-trial resources and the reference profile's loss
    hyper-parameters (one alpha/beta/T each). ``seeds`` overrides the 5 study seeds."""
    out = copy.deepcopy(gpu)
    ref = reference["student"]["sweep"]
    sweep = {**copy.deepcopy(ref), **STUDY_SWEEP, "resources": dict(gpu["student"]["sweep"].get("resources", {}))}
    mode = gpu["student"]["distill"].get("mode", "offline")
    sweep["variants"] = ["ce", *(family(strategy, loss, mode) for strategy, loss in STUDY_VARIANTS)]
    for k in ("alphas", "betas", "temperatures"):
        sweep[k] = list(ref.get(k, gpu["student"]["sweep"].get(k, [None])))[:1]
    out["student"]["sweep"] = sweep
    out["student"]["seeds"] = list(seeds if seeds is not None else STUDY_SEEDS)
    sweep["seeds"] = list(out["student"]["seeds"])
    return out
