"""ClassBalancedBatchSampler: the per-batch class guarantee, determinism by seed, tiny classes, refusals."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fer_core.errors import ConfigError, DataIntegrityError
from fer_core.train.sampler import ClassBalancedBatchSampler


@settings(max_examples=30, deadline=None)
@given(
    counts=st.lists(st.integers(1, 40), min_size=7, max_size=7),
    extra=st.integers(0, 20),
    seed=st.integers(0, 1000),
)
def test_every_batch_holds_two_of_every_class(counts, extra, seed):
    labels = np.repeat(np.arange(7), counts)
    bs = 14 + extra
    sampler = ClassBalancedBatchSampler(labels, bs, min_per_class=2, seed=seed)
    batches = list(sampler)
    assert len(batches) == len(sampler) == -(-len(labels) // bs)
    for b in batches:
        assert len(b) == bs and b.min() >= 0 and b.max() < len(labels)
        assert np.bincount(labels[b], minlength=7).min() >= 2
        for c in range(7):
            rows = b[labels[b] == c]
            if counts[c] >= 2:  # guaranteed draws of a class with >= 2 samples are distinct rows
                assert len(np.unique(rows)) >= 2


def test_deterministic_by_seed_and_epoch():
    labels = np.repeat(np.arange(7), [30, 3, 10, 50, 20, 15, 12])
    a = ClassBalancedBatchSampler(labels, 32, seed=7)
    b = ClassBalancedBatchSampler(labels, 32, seed=7)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    c = ClassBalancedBatchSampler(labels, 32, seed=8)
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))
    a.set_epoch(1)
    assert not all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_minority_is_oversampled_and_every_row_is_seen_within_a_few_epochs():
    labels = np.repeat(np.arange(7), [100, 2, 5, 100, 100, 100, 100])
    sampler = ClassBalancedBatchSampler(labels, 64, seed=0)
    batches = list(sampler)
    seen = np.concatenate(batches)
    assert np.bincount(labels[seen], minlength=7)[1] >= 2 * len(batches)  # 2 of 507 rows, 16 draws
    for epoch in range(1, 5):
        sampler.set_epoch(epoch)
        seen = np.concatenate([seen, *sampler])
    assert len(np.unique(seen)) == len(labels)


def test_refusals():
    labels = np.repeat(np.arange(7), 3)
    with pytest.raises(ConfigError, match="batch_size 13"):
        ClassBalancedBatchSampler(labels, 13)
    with pytest.raises(DataIntegrityError, match="class 6"):
        ClassBalancedBatchSampler(labels[labels != 6], 14)
