"""Near-duplicate search equals brute force (property test); identical and confirmed hashes group as specified."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fer_core.data.dedup import (
    brute_force_pairs,
    hamming,
    near_duplicate_components,
    near_duplicate_pairs,
    union_labels,
)  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 300), threshold=st.integers(1, 20))
def test_near_pairs_equal_brute_force(seed, n, threshold):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 2**64, size=max(1, n // 3), dtype=np.uint64, endpoint=False)
    h = base[rng.integers(0, len(base), n)]
    flips = rng.integers(0, 64, size=(n, 3)).astype(np.uint64)
    noise = rng.random((n, 3)) < 0.6  # planted near neighbours at small distances, plus exact repeats
    for k in range(3):
        h = np.where(noise[:, k], h ^ (np.uint64(1) << flips[:, k]), h)
    assert np.array_equal(near_duplicate_pairs(h, threshold), brute_force_pairs(h, threshold))


def test_components_of_hand_made_hashes():
    h = np.array([0, 0b111, 0b1111111 << 20, 2**64 - 1, 0], dtype=np.uint64)
    labels, links = near_duplicate_components(h, threshold=4)
    assert labels[0] == labels[1] == labels[4] and len({labels[0], labels[2], labels[3]}) == 3
    assert links == 1  # 0 <-> 0b111 (distance 3); the repeated 0 is collapsed, not a link
    assert hamming(np.uint64(0b1011), np.uint64(0)) == 3


def test_confirm_hash_vetoes_chance_links():
    h = np.array([0, 1], dtype=np.uint64)
    assert near_duplicate_components(h, 8)[0].tolist() == [0, 0]
    far = np.array([0, 2**64 - 1], dtype=np.uint64)
    labels, links = near_duplicate_components(h, 8, confirm=far)
    assert labels[0] != labels[1] and links == 0


def test_union_labels_transitive():
    labels = union_labels(5, np.array([[0, 1], [1, 2], [3, 4]]))
    assert labels[0] == labels[2] and labels[3] == labels[4] and labels[0] != labels[3]
