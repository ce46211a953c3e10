"""MLflow tracking set-up: the tracking URI from the settings, the ``ferflow`` experiment, links to runs."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from fer_spec.settings import Settings

EXPERIMENT = "ferflow"


def configure_tracking(settings: Settings | None = None) -> str:
    """Point MLflow at the configured tracking URI (SQLite in the ferflow home by default) and return it."""
    settings = settings or Settings.from_env()
    uri = settings.tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    # MLflow draws a tqdm bar for every artifact download (several per stage): noise in logs and terminals.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        artifacts = settings.artifacts if uri.startswith("sqlite") else None
        with contextlib.suppress(mlflow.exceptions.MlflowException):  # lost a creation race
            mlflow.create_experiment(EXPERIMENT, artifact_location=_as_uri(artifacts) if artifacts else None)
    return uri


def run_link(tracking_uri: str, run_id: str) -> str:
    """A Markdown link to a run in the MLflow UI when the tracking URI is a server, else the run id in code."""
    if tracking_uri.startswith(("http://", "https://")):
        exp = MlflowClient(tracking_uri).get_run(run_id).info.experiment_id
        return f"[{run_id[:8]}]({tracking_uri.rstrip('/')}/#/experiments/{exp}/runs/{run_id})"
    return f"`{run_id[:8]}`"


def _as_uri(location: str) -> str:
    return location if "://" in location else Path(location).resolve().as_uri()
