"""Ingest tasks: one per source, then validate → gate → groups → splits → augment → write, with Prefect artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import INPUTS, TASK_SOURCE

from fer_adapters.findings import ingest_summary
from fer_adapters.progress import progress_bar
from fer_adapters.retry import retry_transient
from fer_core.data import ingest as ing
from fer_core.data.adapters import SourceSpec, collect_source, write_generated
from fer_core.data.index import manifest_path, revalidate_index
from fer_core.errors import FerError
from fer_core.io import atomic_write_json, read_json, sha256_file, sha256_json
from fer_spec.results import IndexRef


@task(name="render_synthetic", cache_policy=INPUTS + TASK_SOURCE, persist_result=True)
def render_synthetic(out_dir: str, per_class: int, size: int, seed: int) -> dict[str, int]:
    """Render the synthetic embedded dataset (deterministic by seed)."""
    from fer_core.data.synth import render_dataset

    return render_dataset(Path(out_dir), per_class=per_class, size=size, seed=seed)


@task(name="collect_source", retries=2, retry_delay_seconds=2, retry_condition_fn=retry_transient)
def collect_source_task(spec: SourceSpec) -> pd.DataFrame:
    """Run one source adapter (I/O errors retried; a malformed source is refused at once)."""
    return collect_source(spec)


@task(name="validate_records")
def validate_task(records: pd.DataFrame, cfg: ing.IngestConfig) -> pd.DataFrame:
    """Path checks, full decode, SHA-256, dHash, quality flags (warm cache reused), with a progress bar."""
    with progress_bar("ingest") as progress:
        return ing.validate_step(records, cfg, progress)


@task(name="quality_gate")
def gate_task(records: pd.DataFrame, cfg: ing.IngestConfig) -> None:
    """Fail (writing nothing) when too many rows are bad; always publish the rejected rows.

    Once the gate passes, the images an adapter generated in memory (FER2013 CSV rows) are written to their folder.
    """
    bad = records[records["status"] == "rejected"]
    if len(bad):
        create_table_artifact(
            key="rejected-rows",
            table=bad[["where", "reason"]].head(1000).to_dict("records"),
            description=f"{len(bad)} rejected rows (first 1000 shown; all are in rejected_rows.csv)",
        )
    ing.check_gate(records, cfg.max_bad_fraction)
    write_generated(records)


@task(name="groups_and_splits")
def group_split_task(records: pd.DataFrame, cfg: ing.IngestConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Provenance groups (copies, exact and near duplicates), then splits per group."""
    return ing.split_step(ing.group_step(records, cfg.near_dup_hamming), cfg)


@task(name="augment_minority")
def augment_task(index: pd.DataFrame, cfg: ing.IngestConfig) -> pd.DataFrame:
    """Targeted minority augmentation; new rows stay in their parent's split and group."""
    from fer_core.data.augment import augment_minority

    if cfg.augment is None:
        return index
    return pd.concat([index, augment_minority(index, cfg.augment, cfg.augment_dir)], ignore_index=True)


@task(name="write_index")
def write_task(index: pd.DataFrame, records: pd.DataFrame, leakage: pd.DataFrame, cfg: ing.IngestConfig) -> IndexRef:
    """Index + manifest + warm cache + report, then the balance table as a Prefect artifact."""
    res = ing.write_outputs(index, records, leakage, cfg)
    atomic_write_json(cfg.out_dir / "ingest_config.json", {"config_hash": config_hash(cfg)})
    balance = res.report.get("balance", {})
    counts = balance.get("counts", {})
    rows = [{"split": sp, **row} for sp, row in counts.items()]
    if rows:
        create_table_artifact(key="class-balance", table=rows, description="Images per class and split")
    summary = ingest_summary(cfg.index_path, res.report_dir / "report.json")  # every drop and flag by name
    create_markdown_artifact(
        key="ingest-findings",
        markdown=f"{_findings_md(res.report)}\n\n```\n{summary}\n```",
        description="What ingestion found: duplicates, leakage across splits, rejected and flagged images",
    )
    out = outputs(cfg)
    _log_ingest_run(out, index)
    return out


def _log_ingest_run(out: IndexRef, index: pd.DataFrame) -> None:
    """One MLflow run per ingest: the index as a dataset input, the manifest, report and balance chart."""
    from fer_adapters.runs import ferflow_run, log_index_input

    with ferflow_run("ingest", dataset_sha256=out.index_sha256, run_name="ingest") as (run_id, sink):
        log_index_input(run_id, index, out.index_path, out.index_sha256)
        sink.log_metrics({f"rows/{k}": float(v) for k, v in index["split"].value_counts().items()})
        for path in (out.report_json, out.balance_png, manifest_path(out.index_path)):
            sink.log_artifact(path, "ingest")


def _findings_md(report: dict[str, Any]) -> str:
    lines = ["# Ingest findings", ""]
    for k, v in (report.get("findings") or {}).items():
        if isinstance(v, int | float | str):
            lines.append(f"- **{k}**: {v}")
    return "\n".join(lines)


def config_hash(cfg: ing.IngestConfig) -> str:
    return sha256_json(cfg.model_dump(mode="json"))


def outputs(cfg: ing.IngestConfig) -> IndexRef:
    idx = cfg.index_path
    return IndexRef(
        index_path=str(idx),
        index_sha256=sha256_file(idx),
        manifest=read_json(manifest_path(idx)),
        report_json=str(cfg.out_dir / "report.json"),
        balance_png=str(cfg.out_dir / "class_balance.png"),
    )


@task(name="existing_index")
def existing_index(cfg: ing.IngestConfig) -> IndexRef | None:
    """The cache probe: an index written by this exact config whose manifest and files still verify."""
    stamp = cfg.out_dir / "ingest_config.json"
    if not (cfg.index_path.is_file() and stamp.is_file()) or read_json(stamp).get("config_hash") != config_hash(cfg):
        return None
    try:
        if revalidate_index(cfg.index_path):  # verifies the manifest; warm: stats only for unchanged files
            return None  # a file changed or vanished since: re-ingest, which reports it properly
    except (FerError, OSError, ValueError):  # a damaged index or cache: re-ingest rebuilds both
        return None
    return outputs(cfg)
