"""``ingest``: sources → validate → gate → groups/splits → augment → index + manifest + report."""

from __future__ import annotations

from prefect import flow

from fer_core.data.ingest import IngestConfig, build_index
from flows._common import run_name
from tasks.contracts import IndexRef
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
from tasks.profile import PipelineConfig, Profile, RunOverrides, effective_ingest, resolve_profile, synth_dir
from tasks.publish import publish_index


@flow(name="ingest", flow_run_name="ingest {cfg.out_dir.name}", log_prints=True)
def ingest_flow(cfg: IngestConfig) -> IndexRef:
    """Build and write the dataset index for ``cfg`` (a failed gate writes nothing).

    Args:
        cfg: sources, splits, quality gates and augmentation of the index to build.
    """
    import pandas as pd

    records = pd.concat([collect_source_task(s) for s in cfg.sources], ignore_index=True)
    records = validate_task(records, cfg)
    gate_task(records, cfg)
    records, leakage = group_split_task(records, cfg)
    index = augment_task(build_index(records), cfg)
    out = write_task(index, records, leakage, cfg)
    print(f"index {out.index_path}: {len(index)} rows, sha256 {out.index_sha256[:12]}")
    return out


def ingest_stage(cfg: PipelineConfig) -> IndexRef:
    """Render synthetic data if the profile asks, then ingest unless an identical, verified index exists."""
    if cfg.data.synth is not None:
        s = cfg.data.synth
        render_synthetic(str(synth_dir(cfg)), s.per_class, s.size, s.seed)
    ing = effective_ingest(cfg)
    data = existing_index(ing) or ingest_flow(ing)
    return publish_index(data, cfg.publish_uri) if cfg.publish_uri else data


@flow(name="ingest_stage", flow_run_name=run_name("ingest"), log_prints=True)
def ingest_pipeline_flow(
    profile: Profile = "demo", overrides: RunOverrides | None = None, config: PipelineConfig | None = None
) -> IndexRef:
    """The ingest stage of a profile: dataset index, manifest, findings and balance report.

    Args:
        profile: The shipped profile to run (configs/<profile>.yaml).
        overrides: Optional changes to the profile: seeds, epochs, sweep on/off, publish URI.
        config: Advanced: a whole typed configuration used instead of the profile (the overrides still apply).
    """
    return ingest_stage(resolve_profile(profile, overrides, config))

