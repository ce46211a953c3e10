"""Publishing stage outputs to a shared location (a folder or ``s3://bucket/prefix``) for workers on other machines."""

from __future__ import annotations

from prefect import task

from fer_adapters.datasets import publish_dataset
from fer_adapters.retry import retry_transient
from fer_adapters.run_store import find_result, run_key, save_result
from fer_adapters.store import download_dir, put_file, upload_dir
from fer_core.data.index import manifest_path
from fer_core.io import sha256_file
from fer_spec.profile import PipelineConfig, effective_ingest
from fer_spec.results import IndexRef


def ingest_key(cfg: PipelineConfig) -> str:
    """The store prefix of a profile's ingest stage result: its effective ingest config and input spec."""
    key = {"ingest": effective_ingest(cfg).model_dump(mode="json"), "spec": cfg.data.preprocess.model_dump(mode="json")}
    return run_key("ingest", cfg.name, key)


def find_ingested(cfg: PipelineConfig) -> IndexRef | None:
    """The profile's published dataset in the store, or None when its ingest stage has not run there."""
    return find_result(ingest_key(cfg), IndexRef)


@task(name="publish_dataset", retries=2, retry_delay_seconds=2, retry_condition_fn=retry_transient,
      task_run_name="publish dataset")
def publish_dataset_task(cfg: PipelineConfig, index: IndexRef) -> IndexRef:
    """Publish the verified index and its images decoded once and packed for the profile's input to the artifact
    store, then commit the stage result: units on any node train from the store and never open the data root
    (idempotent by content hash)."""
    ref = index.model_copy(update={"pack": publish_dataset(index.index_path, index.index_sha256, cfg.data.preprocess)})
    return save_result(ingest_key(cfg), ref)


@task(name="publish_index", retries=2, retry_delay_seconds=2)
def publish_index(data: IndexRef, uri: str) -> IndexRef:
    """Copy the index, its manifest and report to ``<uri>/indexes/<sha256>/`` (content-addressed, idempotent)."""
    base = f"{uri.rstrip('/')}/indexes/{data.index_sha256}"
    index = data.index_path
    put_file(index, f"{base}/index.parquet")
    put_file(manifest_path(index), f"{base}/index.parquet.manifest.json")
    put_file(data.report_json, f"{base}/report.json")
    return data.model_copy(update={"published_index": f"{base}/index.parquet"})


@task(name="publish_bundle", retries=2, retry_delay_seconds=2)
def publish_bundle(bundle: str, uri: str) -> str:
    """Copy a verified bundle folder to ``<uri>/bundles/<manifest sha256>/``; returns that location."""
    from pathlib import Path

    dest = f"{uri.rstrip('/')}/bundles/{sha256_file(Path(bundle) / 'manifest.json')}"
    upload_dir(bundle, dest)
    return dest


def fetch_bundle(uri: str, local_dir: str) -> str:
    """Download a published bundle; callers verify it with ``fer_core.export.bundle.verify_bundle`` before use."""
    download_dir(uri, local_dir)
    return local_dir
