"""Runtime settings read from the environment (never at import time of fer_core)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, model_validator


class Settings(BaseModel):
    """Where ferflow keeps its state and which servers it talks to.

    Environment: ``FERFLOW_HOME`` (default ``~/.ferflow``), ``MLFLOW_TRACKING_URI`` (default SQLite in the home),
    ``FERFLOW_RAY_ADDRESS`` (default: start Ray locally), ``FERFLOW_RAY_OBJECT_STORE_MB`` (default 1024), the stack's
    ports ``FERFLOW_PREFECT_PORT`` (4200), ``FERFLOW_MLFLOW_PORT`` (5000), ``FERFLOW_RAY_PORT`` (6379),
    ``FERFLOW_RAY_DASHBOARD_PORT`` (8265), and ``FERFLOW_ARTIFACTS`` (MLflow artifact root for the stack; local
    folder or ``s3://bucket/prefix``), ``FERFLOW_STORE`` (the artifact store every unit and stage reads and writes:
    a local folder, default ``$FERFLOW_HOME/store``, or ``s3://bucket/prefix``; ``FERFLOW_HOME`` on a node is then only
    a cache and server state). Local stack only: ``FERFLOW_RAY_AUTH_MODE`` (``token`` default: the Ray head
    requires a token kept in the home; ``disabled``: no auth) and ``FERFLOW_RAY_NUM_CPUS`` (2).
    """

    home: Path
    tracking_uri: str
    ray_address: str | None
    ray_object_store_mb: int
    prefect_port: int
    mlflow_port: int
    ray_port: int
    ray_dashboard_port: int
    artifacts: str
    store: str = ""  # empty: the home's own store folder (see ``store_uri``)
    ray_auth_mode: Literal["token", "disabled"] = "token"
    ray_num_cpus: int = 2

    @model_validator(mode="after")
    def _default_store(self) -> Settings:
        if not self.store:
            object.__setattr__(self, "store", str(self.home / "store"))
        return self

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(os.environ.get("FERFLOW_HOME", Path.home() / ".ferflow")).expanduser().resolve()
        return cls(
            home=home,
            tracking_uri=os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}"),
            ray_address=os.environ.get("FERFLOW_RAY_ADDRESS") or None,
            ray_object_store_mb=int(os.environ.get("FERFLOW_RAY_OBJECT_STORE_MB", "1024")),
            prefect_port=int(os.environ.get("FERFLOW_PREFECT_PORT", "4200")),
            mlflow_port=int(os.environ.get("FERFLOW_MLFLOW_PORT", "5000")),
            ray_port=int(os.environ.get("FERFLOW_RAY_PORT", "6379")),
            ray_dashboard_port=int(os.environ.get("FERFLOW_RAY_DASHBOARD_PORT", "8265")),
            artifacts=os.environ.get("FERFLOW_ARTIFACTS", str(home / "artifacts")),
            store=os.environ.get("FERFLOW_STORE") or str(home / "store"),
            ray_auth_mode=os.environ.get("FERFLOW_RAY_AUTH_MODE", "token"),
            ray_num_cpus=int(os.environ.get("FERFLOW_RAY_NUM_CPUS", "2")),
        )
