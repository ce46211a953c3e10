"""Student distillation: one run (task), and the Ray Tune sweep over strategy x loss x alpha/beta/T x seeds."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd
from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import INPUTS, TASK_SOURCE
from ray import tune
from ray.tune.schedulers import ASHAScheduler

from fer_core.distill.config import DistillConfig
from fer_core.distill.criterion import make_distill_criterion
from fer_core.errors import ConfigError
from fer_core.evaluate.stats import paired_permutation_test, seed_bootstrap_ci, verdict
from fer_core.logits.store import read_logits, stack_aligned
from fer_core.losses.dkd import DKDConfig
from fer_core.losses.kd import KDConfig
from fer_core.preprocess import PreprocessSpec
from fer_core.taxonomy import FER_CLASSES
from fer_core.train.config import TrainConfig
from tasks._mlflow import ferflow_run
from tasks._tune import run_sweep
from tasks.teachers import teachers_of_seed, train_and_export


def teacher_criterion_factory(dcfg: DistillConfig, teachers: list[dict[str, Any]]):
    """Build ``train_ds -> criterion``: teacher logits joined to the student's rows BY sample_id, never by position.

    The teachers of the first teacher seed are used (the ensemble sweep averages over all seeds).
    """
    ordered = teachers_of_seed(teachers, dcfg.teachers, min(t["seed"] for t in teachers))
    tables = [read_logits(t["logits"]) for t in ordered]
    class_f1 = np.asarray([t["class_f1"] for t in ordered], dtype=np.float64)

    def factory(train_ds: Any):
        aligned = stack_aligned(tables, train_ds.sample_ids, FER_CLASSES, allow_extra=True)  # [K, N, C]
        return make_distill_criterion(dcfg, np.transpose(aligned, (1, 0, 2)), train_ds.sample_ids, class_f1=class_f1)

    return factory


def distill_key(dcfg: DistillConfig, teachers: list[dict[str, Any]]) -> dict[str, Any]:
    """What a distilled student's run folder is addressed by beyond its train config: the resolved distillation
    config (strategy, loss, teacher weights and temperatures) and the content of the teacher logits."""
    return {"distill": dcfg.model_dump(mode="json"), "teachers": sorted(t["logits_sha256"] for t in teachers)}


def with_ensemble(dcfg: DistillConfig, ensemble: dict[str, Any] | None) -> DistillConfig:
    """Fill teacher weights and the calibration temperature from the ensemble sweep when the config leaves them open."""
    if ensemble is None:
        return dcfg
    update: dict[str, Any] = {}
    names = ensemble.get("teacher_names")
    if dcfg.weights is None and len(ensemble["weights"]) == len(dcfg.teachers):
        w = dict(zip(names, ensemble["weights"], strict=True)) if names else None
        update["weights"] = tuple(w[n] for n in dcfg.teachers) if w else tuple(ensemble["weights"])
    if dcfg.teacher_temperatures is None:
        fitted = dict(zip(names or [], ensemble.get("teacher_temperatures", []), strict=True))
        if fitted and all(n in fitted for n in dcfg.teachers):  # each teacher's own NLL temperature
            update["teacher_temperatures"] = tuple(fitted[n] for n in dcfg.teachers)
        else:  # an ensemble result without per-teacher temperatures: the shared ensemble T
            update["teacher_temperatures"] = tuple([ensemble["temperature"]] * len(dcfg.teachers))
    return dcfg.model_copy(update=update)


def distill_once(
    train_cfg: TrainConfig,
    dcfg: DistillConfig | None,
    seed: int,
    teachers: list[dict[str, Any]],
    index_path: str,
    index_sha256: str,
    spec: PreprocessSpec,
    out_root: str,
    parent: str = "",
    tags: dict[str, str] | None = None,
    on_metrics: Any = None,
) -> dict[str, Any]:
    """One student run; ``dcfg=None`` trains the plain cross-entropy baseline of the same architecture."""
    cfg = train_cfg.model_copy(update={"seed": seed})
    kind = "ce" if dcfg is None else f"{dcfg.strategy}-{dcfg.loss.kind}"
    factory = None if dcfg is None else teacher_criterion_factory(dcfg, teachers)
    name = f"student-{kind}-s{seed}"
    extra = {"ferflow.loss": kind, **(tags or {})}
    if dcfg is not None:
        extra["ferflow.distill"] = dcfg.model_dump_json()
    res = train_and_export(
        "distill",
        name,
        cfg,
        index_path,
        index_sha256,
        spec,
        out_root,
        criterion_factory=factory,
        parent=parent,
        extra_tags=extra,
        on_metrics=on_metrics,
        key_extra=None if dcfg is None else distill_key(dcfg, teachers),
    )
    res["kind"] = kind
    return res


@task(
    name="distill_student", cache_policy=INPUTS + TASK_SOURCE, persist_result=True, retries=1, tags=["training", "gpu"]
)
def distill_student(
    train_cfg: TrainConfig,
    dcfg: DistillConfig,
    seed: int,
    teachers: list[dict[str, Any]],
    ensemble: dict[str, Any] | None,
    index_path: str,
    index_sha256: str,
    spec: PreprocessSpec,
    out_root: str,
) -> dict[str, Any]:
    """Distil one student (strategy, loss, seed) from precomputed teacher logits; a retry resumes its checkpoint."""
    return distill_once(
        train_cfg, with_ensemble(dcfg, ensemble), seed, teachers, index_path, index_sha256, spec, out_root
    )


def _report_epoch(metrics: dict[str, float], step: int | None) -> None:
    """Each epoch's validation macro-F1 goes to Tune as well, so ASHA can stop a weak trial early."""
    if "val/macro_f1" in metrics:
        tune.report({"macro_f1": float(metrics["val/macro_f1"]), "epoch": step or 0, "done": False})


def sweep_variants(base: DistillConfig, sweep: Any) -> list[dict[str, Any]]:
    """Every (strategy, loss, alpha, beta, T) variant as a JSON-able dict; ``ce`` is the plain baseline."""
    out: list[dict[str, Any]] = []
    for strategy, loss in itertools.product(sweep.strategies, sweep.losses):
        if loss == "ce":
            if not any(v["loss"] == "ce" for v in out):
                out.append({"loss": "ce"})
            continue
        for a, b, t in itertools.product(sweep.alphas, sweep.betas if loss == "dkd" else [None], sweep.temperatures):
            lc = DKDConfig(alpha=a, beta=b, T=t, w_ce=1 - a) if loss == "dkd" else KDConfig(alpha=a, T=t)
            out.append({"loss": loss, "dcfg": base.model_copy(update={"strategy": strategy, "loss": lc}).model_dump()})
    if sweep.variants is not None:
        unknown = set(sweep.variants) - {variant_kind(v) for v in out}
        if unknown:
            raise ConfigError(
                f"sweep.variants {sorted(unknown)} are not in the strategies x losses grid "
                f"{sorted({variant_kind(v) for v in out})}"
            )
        out = [v for v in out if variant_kind(v) in sweep.variants]
    return out


def variant_kind(variant: dict[str, Any]) -> str:
    """``ce`` or ``<strategy>-<loss>``: the name a sweep variant's runs and aggregate rows carry."""
    return "ce" if variant["loss"] == "ce" else f"{variant['dcfg']['strategy']}-{variant['loss']}"


def _sweep_trial(config: dict[str, Any], ctx: dict[str, Any]) -> None:
    """Tune trial: one (variant, seed) student run, its own MLflow run tagged with the sweep."""
    variant = config["variant"]
    dcfg = None if variant["loss"] == "ce" else DistillConfig.model_validate(variant["dcfg"])
    train_cfg = TrainConfig.model_validate(ctx["train_cfg"])
    if ctx.get("threads"):  # a trial owns its cpu share: more torch threads would oversubscribe the node
        train_cfg = train_cfg.model_copy(update={"num_threads": ctx["threads"]})
    res = distill_once(
        train_cfg,
        dcfg,
        config["seed"],
        ctx["teachers"],
        ctx["index_path"],
        ctx["index_sha256"],
        PreprocessSpec.model_validate(ctx["spec"]),
        ctx["out_root"],
        parent=ctx["sweep_id"],
        tags={"ferflow.sweep": ctx["sweep_id"]},
        on_metrics=_report_epoch,
    )
    test = res.get("test_metrics", {})
    tune.report(
        {
            "macro_f1": res["val_metrics"]["macro_f1"],
            "test_macro_f1": test.get("macro_f1", float("nan")),
            "kind": res["kind"],
            "mlflow_run_id": res["mlflow_run_id"],
            "done": True,
        }
    )


def compare_seeds(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> dict[str, Any]:
    """Paired bootstrap CI over seeds and paired permutation test of mean(A - B), with the verdict line."""
    ci = seed_bootstrap_ci(a, b)
    test = paired_permutation_test(a, b)
    return {
        "diff": ci.estimate,
        "ci_low": ci.low,
        "ci_high": ci.high,
        "p_value": test.p_value,
        "verdict": verdict(name_a, name_b, ci, test),
    }


def aggregate_sweep(rows: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Per configuration across seeds: mean ± std, and the paired comparison against the baseline configuration."""
    out = []
    base = rows[rows["kind"] == baseline].set_index("seed")["macro_f1"]
    for kind, g in rows.groupby("kind"):
        vals = g.set_index("seed")["macro_f1"]
        row = {"kind": kind, "n_seeds": len(vals), "macro_f1_mean": vals.mean(), "macro_f1_std": vals.std(ddof=1)}
        common = sorted(set(vals.index) & set(base.index))
        if kind != baseline and len(common) >= 2:
            row.update(compare_seeds(vals[common].to_numpy(), base[common].to_numpy(), name_a=kind, name_b=baseline))
        out.append(row)
    return pd.DataFrame(out).sort_values("macro_f1_mean", ascending=False)


@task(name="distill_sweep")
def distill_sweep_task(
    train_cfg: TrainConfig,
    base: DistillConfig,
    sweep: Any,
    teachers: list[dict[str, Any]],
    ensemble: dict[str, Any] | None,
    index_path: str,
    index_sha256: str,
    spec: PreprocessSpec,
    out_root: str,
) -> dict[str, Any]:
    """Ray Tune over variants x seeds (ASHA, retries), aggregated with statistics into Prefect and MLflow tables."""
    base = with_ensemble(base, ensemble)
    with ferflow_run("distill_sweep", dataset_sha256=index_sha256, run_name="distill_sweep") as (sweep_id, sink):
        ctx = {
            "train_cfg": train_cfg.model_dump(),
            "teachers": teachers,
            "index_path": index_path,
            "index_sha256": index_sha256,
            "spec": spec.model_dump(),
            "out_root": out_root,
            "sweep_id": sweep_id,
            "threads": int(sweep.resources["cpu"]) if sweep.resources.get("cpu", 0) >= 1 else None,
        }
        results = run_sweep(
            tune.with_parameters(_sweep_trial, ctx=ctx),
            {"variant": tune.grid_search(sweep_variants(base, sweep)), "seed": tune.grid_search(list(sweep.seeds))},
            name=f"distill_sweep_{sweep_id[:8]}",
            metric="macro_f1",
            resources=dict(sweep.resources),
            max_failures=sweep.max_failures,
            scheduler=(
                ASHAScheduler(time_attr="training_iteration", grace_period=sweep.asha_grace_epochs)
                if sweep.scheduler == "asha"
                else None
            ),
        )
        rows = pd.DataFrame([
            {"kind": variant_kind(r["config"]["variant"]), "seed": r["config"]["seed"],
             "macro_f1": r["metrics"].get("macro_f1"), "completed": bool(r["metrics"].get("done")),
             "mlflow_run_id": r["metrics"].get("mlflow_run_id")}
            for r in results
        ])  # fmt: skip
        # Trials ASHA stopped early have no last-epoch score: they are listed, never averaged.
        table = aggregate_sweep(rows[rows["completed"]], sweep.baseline)
        sink.log_text(table.to_csv(index=False), "sweep_aggregate.csv")
        sink.log_text(rows.to_csv(index=False), "sweep_trials.csv")
    create_table_artifact(
        key="distill-sweep",
        table=table.round(4).to_dict("records"),
        description="Distillation sweep: per configuration across seeds, vs the baseline",
    )
    return {"table": table.to_dict("records"), "trials": rows.to_dict("records"), "mlflow_run_id": sweep_id}
