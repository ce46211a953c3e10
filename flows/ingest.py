"""``ingest``: sources → validate → gate → groups/splits → augment → index + manifest + report.

Kept free of the pipeline profile (and so of torch): ``ferflow ingest`` imports only this. The profile's ingest
stage is :mod:`flows.ingest_stage`.
"""

from __future__ import annotations

from prefect import flow

from fer_core.data.ingest import IngestConfig, build_index
from fer_spec.results import IndexRef
from tasks.data import augment_task, collect_source_task, gate_task, group_split_task, validate_task, write_task


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
