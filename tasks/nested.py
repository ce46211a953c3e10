"""Nested Learning units: a student trained by the engine with the deep-memory optimizer plugged in, on teacher
logits, exported and logged like every other student."""

from __future__ import annotations

from typing import Any

from prefect import task

from fer_adapters.cache import CODE_AWARE
from fer_adapters.datasets import model_input
from fer_adapters.retry import retry_transient
from fer_adapters.run_store import save_result
from fer_adapters.units import run_unit
from fer_core.nested.config import NestedConfig
from fer_core.nested.train import train_nested
from fer_core.preprocess import PreprocessSpec
from fer_spec.profile import StudentSection
from fer_spec.results import EnsembleResult, IndexRef, StudentRun, TeacherRun
from tasks.distill import distill_key, student_config, teacher_criterion_factory, with_ensemble
from tasks.teachers import train_and_export


def _nested_trainer(ncfg: NestedConfig) -> Any:
    """The engine's ``train`` call with Nested Learning plugged in; logs the run's memory and meta-step figures."""

    def run(cfg, train_ds, val_ds, out, *, sink, criterion, dataset_sha256, on_checkpoint=None):
        # The meta-loss batches come from the data as given: hand it over at the model's input size.
        m = cfg.model
        train_ds, val_ds = (model_input(d, m.img_size, m.in_chans) for d in (train_ds, val_ds))
        res = train_nested(ncfg, cfg, train_ds, val_ds, criterion, out, sink, dataset_sha256=dataset_sha256,
                           on_checkpoint=on_checkpoint)
        sink.log_metrics({"peak_memory_mb": float(res.peak_memory_mb), "meta_steps": float(res.meta_steps)})
        return res

    return run


def _nested_unit(section: StudentSection, seed: int, teachers: list[TeacherRun], ensemble: EnsembleResult | None,
                 index: IndexRef, spec: PreprocessSpec) -> StudentRun:
    """Ray side of a Nested Learning unit."""
    ncfg = section.nested or NestedConfig()
    dcfg = with_ensemble(section.distill, ensemble)
    kind = f"nested-{dcfg.loss.kind}"
    res = train_and_export(
        "nested_learning", f"nested-s{seed}", ncfg.train_config(student_config(section, seed)),
        index.index_sha256, spec, criterion_factory=teacher_criterion_factory(dcfg, teachers, spec),
        extra_tags={"ferflow.loss": kind, "ferflow.distill": dcfg.model_dump_json()},
        key_extra={**distill_key(dcfg, teachers), "nested": ncfg.model_dump(mode="json")},
        trainer=_nested_trainer(ncfg),
    )  # fmt: skip
    run = StudentRun(**res, kind=kind)
    return save_result(run.out_dir, run)


@task(name="nested_student", cache_policy=CODE_AWARE, persist_result=True, retries=1,
      retry_condition_fn=retry_transient, task_run_name="nested learning seed {seed}", tags=["training", "gpu"])
def nested_student(section: StudentSection, seed: int, teachers: list[TeacherRun], ensemble: EnsembleResult | None,
                   index: IndexRef, spec: PreprocessSpec) -> StudentRun:
    """One Nested Learning student (KD/DKD criterion from the distillation config) on the node its resources select."""
    return run_unit("students", f"nested-s{seed}", section.resources, _nested_unit, section, seed, teachers, ensemble,
                    index, spec)
