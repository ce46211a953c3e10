"""Task cache keys that notice code changes: the task's inputs and source plus the whole library's code version.

Prefect's ``TASK_SOURCE`` hashes only the task function's own lines, so a changed helper in ``fer_core`` (or in the
task modules it calls) used to serve stale results. :data:`CODE_AWARE` adds a hash of every ``.py`` file under
``fer_core/`` and ``tasks/``: any edit there is a cache miss.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import Any

from prefect.cache_policies import INPUTS, TASK_SOURCE, CachePolicy

REPO = Path(__file__).resolve().parents[1]
LIBRARY_DIRS = ("fer_core", "fer_spec", "fer_adapters", "tasks")


def code_version(root: Path = REPO, dirs: tuple[str, ...] = LIBRARY_DIRS) -> str:
    """SHA-256 over the relative path and bytes of every ``.py`` file under ``root/<dirs>`` (sorted)."""
    h = hashlib.sha256()
    for d in dirs:
        for path in sorted((root / d).rglob("*.py")):
            h.update(path.relative_to(root).as_posix().encode())
            h.update(b"\0")
            h.update(path.read_bytes())
            h.update(b"\0")
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def code_version_of_checkout() -> str:
    """This process's code version, computed once; a Ray worker takes its driver's (``FERFLOW_CODE_VERSION``) so
    both address the same run folders even while the checkout is being edited."""
    return os.environ.get("FERFLOW_CODE_VERSION") or code_version()


class LibraryVersion(CachePolicy):
    """Cache-key component: the code version of this checkout's library (computed once per process)."""

    def compute_key(self, task_ctx: Any, inputs: Any, flow_parameters: Any, **kwargs: Any) -> str | None:
        return code_version_of_checkout()


CODE_AWARE = INPUTS + TASK_SOURCE + LibraryVersion()
