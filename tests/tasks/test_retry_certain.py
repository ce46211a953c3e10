"""Retries only where a second try can succeed: a refusal runs once, an I/O error is retried (collect_source)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect import flow

import tasks.data as data_tasks
from fer_core.data.adapters import SourceSpec
from fer_core.errors import DataIntegrityError


@pytest.mark.parametrize(("error", "calls"), [(DataIntegrityError("bad.csv:3: unknown label"), 1),
                                              (ConnectionResetError("share went away"), 3)])  # fmt: skip
def test_collect_source_retries_only_transient_errors(prefect_harness, monkeypatch, error, calls):
    seen = []

    def failing(spec):
        seen.append(spec)
        raise error

    monkeypatch.setattr(data_tasks, "collect_source", failing)
    fast = data_tasks.collect_source_task.with_options(retry_delay_seconds=0)

    @flow
    def one_source():
        return fast(SourceSpec(kind="csv", path=Path("bad.csv")))

    with pytest.raises(type(error)):
        one_source()
    assert len(seen) == calls  # 1 try for a refusal; 1 + 2 retries otherwise
