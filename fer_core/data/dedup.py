"""Exact and near-duplicate search over 64-bit dHashes without all-pairs comparison (multi-index hashing).

Identical hashes are collapsed first (blank images all hash alike, which would otherwise make one huge bucket). The
64 bits are split into ``m`` blocks; by the pigeonhole principle two hashes at distance ``d`` differ in at most
``d // m`` bits of at least one block. Per block, every hash is joined with the hashes whose block value lies within
that radius of its own (a bucket table over the block's values, probed once per XOR mask); the candidates are
compared on all 64 bits vectorised (XOR + popcount). ``m`` is chosen per call from a cost model (3 blocks of ~21 bits
at radius 2 for the ingest's threshold of 8 on ~10^5 hashes); components come from a sparse graph.
"""

from __future__ import annotations

from itertools import combinations
from math import comb

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

_MAX_BLOCK_BITS = 22  # bucket tables of at most 4M int32 entries (16 MB)
# relative costs in the plan's model, measured here: a bucket-table probe ~10 ns, a candidate pair expanded and
# compared ~11-26 ns; vectorised all-pairs ~1 probe-cost per pair
_PROBE_COST, _PAIR_COST = 1.0, 2.0


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise Hamming distance of uint64 arrays (broadcasting)."""
    return np.bitwise_count(np.bitwise_xor(a, b)).astype(np.int64)


def _masks(width: int, radius: int) -> np.ndarray:
    """Every non-zero ``width``-bit XOR mask with at most ``radius`` bits set."""
    out = [sum(1 << b for b in bits) for r in range(1, radius + 1) for bits in combinations(range(width), r)]
    return np.array(out, dtype=np.int64)


def _widths(m: int) -> list[int]:
    return [64 // m + (1 if i < 64 % m else 0) for i in range(m)]


def _plan_blocks(m: int, max_distance: int) -> list[tuple[int, int, int]]:
    widths = _widths(m)
    shifts = np.cumsum([0, *widths[:-1]]).tolist()
    return [(int(s), w, max_distance // m) for s, w in zip(shifts, widths, strict=True)]


def _sampled_pairs(u: np.ndarray, plan: list[tuple[int, int, int]], rng: np.random.Generator, size: int) -> float:
    """Candidate pairs the plan would expand, estimated from ``size`` sampled hashes probing the full bucket tables
    (real dHashes are far from uniform: crowded block values make many more candidates than the uniform model)."""
    sample = u[rng.choice(len(u), size=min(size, len(u)), replace=False)]
    total = 0.0
    for shift, width, rb in plan:
        lo = np.uint64((1 << width) - 1)
        counts = np.bincount(((u >> np.uint64(shift)) & lo).astype(np.int64), minlength=1 << width)
        keys = ((sample >> np.uint64(shift)) & lo).astype(np.int64)
        masks = np.concatenate([[0], _masks(width, rb)])
        total += float(counts[keys[:, None] ^ masks[None, :]].sum())
    return total * len(u) / len(sample) / 2.0


def _plan(u: np.ndarray, max_distance: int) -> list[tuple[int, int, int]] | None:
    """Blocks ``(shift, width, radius)`` of the cheapest multi-index plan, or ``None`` when all pairs is cheaper.

    The uniform-hash cost model shortlists three block counts; their candidate pairs are then estimated on a sample
    of the actual hashes, and the cheapest (probes + pairs) wins.
    """
    n = len(u)
    costs = []
    for m in range(1, 65):
        widths = _widths(m)
        if max(widths) > _MAX_BLOCK_BITS:
            continue
        rb = max_distance // m
        masks = [sum(comb(w, r) for r in range(rb + 1)) for w in widths]
        probes = n * sum(masks) / 2.0
        pairs = (n * n / 2.0) * sum(k / 2.0**w for k, w in zip(masks, widths, strict=True))
        costs.append((probes * _PROBE_COST + pairs * _PAIR_COST, m, probes))
    brute = (n * n / 2.0) * _PROBE_COST
    short = [c for c in sorted(costs)[:3] if c[0] < brute * 10]
    if not short:
        return None
    rng = np.random.default_rng(0)
    best, best_cost = None, brute
    for _, m, probes in short:
        plan = _plan_blocks(m, max_distance)
        cost = probes * _PROBE_COST + _sampled_pairs(u, plan, rng, 2000) * _PAIR_COST
        if cost < best_cost:
            best, best_cost = plan, cost
    return best


def _expand(src: np.ndarray, first: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``(src[i], first[i] + k)`` for ``k < count[i]``, as two int64 arrays."""
    total = int(count.sum())
    if total == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    shift = np.repeat(first - (np.cumsum(count) - count), count)
    return np.repeat(src, count), shift + np.arange(total, dtype=np.int64)


def _block_pairs(u: np.ndarray, shift: int, width: int, radius: int, max_distance: int) -> list[np.ndarray]:
    """Pairs ``[P, 2]`` (i < j) of the hashes ``u`` within ``max_distance`` whose block values are within ``radius``.

    Works on the hashes sorted by block value, so every bucket is a contiguous run and the probes of one mask walk the
    bucket table in nearly ascending order (cache-friendly gathers); pairs are mapped back to ``u``'s order at the end.
    """
    keys = ((u >> np.uint64(shift)) & np.uint64((1 << width) - 1)).astype(np.int64)
    order = np.argsort(keys, kind="stable")
    sk, su = keys[order], u[order]
    counts = np.bincount(sk, minlength=1 << width).astype(np.int32)
    starts = (np.cumsum(counts, dtype=np.int64) - counts).astype(np.int32)
    occupied = counts > 0  # 1 byte per block value: the probe that misses (most of them) touches only this
    found = []

    def keep(a: np.ndarray, b: np.ndarray) -> None:  # sorted positions -> original indices of the close pairs
        close = np.bitwise_count(su[a] ^ su[b]) <= max_distance
        if close.any():
            i, j = order[a[close]], order[b[close]]
            found.append(np.stack([np.minimum(i, j), np.maximum(i, j)], axis=1))

    # same block value: each member pairs with the later members of its run
    pos = np.arange(len(u), dtype=np.int64)
    after = (starts[sk] + counts[sk] - 1) - pos
    has = np.flatnonzero(after > 0)
    keep(*_expand(has, has + 1, after[has]))
    masks = _masks(width, radius)
    top = np.floor(np.log2(np.maximum(masks, 1))).astype(np.int64)
    for bit in np.unique(top):
        # key ^ mask > key exactly when the mask's top bit is clear in key: each unordered pair is probed once
        q = np.flatnonzero((sk >> bit) & 1 == 0)
        kq = sk[q]
        for m in masks[top == bit]:
            probe = kq ^ m
            nz = np.flatnonzero(occupied[probe])
            if len(nz):
                pn = probe[nz]
                keep(*_expand(q[nz], starts[pn], counts[pn]))
    return found


def near_pairs_distinct(u: np.ndarray, max_distance: int, blocks: int | None = None) -> np.ndarray:
    """All pairs ``[P, 2]`` (i < j, unique, sorted) of the hashes ``u`` with Hamming distance ``<= max_distance``.

    Args:
        u: uint64 hashes ``[N]``, meant to be distinct (repeats are handled; each repeated pair is then listed).
        max_distance: the search radius in bits.
        blocks: force this many blocks (each at most 22 bits wide, so >= 3); ``None`` picks the cheapest plan.
    """
    u = np.asarray(u, dtype=np.uint64)
    n = len(u)
    if n < 2 or max_distance < 0:
        return np.empty((0, 2), np.int64)
    if blocks is not None and not 3 <= blocks <= 64:
        raise ValueError(f"blocks must be in [3, 64] (blocks of at most {_MAX_BLOCK_BITS} bits), got {blocks}")
    if blocks is not None and max_distance < 64:
        plan = _plan_blocks(blocks, max_distance)
    else:
        plan = _plan(u, max_distance) if max_distance < 64 else None
    if plan is None:
        return brute_force_pairs(u, max_distance + 1)
    parts = [p for shift, width, rb in plan for p in _block_pairs(u, shift, width, rb, max_distance)]
    if not parts:
        return np.empty((0, 2), np.int64)
    pairs = np.concatenate(parts)
    code = np.unique(pairs[:, 0] * n + pairs[:, 1])  # one pair may be found through several blocks
    return np.stack([code // n, code % n], axis=1)


def near_duplicate_pairs(hashes: np.ndarray, threshold: int = 8) -> np.ndarray:
    """All index pairs ``[P, 2]`` (i < j) of ``hashes`` ``[N]`` with Hamming distance ``< threshold``.

    Identical hashes are included (distance 0). The output can be quadratic in the number of identical hashes; use
    :func:`near_duplicate_components` for grouping.
    """
    h = np.asarray(hashes, dtype=np.uint64)
    u, inv = np.unique(h, return_inverse=True)
    order = np.argsort(inv, kind="stable")
    members = np.split(order, np.cumsum(np.bincount(inv, minlength=len(u)))[:-1])
    out = [np.array(list(combinations(m, 2)), np.int64).reshape(-1, 2) for m in members if len(m) > 1]
    for a, b in near_pairs_distinct(u, threshold - 1):
        out.append(np.array([(min(x, y), max(x, y)) for x in members[a] for y in members[b]], np.int64))
    if not out:
        return np.empty((0, 2), np.int64)
    pairs = np.concatenate(out)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


def near_duplicate_components(
    hashes: np.ndarray, threshold: int = 8, confirm: np.ndarray | None = None
) -> tuple[np.ndarray, int]:
    """Connected components of the "distance < threshold" graph over ``hashes`` ``[N]``.

    Args:
        hashes: uint64 dHashes ``[N]`` (searched).
        threshold: link two images when their distance is below this.
        confirm: optional second uint64 hash per image ``[N]`` (e.g. the vertical dHash); a candidate link is kept
            only if it is also below ``threshold`` there. On 48x48 faces one 64-bit dHash alone links thousands of
            different faces into one chain; the second opinion removes those chance links.

    Returns:
        ``(labels [N] int64, number of links between distinct hash values)``.
    """
    h = np.asarray(hashes, dtype=np.uint64)
    if len(h) == 0:
        return np.empty(0, np.int64), 0
    if confirm is None:
        u, inv = np.unique(h, return_inverse=True)
        pairs = near_pairs_distinct(u, threshold - 1)
    else:
        both, inv = np.unique(np.stack([h, np.asarray(confirm, np.uint64)], axis=1), axis=0, return_inverse=True)
        pairs = near_pairs_distinct(both[:, 0], threshold - 1)
        pairs = pairs[hamming(both[pairs[:, 0], 1], both[pairs[:, 1], 1]) < threshold]
        u = both
    return union_labels(len(u), pairs)[inv.ravel()], len(pairs)


def union_labels(n: int, pairs: np.ndarray) -> np.ndarray:
    """Component label per node ``[n]`` of the undirected graph with edges ``pairs`` ``[P, 2]``."""
    if len(pairs) == 0:
        return np.arange(n, dtype=np.int64)
    g = coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(g, directed=False)[1].astype(np.int64)


def brute_force_pairs(hashes: np.ndarray, threshold: int = 8, block: int = 2048) -> np.ndarray:
    """All pairs ``[P, 2]`` (i < j) with distance ``< threshold`` by the vectorised all-pairs method (reference)."""
    h = np.asarray(hashes, dtype=np.uint64)
    out = []
    for lo in range(0, len(h), block):
        d = hamming(h[lo : lo + block, None], h[None, :])
        i, j = np.nonzero(d < threshold)
        i = i + lo
        keep = i < j
        out.append(np.stack([i[keep], j[keep]], axis=1))
    return np.concatenate(out).astype(np.int64) if out else np.empty((0, 2), np.int64)
