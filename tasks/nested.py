"""Nested Learning task: a student trained with the deep-memory optimizer on teacher logits, logged to MLflow."""

from __future__ import annotations

from typing import Any

from prefect import task

from fer_core.distill.config import DistillConfig
from fer_core.io import sha256_json
from fer_core.models.backbones import create_model
from fer_core.nested.config import NestedConfig
from fer_core.nested.train import train_nested
from fer_core.preprocess import PreprocessSpec
from fer_core.train.config import TrainConfig
from tasks._data import dataset
from tasks._mlflow import environment_params, ferflow_run
from tasks._cache import CODE_AWARE
from tasks._retry import retry_transient
from tasks._units import run_unit
from tasks.contracts import EnsembleResult, IndexRef, TeacherRun
from tasks.distill import teacher_criterion_factory, with_ensemble
from tasks.profile import StudentSection
from tasks.teachers import run_dir


def _nested_unit(section: StudentSection, seed: int, teachers: list[TeacherRun], ensemble: EnsembleResult | None,
                 index: IndexRef, spec: PreprocessSpec, out_root: str) -> dict[str, Any]:
    """Ray side of a Nested Learning unit."""
    train_cfg, dcfg, ncfg = section.train, section.distill, section.nested
    index_path, index_sha256 = index.index_path, index.index_sha256
    ncfg = (ncfg or NestedConfig()).model_copy(update={"seed": seed})
    dcfg = with_ensemble(dcfg, ensemble)
    key = {
        "n": ncfg.model_dump(mode="json"),
        "d": dcfg.model_dump(mode="json"),
        "m": train_cfg.model.model_dump(),
        "index": index_sha256,
        "teachers": sorted(t.logits_sha256 for t in teachers),
    }
    out = run_dir(out_root, "nested", f"nested-s{seed}", key)
    train_ds = dataset(index_path, index_sha256, "train", spec)
    val_ds = dataset(index_path, index_sha256, "val", spec)
    criterion = teacher_criterion_factory(dcfg, teachers)(train_ds)
    with ferflow_run(
        "nested_learning",
        seed=seed,
        dataset_sha256=index_sha256,
        config_hash=sha256_json(key)[:16],
        run_name=f"nested-s{seed}",
    ) as (run_id, sink):
        sink.log_params({**environment_params(), **{f"nested.{k}": v for k, v in ncfg.model_dump().items()}})
        res = train_nested(ncfg, create_model(train_cfg.model), train_ds, val_ds, criterion, out, sink)
        sink.log_metrics({f"final/{k}": float(v) for k, v in res.final_metrics.items()})
        sink.log_metrics({"peak_memory_mb": float(res.peak_memory_mb), "meta_steps": float(res.meta_steps)})
        sink.log_artifact(res.checkpoint_path, "checkpoint")
    return {
        "name": f"nested-s{seed}",
        "seed": seed,
        "checkpoint": str(res.checkpoint_path),
        "mlflow_run_id": run_id,
        "val_metrics": dict(res.final_metrics),
        "peak_memory_mb": res.peak_memory_mb,
    }


@task(name="nested_student", cache_policy=CODE_AWARE, persist_result=True, retries=1,
      retry_condition_fn=retry_transient, task_run_name="nested learning seed {seed}", tags=["training", "gpu"])
def nested_student(section: StudentSection, seed: int, teachers: list[TeacherRun], ensemble: EnsembleResult | None,
                   index: IndexRef, spec: PreprocessSpec, out_root: str) -> dict[str, Any]:
    """One Nested Learning student (KD/DKD criterion from the distillation config) on the node its resources select."""
    return run_unit("students", f"nested-s{seed}", section.resources, _nested_unit, section, seed, teachers, ensemble,
                    index, spec, out_root)
