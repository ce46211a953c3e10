"""Ingestion benchmarks against baselines measured in the same run (FER2013 folder from /work/shared/data).

(a) cold validation vs a bare read + SHA-256 + cv2.imdecode loop; (b) warm re-validation vs a bare os.stat loop;
(c) near-duplicate search over 228,615 hashes (synthetic with planted near-duplicates, and real FER2013 hashes tiled)
vs vectorised all-pairs (a 20,000-hash sample, whose pairs must be identical, extrapolated n^2); (d) full ingest
findings on FER2013 train + validation.

Usage: .venv/bin/python benchmarks/bench_ingest.py [--quick] [--workers N] [--near-dup-only]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fer_core.data.adapters import SourceSpec  # noqa: E402
from fer_core.data.dedup import brute_force_pairs, near_duplicate_components, near_duplicate_pairs  # noqa: E402
from fer_core.data.index import revalidate_index  # noqa: E402
from fer_core.data.ingest import (  # noqa: E402
    IngestConfig,
    build_index,
    check_gate,
    collect_records,
    group_step,
    split_step,
    write_outputs,
)  # fmt: skip
from fer_core.data.validate import dhash64, validate_records  # noqa: E402

FER = Path("/work/shared/data/fer2013")


def floor_loop(paths: list[str]) -> float:
    t = time.perf_counter()
    for p in paths:
        with open(p, "rb") as f:
            data = f.read()
        hashlib.sha256(data).hexdigest()
        cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    return time.perf_counter() - t


def stat_loop(paths: list[str]) -> float:
    t = time.perf_counter()
    for p in paths:
        os.stat(p)
    return time.perf_counter() - t


def planted_hashes(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` synthetic dHashes: 80% random, 20% near copies of them (1-7 random bit flips, so within radius 7) plus
    the same flips applied to a second (vertical) hash, so confirmation keeps the planted links."""
    rng = np.random.default_rng(seed)
    h = rng.integers(0, 2**64, size=n, dtype=np.uint64, endpoint=False)
    v = rng.integers(0, 2**64, size=n, dtype=np.uint64, endpoint=False)
    k = n // 5
    src = rng.integers(0, n - k, k)
    flips = rng.integers(1, 8, k)
    ch, cv = h[src].copy(), v[src].copy()
    for f in range(7):
        bit = np.uint64(1) << rng.integers(0, 64, k).astype(np.uint64)
        ch = np.where(f < flips, ch ^ bit, ch)
        cv = np.where(f < flips, cv ^ (bit >> np.uint64(1)), cv)
    h[n - k :], v[n - k :] = ch, cv
    return h, v


def tiled_real(real: np.ndarray, real_v: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Real dHashes tiled to ``n``; the copies get 1-2 random bit flips (skewed, clustered, like a big ingest)."""
    rng = np.random.default_rng(0)
    reps = -(-n // len(real))
    h, v = np.tile(real, reps)[:n], np.tile(real_v, reps)[:n]
    flips = rng.integers(0, 64, size=(n, 2)).astype(np.uint64)
    tiled = np.arange(n) >= len(real)
    for k in range(2):
        h = np.where(tiled, h ^ (np.uint64(1) << flips[:, k]), h)
    return h, v


def _timed(fn, *args, **kw):
    t, c = time.perf_counter(), time.process_time()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t, time.process_time() - c


def bench_near_dup(name: str, h: np.ndarray, v: np.ndarray, threshold: int, sample: int = 20_000) -> None:
    """The search over all of ``h`` (with and without vertical-hash confirmation), its pairs checked against the
    all-pairs reference on a sample, and the all-pairs time extrapolated to the full size (the baseline)."""
    n = len(h)
    (labels, links), wall, cpu = _timed(near_duplicate_components, h, threshold)
    _, wall_c, cpu_c = _timed(near_duplicate_components, h, threshold, confirm=v)
    m = min(n, sample)
    idx = np.random.default_rng(1).choice(n, m, replace=False)
    ref, t_bf, _ = _timed(brute_force_pairs, h[idx], threshold)
    fast, t_fast, _ = _timed(near_duplicate_pairs, h[idx], threshold)
    t_bf_full = t_bf * (n / m) ** 2
    same = np.array_equal(fast, ref)
    print(f"(c) near-dup search, {name}, {n:,} hashes, distance < {threshold} (load1 {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs)")  # fmt: skip
    print(f"    search {wall:.2f} s wall / {cpu:.2f} s CPU (links {links:,}, components {len(np.unique(labels)):,}); "
          f"with vertical-dHash confirmation {wall_c:.2f} s wall / {cpu_c:.2f} s CPU")  # fmt: skip
    print(f"    all-pairs on {m:,} sampled: {len(ref):,} pairs, search found the same pairs: {same} "
          f"({t_fast:.2f} s vs {t_bf:.2f} s); all-pairs extrapolated to {n:,}: {t_bf_full:.1f} s -> speed-up "
          f"{t_bf_full / wall:.0f}x  [target <= 10 s: {'PASS' if wall <= 10 else 'FAIL'}]")  # fmt: skip


def real_hashes(limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal and vertical dHashes of the FER2013 images (decoded here; no validation, no index)."""
    paths = sorted(FER.rglob("*.jpg"))[:limit]
    h, v = np.empty(len(paths), np.uint64), np.empty(len(paths), np.uint64)
    for i, p in enumerate(paths):
        g = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
        h[i], v[i] = dhash64(g), dhash64(np.ascontiguousarray(g.T))
    return h, v


def near_dup_only(n: int, threshold: int) -> None:
    bench_near_dup("synthetic with planted near-duplicates", *planted_hashes(n), threshold)
    if FER.is_dir():
        bench_near_dup("FER2013 dHashes tiled with 1-2 bit flips", *tiled_real(*real_hashes(), n), threshold)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="5k files, 50k hashes")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--near-dup-only", action="store_true", help="only (c), on synthetic and FER2013-tiled hashes")
    args = ap.parse_args()
    n_hashes = 50_000 if args.quick else 228_615
    if args.near_dup_only:
        near_dup_only(n_hashes, IngestConfig.model_fields["near_dup_hamming"].default)
        return
    if not FER.is_dir():
        sys.exit(f"{FER} is absent")
    out = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    cfg = IngestConfig(sources=[SourceSpec(kind="folder", path=FER)], out_dir=out, workers=args.workers)
    records = collect_records(cfg.sources)
    if args.quick:
        records = records.sample(5000, random_state=0).reset_index(drop=True)
    paths = [str(FER / p) for p in records["path"]]
    floor_loop(paths[:2000])  # page cache and imports warm for both contenders
    t_floor = floor_loop(paths)
    t = time.perf_counter()
    validated = validate_records(records, min_side=cfg.min_side, max_pixels=cfg.max_pixels, workers=args.workers)
    t_cold = time.perf_counter() - t
    n = len(paths)
    ratio = t_floor / t_cold
    print(
        f"(a) cold validation of {n:,} files, {args.workers} workers: {n / t_cold:,.0f} files/s; "
        f"floor (read+sha256+imdecode, 1 process) {n / t_floor:,.0f} files/s -> {ratio:.2f}x the floor "
        f"[target >= 0.5x: {'PASS' if ratio >= 0.5 else 'FAIL'}]"
    )

    t = time.perf_counter()
    check_gate(validated, cfg.max_bad_fraction)
    grouped = group_step(validated, cfg.near_dup_hamming)
    split, leakage = split_step(grouped, cfg)
    res = write_outputs(build_index(split), split, leakage, cfg)
    t_rest = time.perf_counter() - t
    index_paths = [str(p) for p in split.loc[split["status"] == "ok", "image_path"]]
    stat_loop(index_paths[:2000])
    t_stat = stat_loop(index_paths)
    t = time.perf_counter()
    problems = revalidate_index(res.index_path, workers=args.workers)
    t_warm = time.perf_counter() - t
    ratio = t_stat / t_warm
    print(
        f"(b) warm re-validation of {len(index_paths):,} indexed files: {t_warm * 1e3:.0f} ms "
        f"({len(problems)} problems); bare os.stat loop {t_stat * 1e3:.0f} ms -> {ratio:.2f}x "
        f"[target >= 0.3x: {'PASS' if ratio >= 0.3 else 'FAIL'}]"
    )

    ok = validated[validated["status"] == "ok"]
    bench_near_dup("synthetic with planted near-duplicates", *planted_hashes(n_hashes), cfg.near_dup_hamming)
    real = tiled_real(ok["dhash"].to_numpy(np.uint64), ok["dhash_v"].to_numpy(np.uint64), n_hashes)
    bench_near_dup("FER2013 dHashes tiled with 1-2 bit flips", *real, cfg.near_dup_hamming)

    f = res.report["findings"]
    print(f"(d) ingest of {n:,} files (group + split + write {t_rest:.1f} s): rows {f['rows']}")
    for k in (
        "exact_duplicates",
        "exact_duplicates_label_conflict",
        "near_duplicate_images",
        "near_duplicate_clusters",
        "near_duplicate_images_across_families",
        "near_duplicate_clusters_label_conflict",
        "augmented_copies",
        "augmented_copies_matched",
        "augmented_copies_missing_original",
        "tiny_images",
        "leakage_prevented",
    ):
        print(f"    {k}: {f[k]}")
    print(
        f"    missing_originals: {len(f['missing_originals'])}, blank_images: {len(f['blank_images'])}, "
        f"rejected rows: {len(f['rejected_rows'])}"
    )
    print(f"    counts per split: { {s: sum(v.values()) for s, v in res.report['balance']['counts'].items()} }")
    print(f"    outputs in {out}")


if __name__ == "__main__":
    main()
