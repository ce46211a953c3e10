"""Teacher training: one task per (teacher, seed) with an MLflow run, checkpoints and a logits export."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from prefect import task

from fer_adapters.cache import CODE_AWARE
from fer_adapters.datasets import dataset, index_file, load_index, model_input
from fer_adapters.placement import placement_tags
from fer_adapters.retry import retry_transient
from fer_adapters.run_store import RunFolder, find_result, run_key, save_result
from fer_adapters.runs import TeeSink, environment_params, ferflow_run, log_index_input, log_model_checkpoint
from fer_adapters.units import run_unit, unit_threads
from fer_core.calibrate.plots import confusion_plot
from fer_core.errors import ConfigError
from fer_core.evaluate.metrics import confusion
from fer_core.io import sha256_file, sha256_json
from fer_core.logits.store import write_logits
from fer_core.preprocess import PreprocessSpec
from fer_core.taxonomy import FER_CLASSES
from fer_core.train.config import TrainConfig
from fer_core.train.engine import train
from fer_core.train.predict import predict_logits
from fer_spec.profile import ResourcesSpec, TeacherSpec
from fer_spec.results import IndexRef, TeacherRun


def train_key(cfg: TrainConfig, index_sha256: str, spec: PreprocessSpec, extra: dict[str, Any] | None = None) -> dict:
    """What a trained model's run folder is addressed by: what its train config computes (never where it runs:
    threads and device stay out), the index and the input spec."""
    key: dict[str, Any] = {"cfg": cfg.identity(), "index": index_sha256, "spec": spec.model_dump(mode="json")}
    if extra:
        key["extra"] = extra
    return key


def train_and_export(
    stage: str,
    name: str,
    cfg: TrainConfig,
    index_sha256: str,
    spec: PreprocessSpec,
    criterion_factory: Any = None,
    parent: str = "",
    extra_tags: dict[str, str] | None = None,
    on_metrics: Any = None,
    key_extra: dict[str, Any] | None = None,
    trainer: Any = None,
) -> dict[str, Any]:
    """Train one model on the index's train split, then export logits for every row keyed by sample_id.

    Reads only the store: the packed dataset by the index's hash, and the run folder's ``last.pt`` when an earlier
    attempt (on any node) left one. ``criterion_factory(train_ds)`` builds a custom criterion (distillation) once the
    training rows are known; ``key_extra`` must then describe it (its config and the teacher logits' SHA-256s): the
    run folder, and so what an interrupted run resumes from, is addressed by everything that shapes the training.
    ``trainer`` replaces :func:`fer_core.train.engine.train` (same call; Nested Learning plugs its optimizer in).

    Returns:
        The unit's result fields; ``checkpoint``, ``logits`` and ``out_dir`` are store keys.
    """
    key = train_key(cfg, index_sha256, spec, key_extra)
    folder = RunFolder(run_key(stage, name, key))
    out = folder.local
    resumed = folder.restore("last.pt")
    train_ds = dataset(index_sha256, "train", spec)
    val_ds = dataset(index_sha256, "val", spec)
    criterion = criterion_factory(train_ds) if criterion_factory else None
    config_hash = sha256_json(key)[:16]
    with ferflow_run(
        stage,
        seed=cfg.seed,
        dataset_sha256=index_sha256,
        config_hash=config_hash,
        parent=parent,
        run_name=name,
        extra_tags={**(extra_tags or {}), "ferflow.run_key": folder.key, "ferflow.resumed_from_store": str(resumed)},
    ) as (run_id, sink):
        if on_metrics is not None:
            sink = TeeSink(sink, on_metrics)
        sink.log_params({**environment_params(), "name": name, **_flat(cfg.model_dump(mode="json"))})
        log_index_input(run_id, load_index(index_sha256), str(index_file(index_sha256)), index_sha256)
        result = (trainer or train)(cfg, train_ds, val_ds, out, sink=sink, criterion=criterion,
                                    dataset_sha256=index_sha256, on_checkpoint=folder.push)  # fmt: skip
        logits_path, ids, logits, labels = _export_logits(result, index_sha256, spec, cfg, out)
        val_mask = np.isin(ids, val_ds.sample_ids)
        cm = confusion(labels[val_mask], logits[val_mask].argmax(1))
        sink.log_artifact(confusion_plot(cm, out / "confusion_val.png"))
        sink.log_artifact(logits_path)
        model_uri = log_model_checkpoint(run_id, result.last_checkpoint, val_ds, spec)
        sink.log_metrics({f"final/{k}": float(v) for k, v in result.final_metrics.items()})
        sink.log_metrics({"start_epoch": float(result.start_epoch)})
    folder.push_all()
    return {
        "name": name,
        "seed": cfg.seed,
        "checkpoint": folder.key_of(result.last_checkpoint),
        "checkpoint_sha256": sha256_file(result.last_checkpoint),
        "logits": folder.key_of(logits_path),
        "logits_sha256": sha256_file(logits_path),
        "mlflow_run_id": run_id,
        "model_uri": model_uri,
        "val_metrics": {k: float(v) for k, v in result.final_metrics.items()},
        "class_f1": [float(result.final_metrics.get(f"f1/{c}", 0.0)) for c in FER_CLASSES],
        "out_dir": folder.key,
        "worker_node": placement_tags()["ferflow.worker_node"],
        "start_epoch": int(result.start_epoch),
    }


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _export_logits(result: Any, index_sha256: str, spec: PreprocessSpec, cfg: TrainConfig, out: Path):
    """Logits of the LAST-epoch model for every split's rows (at the model's input size), keyed by sample_id."""
    from fer_core.models.checkpoint import load_checkpoint

    model, _ = load_checkpoint(result.last_checkpoint)
    ids, parts, labels = [], [], []
    for split in ("train", "val", "test"):
        if not (load_index(index_sha256)["split"] == split).any():
            continue
        ds = model_input(dataset(index_sha256, split, spec), cfg.model.img_size, cfg.model.in_chans)
        parts.append(predict_logits(model, ds))
        ids.extend(ds.sample_ids)
        labels.append(ds.labels)
    logits = np.concatenate(parts)
    path = out / "logits.parquet"
    write_logits(path, ids, logits, FER_CLASSES, model_id=f"sha256:{sha256_file(result.last_checkpoint)}")
    return path, np.asarray(ids), logits, np.concatenate(labels)


def teacher_config(teacher: TeacherSpec, seed: int, res: ResourcesSpec) -> TrainConfig:
    """A teacher unit's train config: the profile's, with the unit's seed and its CPU share as torch threads."""
    return teacher.train.model_copy(update={"seed": seed, "num_threads": unit_threads(res)})


def teacher_key(teacher: TeacherSpec, seed: int, index: IndexRef, spec: PreprocessSpec) -> str:
    """The store prefix of one teacher x seed unit (its resources are not part of what it is)."""
    cfg = teacher.train.model_copy(update={"seed": seed})
    return run_key("train_teacher", f"{teacher.name}-s{seed}", train_key(cfg, index.index_sha256, spec))


def find_teacher(teacher: TeacherSpec, seed: int, index: IndexRef, spec: PreprocessSpec) -> TeacherRun | None:
    """The finished run of that teacher unit in the store, or None when it has not run for these inputs."""
    return find_result(teacher_key(teacher, seed, index, spec), TeacherRun)


def _teacher_unit(teacher: TeacherSpec, seed: int, res: ResourcesSpec, index: IndexRef,
                  spec: PreprocessSpec) -> TeacherRun:  # fmt: skip
    """Ray side of a teacher unit: train (resuming the store's last checkpoint), export logits, commit the result."""
    cfg = teacher_config(teacher, seed, res)
    res_dict = train_and_export("train_teacher", f"{teacher.name}-s{seed}", cfg, index.index_sha256, spec)
    run = TeacherRun(**res_dict, teacher=teacher.name)
    return save_result(run.out_dir, run)


@task(name="train_teacher", cache_policy=CODE_AWARE, persist_result=True, retries=1,
      retry_condition_fn=retry_transient, task_run_name="teacher {teacher.name} seed {seed}", tags=["training", "gpu"])
def train_teacher(teacher: TeacherSpec, seed: int, res: ResourcesSpec, index: IndexRef,
                  spec: PreprocessSpec) -> TeacherRun:  # fmt: skip
    """Train one teacher for one seed on the Ray node its resources select; a retry resumes its last checkpoint.

    A finished unit in the store is returned as it is (whatever resources it was given then)."""
    found = find_teacher(teacher, seed, index, spec)
    if found is not None:
        return found
    return run_unit("teachers", f"{teacher.name}-s{seed}", res, _teacher_unit, teacher, seed, res, index, spec)


def teachers_of_seed(teachers: Sequence[TeacherRun], names: Sequence[str], seed: int) -> list[TeacherRun]:
    """The runs of ``names`` (in that order) trained with ``seed``.

    Raises:
        ConfigError: a named teacher has no run for that seed (the message lists what exists).
    """
    by_name = {t.teacher: t for t in teachers if t.seed == seed}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ConfigError(f"no teacher run for {missing} with seed {seed}; runs: {[t.name for t in teachers]}")
    return [by_name[n] for n in names]
