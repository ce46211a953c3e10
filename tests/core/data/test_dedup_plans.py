"""Every block plan of the near-duplicate search finds exactly the all-pairs reference's pairs, on skewed, clustered
hashes like real dHashes; the automatic plan adapts to the data."""

from __future__ import annotations

import numpy as np
import pytest

from fer_core.data import dedup
from fer_core.data.dedup import brute_force_pairs, near_duplicate_pairs, near_pairs_distinct


def clustered_hashes(n: int, seed: int = 0, bases: int | None = None) -> np.ndarray:
    """Skewed hashes like real dHashes: low-entropy bases (about a quarter of the bits set, as smooth images give)
    drawn with repeats, each copy with up to four random bit flips."""
    rng = np.random.default_rng(seed)
    nb = bases or max(2, n // 12)
    draw = rng.integers(0, 2**64, (2, nb), dtype=np.uint64, endpoint=False)
    h = (draw[0] & draw[1])[rng.integers(0, nb, n)]
    for _ in range(4):
        flip = rng.random(n) < 0.7
        h = np.where(flip, h ^ (np.uint64(1) << rng.integers(0, 64, n).astype(np.uint64)), h)
    return h


@pytest.mark.parametrize("threshold", [2, 5, 8, 13])
@pytest.mark.parametrize("blocks", [3, 4, 6, 9])
def test_every_block_plan_equals_all_pairs(blocks, threshold):
    u = np.unique(clustered_hashes(3000, seed=threshold))
    got = near_pairs_distinct(u, threshold - 1, blocks=blocks)
    assert np.array_equal(got, brute_force_pairs(u, threshold)) and len(got) > 0


def test_automatic_plan_equals_all_pairs_on_a_5000_hash_sample():
    h = clustered_hashes(5000, seed=7)
    ref = brute_force_pairs(h, 8)
    assert np.array_equal(near_duplicate_pairs(h, 8), ref) and len(ref) > 1000


def test_the_plan_follows_the_data():
    rng = np.random.default_rng(0)
    uniform = rng.integers(0, 2**64, 60_000, dtype=np.uint64, endpoint=False)
    assert [w for _, w, _ in dedup._plan(uniform, 7)] == [16, 16, 16, 16]  # few candidates in 16-bit buckets
    crowded = np.unique(clustered_hashes(60_000, bases=5000))
    plan = dedup._plan(crowded, 7)
    assert [w for _, w, _ in plan] == [22, 21, 21] and {r for *_, r in plan} == {2}  # wider blocks, radius 2
    assert dedup._plan(uniform[:50], 40) is None  # a tiny set at a huge radius: all pairs is cheapest


def test_blocks_out_of_range_are_refused():
    with pytest.raises(ValueError, match="blocks must be in"):
        near_pairs_distinct(np.arange(4, dtype=np.uint64), 3, blocks=2)
