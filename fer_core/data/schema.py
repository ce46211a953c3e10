"""Contract 3.1: the dataset index's columns and the manifest beside it."""

from __future__ import annotations

import pyarrow as pa

SPLITS: tuple[str, ...] = ("train", "val", "test")
ORIGINS: tuple[str, ...] = ("original", "augmented")

INDEX_SCHEMA = pa.schema(
    [
        pa.field("sample_id", pa.string(), nullable=False),  # SHA-256 of the file's bytes
        pa.field("image_path", pa.string(), nullable=False),  # absolute, normalised, inside a declared root
        pa.field("label", pa.string(), nullable=False),  # one of FER_CLASSES
        pa.field("split", pa.string(), nullable=False),  # one of SPLITS
        pa.field("source", pa.string(), nullable=False),  # adapter name
        pa.field("group_id", pa.string(), nullable=False),  # provenance group (original + derived + near-dups)
        pa.field("origin", pa.string(), nullable=False),  # one of ORIGINS
        pa.field("parent_id", pa.string(), nullable=True),  # sample_id of the original, for derived rows
        pa.field("width", pa.int32(), nullable=False),
        pa.field("height", pa.int32(), nullable=False),
        pa.field("dhash", pa.uint64(), nullable=False),  # 64-bit difference hash
        pa.field("bbox", pa.list_(pa.int32(), 4), nullable=True),  # optional face box x, y, w, h (ExpW)
        pa.field("flags", pa.string(), nullable=False),  # comma-separated quality flags ("" when clean)
    ]
)
INDEX_COLUMNS: tuple[str, ...] = tuple(INDEX_SCHEMA.names)
MANIFEST_SUFFIX = ".manifest.json"
