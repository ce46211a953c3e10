"""Student distillation: one run (task), and the Ray Tune sweep over strategy x loss x alpha/beta/T x seeds."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd
from prefect import task
from prefect.artifacts import create_table_artifact
from ray import tune
from ray.tune.schedulers import ASHAScheduler

from fer_adapters.cache import CODE_AWARE
from fer_adapters.placement import PROFILE
from fer_adapters.retry import retry_transient
from fer_adapters.run_store import fetch, find_result, run_key, save_result
from fer_adapters.runs import ferflow_run
from fer_adapters.sweeps import run_sweep
from fer_adapters.units import check_placeable, placed, run_unit, unit_threads
from fer_core.distill.config import DistillConfig
from fer_core.distill.criterion import make_distill_criterion
from fer_core.distill.online import load_teachers, make_online_distill_criterion
from fer_core.errors import ConfigError
from fer_core.evaluate.stats import paired_permutation_test, seed_t_ci, verdict
from fer_core.logits.store import read_logits, stack_aligned
from fer_core.losses import DISTILL_LOSSES
from fer_core.preprocess import PreprocessSpec
from fer_core.taxonomy import FER_CLASSES
from fer_core.train.config import TrainConfig
from fer_spec.profile import StudentSection, SweepSection
from fer_spec.results import EnsembleResult, IndexRef, StudentRun, SweepResult, TeacherRun, student_run_name
from tasks.teachers import teachers_of_seed, train_and_export, train_key


def teacher_criterion_factory(dcfg: DistillConfig, teachers: list[TeacherRun],
                              spec: PreprocessSpec | None = None):  # fmt: skip
    """Build ``train_ds -> criterion``.

    Offline: teacher logits joined to the student's rows BY sample_id, never by position. Online
    (``dcfg.mode == "online"``): the teachers' checkpoints, fetched from the store, score the same augmented batch
    the student sees. The teachers of the first teacher seed are used (the ensemble sweep averages over all seeds).
    """
    ordered = teachers_of_seed(teachers, dcfg.teachers, min(t.seed for t in teachers))
    class_f1 = np.asarray([t.class_f1 for t in ordered], dtype=np.float64)
    if dcfg.mode == "online":
        if spec is None:
            raise ConfigError("online distillation needs the student's input spec to check the teachers against")
        paths = [fetch(t.checkpoint, t.checkpoint_sha256) for t in ordered]

        def online(train_ds: Any):
            models = load_teachers(paths, spec.size[0], spec.channels, spec.mean, spec.std)
            return make_online_distill_criterion(dcfg, models, train_ds.sample_ids, class_f1=class_f1)

        return online
    tables = [read_logits(fetch(t.logits, t.logits_sha256)) for t in ordered]

    def factory(train_ds: Any):
        aligned = stack_aligned(tables, train_ds.sample_ids, FER_CLASSES, allow_extra=True)  # [K, N, C]
        return make_distill_criterion(dcfg, np.transpose(aligned, (1, 0, 2)), train_ds.sample_ids, class_f1=class_f1)

    return factory


def distill_key(dcfg: DistillConfig, teachers: list[TeacherRun]) -> dict[str, Any]:
    """What a distilled student's run folder is addressed by beyond its train config: the resolved distillation
    config (strategy, loss, teacher weights and temperatures) and the content of the teacher logits."""
    made_by = [t.checkpoint_sha256 if dcfg.mode == "online" else t.logits_sha256 for t in teachers]
    return {"distill": dcfg.model_dump(mode="json"), "teachers": sorted(made_by)}


def with_ensemble(dcfg: DistillConfig, ensemble: EnsembleResult | None) -> DistillConfig:
    """Fill teacher weights and the calibration temperature from the ensemble sweep when the config leaves them open."""
    if ensemble is None:
        return dcfg
    update: dict[str, Any] = {}
    names = ensemble.teacher_names
    if dcfg.weights is None and sorted(names) == sorted(dcfg.teachers):  # the ensemble's teachers: its weights
        w = dict(zip(names, ensemble.weights, strict=True))
        update["weights"] = tuple(w[n] for n in dcfg.teachers)
    if dcfg.teacher_temperatures is None:
        fitted = dict(zip(names, ensemble.teacher_temperatures, strict=True))
        if all(n in fitted for n in dcfg.teachers):  # each teacher's own NLL temperature
            update["teacher_temperatures"] = tuple(fitted[n] for n in dcfg.teachers)
        else:  # a teacher outside the ensemble: the shared ensemble T
            update["teacher_temperatures"] = tuple([ensemble.temperature] * len(dcfg.teachers))
    return dcfg.model_copy(update=update)


def distill_once(
    train_cfg: TrainConfig,
    dcfg: DistillConfig | None,
    seed: int,
    teachers: list[TeacherRun],
    index: IndexRef,
    spec: PreprocessSpec,
    parent: str = "",
    tags: dict[str, str] | None = None,
    on_metrics: Any = None,
) -> StudentRun:
    """One student run; ``dcfg=None`` trains the plain cross-entropy baseline of the same architecture."""
    cfg = train_cfg.model_copy(update={"seed": seed})
    kind = "ce" if dcfg is None else dcfg.family
    # Online teachers see the student's batches: they are checked against the student's input, not the stored pack.
    model_spec = spec.model_copy(update={"size": (cfg.model.img_size, cfg.model.img_size)})
    factory = None if dcfg is None else teacher_criterion_factory(dcfg, teachers, model_spec)
    name = student_run_name(kind, seed)
    extra = {"ferflow.loss": kind, **(tags or {})}
    if dcfg is not None:
        extra["ferflow.distill"] = dcfg.model_dump_json()
    res = train_and_export(
        "distill",
        name,
        cfg,
        index.index_sha256,
        spec,
        criterion_factory=factory,
        parent=parent,
        extra_tags=extra,
        on_metrics=on_metrics,
        key_extra=None if dcfg is None else distill_key(dcfg, teachers),
    )
    run = StudentRun(**res, kind=kind)
    return save_result(run.out_dir, run)


def student_config(section: StudentSection, seed: int) -> TrainConfig:
    """A student unit's train config: the profile's, with the unit's seed and its CPU share as torch threads."""
    return section.train.model_copy(update={"seed": seed, "num_threads": unit_threads(section.resources)})


def find_student(section: StudentSection, seed: int, teachers: list[TeacherRun], ensemble: EnsembleResult | None,
                 index: IndexRef, spec: PreprocessSpec) -> StudentRun | None:
    """The finished run of the packaged-family student unit for ``seed`` in the store, or None."""
    dcfg = with_ensemble(section.distill, ensemble)
    kind = dcfg.family
    key = train_key(student_config(section, seed), index.index_sha256, spec, distill_key(dcfg, teachers))
    return find_result(run_key("distill", student_run_name(kind, seed), key), StudentRun)


def _student_unit(section: StudentSection, seed: int, teachers: list[TeacherRun], ensemble: EnsembleResult | None,
                  index: IndexRef, spec: PreprocessSpec) -> StudentRun:
    return distill_once(student_config(section, seed), with_ensemble(section.distill, ensemble), seed, teachers,
                        index, spec)


@task(name="distill_student", cache_policy=CODE_AWARE, persist_result=True, retries=1,
      retry_condition_fn=retry_transient, task_run_name="student seed {seed}", tags=["training", "gpu"])
def distill_student(section: StudentSection, seed: int, teachers: list[TeacherRun], ensemble: EnsembleResult | None,
                    index: IndexRef, spec: PreprocessSpec) -> StudentRun:
    """Distil one student of the profile's recipe for ``seed`` on the Ray node its resources select (a finished
    unit in the store is returned as it is)."""
    found = find_student(section, seed, teachers, ensemble, index, spec)
    if found is not None:
        return found
    return run_unit("students", f"student-s{seed}", section.resources, _student_unit, section, seed, teachers,
                    ensemble, index, spec)


def _report_epoch(metrics: dict[str, float], step: int | None) -> None:
    """Each epoch's validation macro-F1 goes to Tune as well, so ASHA can stop a weak trial early."""
    if "val/macro_f1" in metrics:
        tune.report({"macro_f1": float(metrics["val/macro_f1"]), "epoch": step or 0, "done": False})


def sweep_variants(base: DistillConfig, sweep: Any) -> list[dict[str, Any]]:
    """Every (strategy, loss, alpha, beta, T, mode) variant as a JSON-able dict; ``ce`` is the plain baseline.

    ``sweep.modes`` (default: the base recipe's mode) runs each distilled variant offline, online or both, so the two
    are compared on the same seeds."""
    out: list[dict[str, Any]] = []
    modes = sweep.modes or [base.mode]
    for strategy, loss in itertools.product(sweep.strategies, sweep.losses):
        if loss == "ce":
            if not any(v["loss"] == "ce" for v in out):
                out.append({"loss": "ce"})
            continue
        for lc, mode in itertools.product(
            DISTILL_LOSSES.sweep_configs(loss, sweep.alphas, sweep.betas, sweep.temperatures), modes
        ):
            dcfg = base.model_copy(update={"strategy": strategy, "loss": lc, "mode": mode})
            out.append({"loss": loss, "dcfg": dcfg.model_dump()})
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
    """``ce`` or the distilled recipe's family (``<strategy>-<loss>[-online]``): the name a sweep variant's runs and
    aggregate rows carry."""
    return "ce" if variant["loss"] == "ce" else DistillConfig.model_validate(variant["dcfg"]).family


def _sweep_trial(config: dict[str, Any], ctx: dict[str, Any]) -> None:
    """Tune trial: one (variant, seed) student run, its own MLflow run tagged with the sweep."""
    variant = config["variant"]
    dcfg = None if variant["loss"] == "ce" else DistillConfig.model_validate(variant["dcfg"])
    train_cfg = TrainConfig.model_validate(ctx["train_cfg"])
    # a trial owns its cpu share: more torch threads would oversubscribe the node
    train_cfg = train_cfg.model_copy(update={"num_threads": ctx["threads"]})
    with placed(ctx["resources"], ctx["profile"]):
        res = distill_once(
            train_cfg,
            dcfg,
            config["seed"],
            ctx["teachers"],
            ctx["index"],
            ctx["spec"],
            parent=ctx["sweep_id"],
            tags={"ferflow.sweep": ctx["sweep_id"]},
            on_metrics=_report_epoch,
        )
    tune.report({"macro_f1": res.val_metrics["macro_f1"], "kind": res.kind, "mlflow_run_id": res.mlflow_run_id,
                 "done": True})


def compare_seeds(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> dict[str, Any]:
    """Paired Student-t CI over seeds and paired permutation test of mean(A - B), with the verdict line.

    The t-interval, not a percentile bootstrap: at 2-6 seeds the bootstrap undercovers (about 85 % for a nominal 95 %
    at 5 seeds, ``tests/core/evaluate/test_stats_coverage.py``).
    """
    ci = seed_t_ci(a, b)
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


@task(name="distill_sweep", task_run_name="distillation sweep")
def distill_sweep_task(
    section: StudentSection,
    teachers: list[TeacherRun],
    ensemble: EnsembleResult | None,
    index: IndexRef,
    spec: PreprocessSpec,
) -> SweepResult:
    """Ray Tune over variants x seeds (ASHA, retries), aggregated with statistics into Prefect and MLflow tables."""
    sweep: SweepSection = section.sweep
    base = with_ensemble(section.distill, ensemble)
    gpu_ok = check_placeable("student.sweep", sweep.resources)
    resources = sweep.resources if gpu_ok else sweep.resources.model_copy(update={"gpu": 0})
    with ferflow_run("distill_sweep", dataset_sha256=index.index_sha256, run_name="distill_sweep") as (sweep_id, sink):
        ctx = {
            "train_cfg": section.train.model_dump(),
            "teachers": teachers,
            "index": index,
            "spec": spec,
            "sweep_id": sweep_id,
            "profile": PROFILE.get(),
            "threads": unit_threads(resources),
            "resources": {**resources.tune_resources(), **({} if gpu_ok else {"cpu_fallback": True})},
        }
        results = run_sweep(
            tune.with_parameters(_sweep_trial, ctx=ctx),
            {"variant": tune.grid_search(sweep_variants(base, sweep)), "seed": tune.grid_search(list(sweep.seeds))},
            name=f"distill_sweep_{sweep_id[:8]}",
            metric="macro_f1",
            resources=resources.tune_resources(),
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
    return SweepResult(table=table.to_dict("records"), trials=rows.to_dict("records"), mlflow_run_id=sweep_id)
