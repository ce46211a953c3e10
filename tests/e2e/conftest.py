"""Fixtures for end-to-end tests: stack settings on free loopback ports in a temporary home, and a served stack."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fer_spec.settings import Settings

REPO = Path(__file__).resolve().parents[2]


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


def client_env(env: dict[str, str], home: Path) -> dict[str, str]:
    """Environment of a CLI client of the stack (own PREFECT_HOME so it shares no profile with the tests)."""
    return {**os.environ, **env, "PREFECT_HOME": str(home / "prefect-client"), "FERFLOW_PROJECT_DIR": str(REPO)}


def deploy_all(env: dict[str, str]) -> subprocess.CompletedProcess:
    """``prefect deploy --all`` of this checkout's prefect.yaml."""
    return subprocess.run([str(Path(sys.executable).parent / "prefect"), "--no-prompt", "deploy", "--all"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip


@contextlib.contextmanager
def served_stack(home: Path, ray_address: str | None = None, env: dict[str, str] | None = None) -> Iterator[dict]:
    """The local stack in ``home`` (the worker polls every 2 s so triggered runs start promptly, and pulls flows from
    this checkout); yields ``settings``, ``env`` (its client settings) and ``home``; stopped after.

    Args:
        home: the stack's FERFLOW_HOME.
        ray_address: a test's own Ray cluster (GCS ``host:port``, auth off): then only Prefect, its worker and MLflow
            start, and every deployment is applied; None: the whole stack with its own 2-CPU Ray head.
        env: extra environment for the stack's processes.
    """
    from ferflow.stack import COMPONENTS, stack_down, stack_up

    if ray_address is None:
        settings, components = stack_settings(home).model_copy(update={"ray_num_cpus": 2}), list(COMPONENTS)
    else:
        settings = stack_settings(home).model_copy(update={"ray_address": ray_address, "ray_auth_mode": "disabled"})
        components = ["prefect", "worker", "mlflow"]
    with pytest.MonkeyPatch.context() as mp:
        for k, v in {"PREFECT_WORKER_QUERY_SECONDS": "2", "FERFLOW_PROJECT_DIR": str(REPO), **(env or {})}.items():
            mp.setenv(k, v)
        try:
            status = stack_up(settings, components=components, timeout_s=180)
            assert status.healthy, {n: c.detail for n, c in status.components.items()}
            if ray_address is not None:
                out = deploy_all(client_env(status.env, home))
                assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
            yield {"settings": settings, "env": status.env, "home": home}
        finally:
            stack_down(settings, components=components)


def assert_one_finished_run_per_unit(runs: list, units: int) -> dict[str, list]:
    """Group MLflow runs by unit (run name) and check there are ``units`` of them, each with one FINISHED run (a
    unit re-run after its node died leaves the dead run beside it, never a second FINISHED one)."""
    by_unit: dict[str, list] = {}
    for r in runs:
        by_unit.setdefault(r.data.tags["mlflow.runName"], []).append(r)
    assert len(by_unit) == units, sorted(by_unit)
    for name, rs in by_unit.items():
        assert [r.info.status for r in rs].count("FINISHED") == 1, (name, [r.info.status for r in rs])
    return by_unit

