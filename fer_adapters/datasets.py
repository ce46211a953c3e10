"""Loading an index's splits once per process (decoded pixels are reused by every stage in the same worker)."""

from __future__ import annotations

import functools

import pandas as pd

from fer_core.data.dataset import ArrayDataset, load_split
from fer_core.data.index import read_index
from fer_core.preprocess import PreprocessSpec


@functools.lru_cache(maxsize=2)
def _index(index_path: str, index_sha256: str) -> pd.DataFrame:
    return read_index(index_path)  # verifies the manifest: a changed index is refused


@functools.lru_cache(maxsize=8)
def _split(index_path: str, index_sha256: str, split: str, spec_json: str) -> ArrayDataset:
    spec = PreprocessSpec.model_validate_json(spec_json)
    return load_split(_index(index_path, index_sha256), split, spec)


def load_index(index_path: str, index_sha256: str) -> pd.DataFrame:
    return _index(index_path, index_sha256)


def dataset(index_path: str, index_sha256: str, split: str, spec: PreprocessSpec) -> ArrayDataset:
    """The decoded split (fails naming every unreadable file; never skips)."""
    return _split(index_path, index_sha256, split, spec.model_dump_json())
