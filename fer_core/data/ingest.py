"""Ingest as separate DataFrame-in/DataFrame-out steps (each one a Prefect task upstream) and ``run_ingest``.

collect_records → validate_step → check_gate → group_step → split_step → build_index → (augment_minority) →
write_outputs. Nothing lands in ``out_dir`` before the gate passes: then the images an adapter generated in memory
(FER2013 CSV rows) are written to their folder (``<out_dir>/<source>.images`` unless ``image_root`` says otherwise),
and the index, report and cache by :func:`write_outputs`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from pydantic import Field, field_validator

from fer_core.config import FrozenModel
from fer_core.data.adapters import SourceSpec, collect_source, place_generated, write_generated
from fer_core.data.augment import AugmentConfig
from fer_core.data.index import cache_path, manifest_path, write_index
from fer_core.data.provenance import assign_groups, drop_exact_duplicates
from fer_core.data.report import write_report
from fer_core.data.schema import INDEX_COLUMNS
from fer_core.data.splits import DerivedCopies, assign_splits, check_held_out_originals
from fer_core.data.validate import DEFAULT_MAX_PIXELS, cache_frame, validate_records, write_cache
from fer_core.errors import ConfigError, GateFailedError

ProgressFn = Callable[[str, int, int], None]


class IngestConfig(FrozenModel):
    """Everything the ingest steps need.

    Args:
        sources: the data sources (adapters and their options).
        out_dir: where the index, its manifest, the warm cache and the report go.
        index_name: file name of the index inside ``out_dir``.
        val_fraction: share of train carved out as validation (by group, stratified) when no source has val hints.
        fractions: ``(train, val, test)`` for groups without any split hint.
        seed: seed of the split carving.
        near_dup_hamming: dHashes differing in fewer bits than this are near-duplicates.
        max_bad_fraction: the quality gate: more rejected rows than this share of all rows fails the ingest.
        min_side: images with a shorter side below this are flagged ``tiny`` (kept; the ingest output names them).
        reject_side: images with a shorter side below this are rejected (they count against the gate); set it
            to ``min_side`` to reject every tiny image, 0 to keep all.
        max_pixels: header-claimed pixel counts above this are refused before decoding (decompression bombs).
        workers: validation processes (default: all cores).
        augment: minority augmentation settings, or ``None`` for none (train split only: validation and test
            hold originals only).
        derived_copies: what training keeps of derived copies (``<orig>.jpg<N>.jpg``): ``keep`` all (the default:
            on FER2013 it beat ``drop`` at equal compute, docs/fer2013_recipe.md), ``one_per_original`` or ``drop``.
            Validation and test never keep them (see ``splits.py``).
    """

    sources: list[SourceSpec] = Field(min_length=1)
    out_dir: Path
    index_name: str = "index.parquet"
    val_fraction: float = Field(0.1, ge=0, lt=1)
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    near_dup_hamming: int = Field(8, ge=1, le=64)
    max_bad_fraction: float = Field(0.001, ge=0, le=1)
    min_side: int = Field(32, ge=1)
    reject_side: int = Field(8, ge=0)
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=1)
    workers: int | None = Field(None, ge=1)
    augment: AugmentConfig | None = None
    derived_copies: DerivedCopies = "keep"

    @field_validator("augment")
    @classmethod
    def _augment_train_only(cls, v: AugmentConfig | None) -> AugmentConfig | None:
        if v is not None and set(v.splits) - {"train"}:
            raise ValueError(f"augment.splits is {list(v.splits)}: validation and test hold originals only "
                             "(evaluation, calibration and selection read them); use splits: [train]")  # fmt: skip
        return v

    @property
    def index_path(self) -> Path:
        return self.out_dir / self.index_name

    @property
    def augment_dir(self) -> Path:
        """Where ``augment_minority`` writes its images (a declared root of the index when augmentation is on)."""
        return self.out_dir / "augmented"


@dataclass(frozen=True)
class IngestResult:
    index_path: Path
    manifest_path: Path
    report_dir: Path
    manifest: dict
    report: dict


def collect_records(sources: list[SourceSpec]) -> pd.DataFrame:
    """Run every source's adapter. Returns the records frame (``adapters.RECORD_COLUMNS``) of all sources."""
    names = [s.source_name for s in sources]
    if len(set(names)) != len(names):
        raise ConfigError(f"source names must be unique, got {names}; set SourceSpec.name")
    return pd.concat([collect_source(s) for s in sources], ignore_index=True)


def validate_step(records: pd.DataFrame, cfg: IngestConfig, progress: ProgressFn | None = None) -> pd.DataFrame:
    """Validate records (``validate.validate_records``), reusing the warm cache of a previous index in ``out_dir``."""
    cpath = cache_path(cfg.index_path)
    cache = pq.read_table(cpath).to_pandas() if cpath.is_file() else None
    return validate_records(place_generated(records, cfg.out_dir), min_side=cfg.min_side, max_pixels=cfg.max_pixels,
                            workers=cfg.workers, cache=cache, progress=progress,
                            reject_side=cfg.reject_side)  # fmt: skip


def check_gate(records: pd.DataFrame, max_bad_fraction: float) -> None:
    """Fail when rejected rows exceed ``max_bad_fraction`` of the rows (design-dropped rows excluded).

    Raises:
        GateFailedError: listing every rejected row with its reason (nothing has been written).
    """
    bad = records[records["status"] == "rejected"]
    total = int((records["status"] != "dropped").sum())
    if total == 0:
        raise GateFailedError("ingest found no images in any source; check the source paths and kinds")
    if len(bad) / total > max_bad_fraction:
        rows = "\n".join(f"  - {w}: {r}" for w, r in zip(bad["where"], bad["reason"], strict=True))
        raise GateFailedError(
            f"{len(bad)} of {total} rows are bad ({len(bad) / total:.4%} > max_bad_fraction {max_bad_fraction:.4%}); "
            f"nothing was written. Fix or remove these rows, or raise max_bad_fraction:\n{rows}"
        )


def group_step(records: pd.DataFrame, near_dup_hamming: int = 8) -> pd.DataFrame:
    """Provenance groups (copies, exact and near duplicates), then one row per ``sample_id``."""
    return drop_exact_duplicates(assign_groups(records, near_dup_hamming))


def split_step(records: pd.DataFrame, cfg: IngestConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Group-wise splits, held-out originals untouched. Returns ``(records, cross-split drops)``."""
    return assign_splits(records, val_fraction=cfg.val_fraction, seed=cfg.seed, fractions=cfg.fractions,
                         derived_copies=cfg.derived_copies)  # fmt: skip


def build_index(records: pd.DataFrame) -> pd.DataFrame:
    """The index rows (:data:`INDEX_COLUMNS`) of the good records."""
    ok = records[records["status"] == "ok"]
    return ok.reindex(columns=list(INDEX_COLUMNS)).reset_index(drop=True)


def declared_roots(records: pd.DataFrame, cfg: IngestConfig) -> list[str]:
    roots = sorted(set(records["root"]))
    return roots + [str(cfg.augment_dir)] if cfg.augment is not None else roots


def write_outputs(index: pd.DataFrame, records: pd.DataFrame, leakage: pd.DataFrame, cfg: IngestConfig) -> IngestResult:
    """Write the index + manifest, the warm-validation cache and the report into ``cfg.out_dir``.

    Args:
        index: :func:`build_index` rows, plus any rows ``augment_minority`` returned.
        records: the split records (for the report's findings and the cache).
        leakage: the split step's cross-split drops.
        cfg: the ingest config.

    Raises:
        DataIntegrityError: validation or test holds a derived row (nothing is written).
    """
    check_held_out_originals(index)
    manifest = write_index(index, cfg.index_path, declared_roots(records, cfg))
    write_cache(cache_frame(records), cache_path(cfg.index_path))
    report = write_report(cfg.out_dir, index, records, leakage, cfg.derived_copies, tuple(cfg.fractions))
    return IngestResult(cfg.index_path, manifest_path(cfg.index_path), cfg.out_dir, manifest, report)


def run_ingest(cfg: IngestConfig, progress: ProgressFn | None = None) -> IngestResult:
    """Every step in order (library users and tests; the ingest flow calls the steps as separate tasks).

    Raises:
        DataIntegrityError: a source is structurally malformed. GateFailedError: too many bad rows.
    """

    def tick(stage: str) -> None:
        if progress:
            progress(stage, 1, 1)

    records = collect_records(cfg.sources)
    tick("collect")
    records = validate_step(records, cfg, progress)
    check_gate(records, cfg.max_bad_fraction)
    write_generated(records)
    records = group_step(records, cfg.near_dup_hamming)
    tick("group")
    records, leakage = split_step(records, cfg)
    tick("split")
    index = build_index(records)
    if cfg.augment is not None:
        from fer_core.data.augment import augment_minority

        index = pd.concat([index, augment_minority(index, cfg.augment, cfg.augment_dir)], ignore_index=True)
        tick("augment")
    result = write_outputs(index, records, leakage, cfg)
    tick("write")
    return result
