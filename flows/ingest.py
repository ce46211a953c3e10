"""``ingest``: sources → validate → gate → groups/splits → augment → index + manifest + report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from fer_core.data.ingest import IngestConfig, build_index
from fer_core.errors import ConfigError
from flows.config import PipelineConfig, resolve
from tasks.data import (
    augment_task,
    collect_source_task,
    existing_index,
    gate_task,
    group_split_task,
    render_synthetic,
    validate_task,
    write_task,
)
from tasks.publish import publish_index
from tasks.settings import Settings


@flow(name="ingest", log_prints=True)
def ingest_flow(cfg: IngestConfig) -> dict[str, Any]:
    """Build and write the dataset index for ``cfg`` (a failed gate writes nothing)."""
    import pandas as pd

    records = pd.concat([collect_source_task(s) for s in cfg.sources], ignore_index=True)
    records = validate_task(records, cfg)
    gate_task(records, cfg)
    records, leakage = group_split_task(records, cfg)
    index = augment_task(build_index(records), cfg)
    out = write_task(index, records, leakage, cfg)
    print(f"index {out['index_path']}: {len(index)} rows, sha256 {out['index_sha256'][:12]}")
    return out


SYNTH_SOURCE = "@synth"


def effective_ingest(cfg: PipelineConfig) -> IngestConfig:
    """Relative output folders live in ``$FERFLOW_HOME``; a source path ``@synth`` is the rendered synthetic folder."""
    home = Settings.from_env().home
    ing = cfg.data.ingest
    out = ing.out_dir if ing.out_dir.is_absolute() else home / ing.out_dir
    sources = []
    for s in ing.sources:
        if str(s.path) == SYNTH_SOURCE:  # the rendered synthetic folder of this profile
            sources.append(s.model_copy(update={"path": synth_dir(cfg)}))
        else:
            sources.append(s if s.path.is_absolute() else s.model_copy(update={"path": Path.cwd() / s.path}))
    return ing.model_copy(update={"out_dir": out, "sources": sources})


def synth_dir(cfg: PipelineConfig) -> Path:
    s = cfg.data.synth
    if s is None:
        raise ConfigError("this profile has no data.synth section")
    return Settings.from_env().home / "data" / f"synth-n{s.per_class}-px{s.size}-seed{s.seed}"


def ingest_stage(cfg: PipelineConfig) -> dict[str, Any]:
    """The pipeline's first stage: render synthetic data if asked, then ingest unless an identical index exists."""
    if cfg.data.synth is not None:
        s = cfg.data.synth
        render_synthetic(str(synth_dir(cfg)), s.per_class, s.size, s.seed)
    ing = effective_ingest(cfg)
    data = existing_index(ing) or ingest_flow(ing)
    return publish_index(data, cfg.publish_uri) if cfg.publish_uri else data


@flow(name="ingest_pipeline", log_prints=True)
def ingest_pipeline_flow(config: PipelineConfig | None = None, config_path: str | None = None) -> dict[str, Any]:
    """The ingest stage of a pipeline profile (deployment entry point)."""
    return ingest_stage(resolve(config, config_path))
