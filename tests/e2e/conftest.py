"""Fixtures for end-to-end tests: stack settings on free loopback ports in a temporary home."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tasks.settings import Settings


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS may hand it out again later; good enough for tests)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stack_settings(home: Path, artifacts: str | None = None) -> Settings:
    """Settings for a small local stack in ``home``: free ports, 1 Ray CPU, a 256 MB object store."""
    return Settings(
        home=home,
        tracking_uri=f"sqlite:///{home / 'mlflow.db'}",
        ray_address=None,
        ray_object_store_mb=256,
        prefect_port=free_port(),
        mlflow_port=free_port(),
        ray_port=free_port(),
        ray_dashboard_port=free_port(),
        artifacts=artifacts or str(home / "artifacts"),
        ray_num_cpus=1,
    )


@pytest.fixture(scope="module")
def stack_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh FERFLOW_HOME for one module's stack."""
    return tmp_path_factory.mktemp("stack-home")
