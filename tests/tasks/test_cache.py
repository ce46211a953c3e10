"""Task caches notice code changes: the cache key includes a hash of the library's sources."""

from __future__ import annotations

import shutil
from pathlib import Path

from prefect import flow, task

from fer_adapters import cache as _cache
from fer_adapters.cache import CODE_AWARE, code_version

REPO = Path(__file__).resolve().parents[2]


def test_code_version_changes_with_any_library_file(tmp_path):
    for d in ("fer_core", "tasks"):
        shutil.copytree(REPO / d, tmp_path / d, ignore=shutil.ignore_patterns("__pycache__"))
    before = code_version(tmp_path)
    assert code_version(tmp_path) == before  # deterministic
    helper = tmp_path / "fer_core" / "evaluate" / "metrics.py"
    helper.write_text(helper.read_text() + "\n# a changed helper\n")
    assert code_version(tmp_path) != before
    helper.write_text(helper.read_text().removesuffix("\n# a changed helper\n"))
    assert code_version(tmp_path) == before
    (tmp_path / "tasks" / "new_module.py").write_text("X = 1\n")
    assert code_version(tmp_path) != before


CALLS: list[int] = []


@task(cache_policy=CODE_AWARE, persist_result=True)
def _square(x: int) -> int:
    CALLS.append(x)
    return x * x


@flow
def _twice(x: int) -> tuple[int, int]:
    return _square(x), _square(x)


def test_a_changed_library_is_a_cache_miss(prefect_harness, monkeypatch):
    CALLS.clear()
    assert _twice(7) == (49, 49)
    assert CALLS == [7]  # second call served from the cache
    monkeypatch.setattr(_cache, "code_version_of_checkout", lambda: "a-different-fer_core")
    assert _twice(7) == (49, 49)
    assert CALLS == [7, 7]  # the changed code version missed the cache once, then hit again
