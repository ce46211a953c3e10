"""Ensemble sweep: Ray Tune trials each evaluate a vectorised block of (weights x temperature) configs per seed."""

from __future__ import annotations

import numpy as np
import pandas as pd
from prefect import task
from prefect.artifacts import create_table_artifact
from ray import tune

from fer_adapters.cache import CODE_AWARE
from fer_adapters.datasets import load_index
from fer_adapters.ensemble_trial import METRICS, aggregate, evaluate_block
from fer_adapters.ray_cluster import ensure_ray
from fer_adapters.run_store import RunFolder, fetch, find_result, run_key
from fer_adapters.runs import ferflow_run
from fer_adapters.sweeps import run_sweep
from fer_adapters.tables import ensemble_grid_rows
from fer_core.calibrate.temperature import fit_temperature
from fer_core.ensemble.grid import best_config, ratio_grid, simplex_grid
from fer_core.io import atomic_path
from fer_core.logits.store import read_logits, stack_aligned
from fer_core.taxonomy import CLASS_TO_INDEX
from fer_spec.profile import EnsembleSection
from fer_spec.results import EnsembleResult, IndexRef, TeacherRun
from tasks.teachers import teachers_of_seed


def weight_grid(k: int, step: float) -> np.ndarray:
    """Ratios for two teachers, the simplex for more."""
    return ratio_grid(step) if k == 2 else simplex_grid(k, step)


def sweep_table(
    seeds: dict[int, tuple[np.ndarray, np.ndarray]], step: float, temperatures: list[float], blocks: int
) -> pd.DataFrame:
    """Run the sweep on Ray Tune and return every (seed, weights, T) row.

    Args:
        seeds: per teacher-seed, ``(logits [K, N, C], labels [N])`` joined by sample id.
        step: weight grid step.
        temperatures: ensemble temperatures.
        blocks: number of Tune trials the weight grid is split into (each vectorised).
    """
    k = next(iter(seeds.values()))[0].shape[0]
    grid = weight_grid(k, step)
    parts = [b.tolist() for b in np.array_split(grid, min(blocks, len(grid))) if len(b)]
    ensure_ray()  # with_parameters puts the logits in the object store once; trials read them from there
    results = run_sweep(
        tune.with_parameters(evaluate_block, data={"seeds": seeds, "temperatures": list(temperatures)}),
        {"weights": tune.grid_search(parts)},
        name="tune_ensemble",
        metric="macro_f1",
        resources={"cpu": 1},
    )
    return pd.DataFrame([row for r in results for row in r["metrics"]["rows"]])


def validation_logits_by_seed(
    teachers: list[TeacherRun], names: list[str], index_sha256: str
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """``{seed: (logits [K, N, C], labels [N])}`` over the validation split, joined by sample_id."""
    rows = load_index(index_sha256)
    val = rows[rows["split"] == "val"]
    ids = val["sample_id"].tolist()
    y = val["label"].map(CLASS_TO_INDEX).to_numpy(np.int64)
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for seed in sorted({t.seed for t in teachers}):
        runs = teachers_of_seed(teachers, names, seed)
        tables = [read_logits(fetch(t.logits, t.logits_sha256)) for t in runs]
        out[seed] = (stack_aligned(tables, ids, allow_extra=True), y)
    return out


def teacher_temperatures(seeds: dict[int, tuple[np.ndarray, np.ndarray]]) -> list[float]:
    """Each teacher's NLL temperature on the validation logits of every teacher seed pooled."""
    k = next(iter(seeds.values()))[0].shape[0]
    y = np.concatenate([yy for _, yy in seeds.values()])
    return [float(fit_temperature(np.concatenate([z[i] for z, _ in seeds.values()]), y).temperature) for i in range(k)]


def ensemble_key(section: EnsembleSection, teachers: list[TeacherRun]) -> str:
    """The store prefix of the ensemble sweep over these teacher runs."""
    key = {"logits": sorted(t.logits_sha256 for t in teachers), "section": section.model_dump(mode="json")}
    return run_key("tune_ensemble", "grid", key)


def find_ensemble(section: EnsembleSection, teachers: list[TeacherRun]) -> EnsembleResult | None:
    """The finished ensemble sweep over these teacher runs in the store, or None when it has not run."""
    return find_result(ensemble_key(section, teachers), EnsembleResult)


@task(name="tune_ensemble", cache_policy=CODE_AWARE, persist_result=True, task_run_name="ensemble sweep")
def tune_ensemble_task(
    section: EnsembleSection, teachers: list[TeacherRun], teacher_names: list[str], index: IndexRef
) -> EnsembleResult:
    """Sweep, aggregate, log one MLflow parent run with the grid table; return the best config.

    The best config: among those within ``section.f1_tolerance`` of the best mean macro-F1, the lowest validation
    NLL. Each teacher's own calibration temperature (NLL fit on validation, pooled over teacher seeds) is returned
    too: distillation divides each teacher's logits by it before the KD temperature.
    """
    index_sha256 = index.index_sha256
    step, temperatures, blocks = section.weight_step, section.temperatures, section.trials
    f1_tolerance = section.f1_tolerance
    seeds = validation_logits_by_seed(teachers, teacher_names, index_sha256)
    folder = RunFolder(ensemble_key(section, teachers))
    out = folder.local
    table = sweep_table(seeds, step, temperatures, blocks)
    agg = aggregate(table)
    best = best_config(agg, f1_tolerance, by="nll")
    weights = [float(best[f"w_{i}"]) for i in range(len(teacher_names))]
    teacher_t = teacher_temperatures(seeds)
    with atomic_path(out / "ensemble_grid.csv") as tmp:
        agg.to_csv(tmp, index=False)
    with ferflow_run("tune_ensemble", dataset_sha256=index_sha256, run_name="tune_ensemble") as (
        run_id,
        sink,
    ):
        sink.log_params({"teachers": teacher_names, "step": step, "temperatures": temperatures, "seeds": list(seeds)})
        sink.log_metrics({f"best_{m}": float(best[m]) for m in METRICS})
        sink.log_artifact(out / "ensemble_grid.csv")
        from mlflow.tracking import MlflowClient

        client = MlflowClient()
        client.set_tag(run_id, "ferflow.best_weights", ",".join(f"{w:.3f}" for w in weights))
        client.set_tag(run_id, "ferflow.best_temperature", f"{float(best['temperature']):.3f}")
        client.set_tag(run_id, "ferflow.teacher_temperatures", ",".join(f"{t:.3f}" for t in teacher_t))
    rows, spread = ensemble_grid_rows(agg, teacher_names, (weights, float(best["temperature"])))
    create_table_artifact(
        key="ensemble-grid",
        table=rows,
        description=f"Best {len(rows)} of {len(agg)} ensemble configs by validation macro-F1 ({spread}); the chosen "
        f"one (lowest NLL within {f1_tolerance} of the best macro-F1): "
        + ", ".join(f"{n} {w:.2f}" for n, w in zip(teacher_names, weights, strict=True))
        + f", T = {float(best['temperature']):.2f}",
    )
    result = EnsembleResult(
        weights=weights,
        temperature=float(best["temperature"]),
        teacher_names=list(teacher_names),
        teacher_temperatures=teacher_t,
        metrics={m: float(best[m]) for m in METRICS},
        grid_csv=folder.push(out / "ensemble_grid.csv"),
        mlflow_run_id=run_id,
        n_configs=int(len(agg)),
    )
    return folder.save(result)
