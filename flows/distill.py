"""``distill`` (one student), ``distill_sweep`` (Ray Tune across seeds) and ``nested_learning``."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows._common import out_root
from flows.config import PipelineConfig, resolve
from flows.ensemble import tune_ensemble_flow
from tasks.distill import distill_student, distill_sweep_task
from tasks.nested import nested_student


def distill_students(cfg: PipelineConfig, up: dict[str, Any], seeds: list[int]) -> list[dict[str, Any]]:
    """One distilled student of the configured recipe per seed (each run cached by its inputs)."""
    d = up["data"]
    return [
        distill_student(cfg.student.train, cfg.student.distill, seed, up["teachers"], up["ensemble"],
                        d["index_path"], d["index_sha256"], cfg.data.preprocess, out_root())
        for seed in seeds
    ]  # fmt: skip


@flow(name="distill", log_prints=True)
def distill_flow(config: PipelineConfig | None = None, config_path: str | None = None) -> dict[str, Any]:
    """Distil the student from precomputed teacher logits, one run per configured seed."""
    cfg = resolve(config, config_path)
    up = tune_ensemble_flow(cfg)
    students = distill_students(cfg, up, cfg.student.seeds)
    for s in students:
        print(f"student {s['name']}: val macro-F1 {s['val_metrics']['macro_f1']:.3f} (run {s['mlflow_run_id']})")
    return {**up, "students": students}


@flow(name="distill_sweep", log_prints=True)
def distill_sweep_flow(config: PipelineConfig | None = None, config_path: str | None = None) -> dict[str, Any]:
    """Ray Tune over strategy x loss x alpha/beta/T x seeds; the aggregate compares each config to the baseline."""
    cfg = resolve(config, config_path)
    up = tune_ensemble_flow(cfg)
    d = up["data"]
    sweep = distill_sweep_task(
        cfg.student.train,
        cfg.student.distill,
        cfg.student.sweep,
        up["teachers"],
        up["ensemble"],
        d["index_path"],
        d["index_sha256"],
        cfg.data.preprocess,
        out_root(),
    )
    for row in sweep["table"]:
        print(row)
    return {**up, "sweep": sweep}


@flow(name="nested_learning", log_prints=True)
def nested_learning_flow(config: PipelineConfig | None = None, config_path: str | None = None) -> dict[str, Any]:
    """Nested Learning student runs (memory-bounded deep optimizer) with KD/DKD and the smoke gates."""
    cfg = resolve(config, config_path)
    up = tune_ensemble_flow(cfg)
    d = up["data"]
    runs = [
        nested_student(
            cfg.student.train,
            cfg.student.distill,
            cfg.student.nested,
            seed,
            up["teachers"],
            up["ensemble"],
            d["index_path"],
            d["index_sha256"],
            cfg.data.preprocess,
            out_root(),
        )
        for seed in cfg.student.seeds
    ]
    return {**up, "nested": runs}
