"""``train_teachers``: one task per (teacher, seed) over the ingested index."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows._common import out_root
from flows.config import PipelineConfig, resolve
from flows.ingest import ingest_stage
from tasks.teachers import train_teacher


@flow(name="train_teachers", log_prints=True)
def train_teachers_flow(config: PipelineConfig | None = None, config_path: str | None = None) -> dict[str, Any]:
    """Train every teacher for every seed (cached by index hash and config); logits are exported by sample_id."""
    cfg = resolve(config, config_path)
    data = ingest_stage(cfg)
    runs = [
        train_teacher(t.name, t.train, seed, data["index_path"], data["index_sha256"], cfg.data.preprocess, out_root())
        for seed in cfg.teachers.seeds
        for t in cfg.teachers.teachers
    ]
    for r in runs:
        print(f"teacher {r['name']}: val macro-F1 {r['val_metrics']['macro_f1']:.3f} (run {r['mlflow_run_id']})")
    return {"data": data, "teachers": runs}
