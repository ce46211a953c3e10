"""Content-addressed run folders in the artifact store, and the typed results committed into them.

A unit works in a node-local folder (the store's own folder when the store is local, else
``$FERFLOW_HOME/cache/store/...``), pushes ``last.pt`` to the store each time it is written, uploads the rest when it
finishes and commits its ``result.json`` last: a result in the store means everything it names is there too. A unit
re-run on another node starts by fetching the store's ``last.pt``, so it resumes where the dead one stopped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from fer_adapters.cache import code_version_of_checkout
from fer_adapters.store import Store, get_file
from fer_core.io import sha256_json

RESULT_NAME = "result.json"
R = TypeVar("R", bound=BaseModel)


def run_key(stage: str, name: str, key: Any) -> str:
    """The store prefix of a run: the same inputs (and library code) always land and resume in one place."""
    return f"runs/{stage}/{name}-{sha256_json({'key': key, 'code': code_version_of_checkout()})[:12]}"


class RunFolder:
    """One run's folder: a node-local working copy mirrored to the store under ``key``.

    Args:
        key: the store prefix (see :func:`run_key`).
        store: the artifact store (default: the settings').
    """

    def __init__(self, key: str, store: Store | None = None):
        self.key = key
        self.store = store or Store.from_env()
        self.local = Path(self.store.url(key)) if self.store.is_local else self.store.cache_dir / key

    def key_of(self, path: str | Path) -> str:
        """The store key of a file inside the local folder."""
        return f"{self.key}/{Path(path).resolve().relative_to(self.local.resolve()).as_posix()}"

    def restore(self, name: str = "last.pt") -> bool:
        """Fetch ``name`` from the store into the local folder unless it is there; whether it exists now."""
        local = self.local / name
        if not local.is_file() and not self.store.is_local and self.store.exists(f"{self.key}/{name}"):
            get_file(self.store.url(f"{self.key}/{name}"), local)
        return local.is_file()

    def push(self, path: str | Path) -> str:
        """Copy one local file to the store (a no-op for a local store, where the file already is); its key."""
        key = self.key_of(path)
        if not self.store.is_local:
            self.store.put_file(key, path)
        return key

    def push_all(self) -> None:
        """Upload every file of the local folder (before the result is committed)."""
        if not self.store.is_local:
            self.store.put_dir(self.key, self.local)

    def save(self, result: R) -> R:
        """Commit ``result`` as the folder's ``result.json`` (last, after everything it names)."""
        self.store.put_bytes(f"{self.key}/{RESULT_NAME}", json.dumps(result.model_dump(mode="json"), indent=1).encode())
        return result

    def find(self, model: type[R]) -> R | None:
        """The committed result of this folder, or None when the run has not finished."""
        return find_result(self.key, model, self.store)


def find_result(key: str, model: type[R], store: Store | None = None) -> R | None:
    """The result committed under ``key`` in the store, or None."""
    store = store or Store.from_env()
    if not store.exists(f"{key}/{RESULT_NAME}"):
        return None
    return model.model_validate(json.loads(store.get_bytes(f"{key}/{RESULT_NAME}")))


def save_result(key: str, result: R, store: Store | None = None) -> R:
    """Commit ``result`` under ``key`` (a stage result that names no local folder)."""
    return RunFolder(key, store).save(result)


def fetch(key: str, sha256: str | None = None) -> Path:
    """A verified local copy of a store key (see :meth:`fer_adapters.store.Store.fetch`)."""
    return Store.from_env().fetch(key, sha256)
