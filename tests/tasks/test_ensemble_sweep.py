"""The Ray Tune ensemble sweep finds exactly what a plain numpy evaluation of the same grid finds."""

import numpy as np

from fer_adapters.ensemble_trial import aggregate
from fer_core.ensemble.grid import evaluate_grid
from fer_spec.results import EnsembleResult, TeacherRun
from tasks.ensemble import sweep_table, weight_grid


def _teacher_logits(rng, y, noise):
    onehot = np.eye(7)[y] * 3.0
    return (onehot + rng.normal(0, noise, size=onehot.shape)).astype(np.float32)


def test_sweep_matches_numpy_grid(ray_local):
    rng = np.random.default_rng(0)
    seeds = {}
    for s in (0, 1):
        y = rng.integers(0, 7, size=400)
        seeds[s] = (np.stack([_teacher_logits(rng, y, 1.5), _teacher_logits(rng, y, 3.0)]), y)
    temps = [0.8, 1.0, 1.5]
    table = sweep_table(seeds, step=0.25, temperatures=temps, blocks=2)
    assert len(table) == len(weight_grid(2, 0.25)) * len(temps) * 2  # every config of every seed, none lost

    ref = []
    for s, (lg, y) in seeds.items():
        df = evaluate_grid(lg, y, weight_grid(2, 0.25), temps)
        df["seed"] = s
        ref.append(df)
    import pandas as pd

    best_tune, best_np = aggregate(table).iloc[0], aggregate(pd.concat(ref)).iloc[0]
    assert best_tune["macro_f1"] == best_np["macro_f1"]
    assert (best_tune["w_0"], best_tune["temperature"]) == (best_np["w_0"], best_np["temperature"])
    assert best_tune["w_0"] > 0.5  # the less noisy teacher gets the larger weight

    # The sweep turned Tune's per-trial files off: its warning that it cannot read them back is dropped, nothing else.
    import logging

    log = logging.getLogger("ray.tune.analysis.experiment_analysis")
    missing = ("Failed to fetch metrics for 2 trial(s):\n"
               "- t: FileNotFoundError('both result.json and progress.csv were not found')")
    records = [log.makeRecord(log.name, logging.WARNING, __file__, 1, m, None, None) for m in (missing, "other")]
    assert [all(f.filter(r) for f in log.filters) for r in records] == [False, True]


def test_teacher_temperatures_are_each_teachers_nll_fit():
    from fer_core.calibrate.temperature import fit_temperature
    from tasks.ensemble import teacher_temperatures

    rng = np.random.default_rng(3)
    y = rng.integers(0, 7, size=600)
    sharp, soft = _teacher_logits(rng, y, 1.0) * 4.0, _teacher_logits(rng, y, 1.0) * 0.25
    temps = teacher_temperatures({0: (np.stack([sharp, soft]), y)})
    assert temps == [fit_temperature(sharp, y).temperature, fit_temperature(soft, y).temperature]
    assert temps[0] > 1.0 > temps[1]  # over-confident teacher cooled, under-confident one sharpened


def test_distillation_uses_each_teachers_own_temperature_and_weight_by_name():
    from fer_core.distill.config import DistillConfig
    from tasks.distill import with_ensemble

    dcfg = DistillConfig(strategy="pairwise", teachers=("b", "a"), loss={"kind": "kd", "T": 2.0})
    ens = EnsembleResult(weights=[0.7, 0.3], temperature=3.0, teacher_names=["a", "b"],
                         teacher_temperatures=[0.8, 1.2], metrics={}, grid_csv="", mlflow_run_id="", n_configs=1)
    out = with_ensemble(dcfg, ens)
    assert out.teacher_temperatures == (1.2, 0.8) and out.weights == (0.3, 0.7)  # joined by name, not position
    outsider = dcfg.model_copy(update={"teachers": ("a", "c")})
    assert with_ensemble(outsider, ens).teacher_temperatures == (3.0, 3.0)  # a teacher outside it: the shared T


def _teacher(digit: str) -> TeacherRun:
    return TeacherRun(name=f"t{digit}", teacher=f"t{digit}", seed=0, checkpoint="", checkpoint_sha256="", logits="",
                      logits_sha256=digit * 64, mlflow_run_id="", val_metrics={}, class_f1=[], out_dir="")


def test_a_student_run_folder_changes_with_its_teachers_and_their_temperatures():
    """A changed teacher temperature (or retrained teacher) must never resume the previous student's checkpoint."""
    from fer_adapters.run_store import run_key
    from fer_core.distill.config import DistillConfig
    from tasks.distill import distill_key

    teachers = [_teacher("a"), _teacher("b")]
    base = DistillConfig(strategy="pairwise", teachers=("x", "y"), teacher_temperatures=(1.0, 1.0))
    hotter = base.model_copy(update={"teacher_temperatures": (3.0, 3.0)})
    retrained = [_teacher("c"), teachers[1]]
    dirs = {run_key("distill", "s", {"cfg": 1, "extra": distill_key(d, t)})
            for d, t in ((base, teachers), (hotter, teachers), (base, retrained))}  # fmt: skip
    assert len(dirs) == 3
    assert run_key("distill", "s", {"cfg": 1, "extra": distill_key(base, teachers)}) in dirs  # deterministic
