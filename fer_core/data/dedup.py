"""Exact and near-duplicate search over 64-bit dHashes without all-pairs comparison (multi-index hashing).

Identical hashes are collapsed first (blank images all hash alike, which would otherwise make one huge bucket). The
distinct hashes are split into four 16-bit blocks; by the pigeonhole principle two hashes at distance ``d`` agree within
``d // 4`` bits on at least one block, so each hash probes, per block, the buckets of every 16-bit value within that
radius. Candidates are compared vectorised (XOR + popcount) in bounded chunks; components come from a sparse graph.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

_BLOCKS = 4
_BLOCK_BITS = 16
_MAX_PAIRS_PER_CHUNK = 4_000_000


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise Hamming distance of uint64 arrays (broadcasting)."""
    return np.bitwise_count(np.bitwise_xor(a, b)).astype(np.int64)


def _masks(radius: int) -> np.ndarray:
    """Every 16-bit XOR mask with at most ``radius`` bits set."""
    out = [0]
    for r in range(1, radius + 1):
        out += [sum(1 << b for b in bits) for bits in combinations(range(_BLOCK_BITS), r)]
    return np.array(out, dtype=np.int64)


def _block_pairs(u: np.ndarray, shift: int, masks: np.ndarray, max_distance: int) -> np.ndarray:
    """Pairs ``[P, 2]`` (i < j) of distinct hashes ``u`` within ``max_distance`` found through one block."""
    keys = ((u >> np.uint64(shift)) & np.uint64(0xFFFF)).astype(np.int64)
    order = np.argsort(keys, kind="stable")
    counts = np.bincount(keys, minlength=1 << _BLOCK_BITS)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    found = []
    # chunk the queries by their real candidate counts: skewed real hashes make a few buckets huge
    per_query = counts[(keys[:, None] ^ masks[None, :])].sum(axis=1)
    bounds = np.searchsorted(np.cumsum(per_query), np.arange(1, 1 + int(per_query.sum()) // _MAX_PAIRS_PER_CHUNK)
                             * _MAX_PAIRS_PER_CHUNK)  # fmt: skip
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(u)], strict=True):
        if hi <= lo:
            continue
        q = np.arange(lo, hi)
        probe = (keys[q][:, None] ^ masks[None, :]).ravel()  # [Q * M] bucket keys to visit
        owner = np.repeat(q, len(masks))
        c = counts[probe]
        keep = c > 0
        probe, owner, c = probe[keep], owner[keep], c[keep]
        total = int(c.sum())
        if total == 0:
            continue
        first = np.repeat(np.cumsum(c) - c, c)
        cand = order[np.repeat(starts[probe], c) + (np.arange(total) - first)]
        src = np.repeat(owner, c)
        sel = src < cand
        src, cand = src[sel], cand[sel]
        close = hamming(u[src], u[cand]) <= max_distance
        found.append(np.stack([src[close], cand[close]], axis=1))
    return np.concatenate(found) if found else np.empty((0, 2), np.int64)


def near_pairs_distinct(u: np.ndarray, max_distance: int) -> np.ndarray:
    """All pairs ``[P, 2]`` (i < j, unique) of the distinct hashes ``u`` with Hamming distance ``<= max_distance``."""
    u = np.asarray(u, dtype=np.uint64)
    if len(u) < 2 or max_distance < 0:
        return np.empty((0, 2), np.int64)
    if max_distance >= 64:
        i, j = np.triu_indices(len(u), k=1)
        return np.stack([i, j], axis=1).astype(np.int64)
    masks = _masks(max_distance // _BLOCKS)
    parts = [_block_pairs(u, _BLOCK_BITS * b, masks, max_distance) for b in range(_BLOCKS)]
    pairs = np.concatenate(parts)
    if len(pairs) == 0:
        return pairs
    code = np.unique(pairs[:, 0] * len(u) + pairs[:, 1])  # one pair may be found through several blocks
    return np.stack([code // len(u), code % len(u)], axis=1)


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
