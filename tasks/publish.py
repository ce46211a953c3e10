"""Publishing stage outputs to a shared location (a folder or ``s3://bucket/prefix``) for workers on other machines."""

from __future__ import annotations

from prefect import task

from fer_adapters.store import download_dir, put_file, upload_dir
from fer_core.data.index import manifest_path
from fer_core.io import sha256_file
from fer_spec.results import IndexRef


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
