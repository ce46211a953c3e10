"""The callback interface through which the library reports progress and metrics (tasks supply the MLflow one)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol, runtime_checkable

log = logging.getLogger("fer_core")


@runtime_checkable
class MetricsSink(Protocol):
    """Receiver of metrics, parameters and files produced by library code."""

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None: ...

    def log_params(self, params: dict[str, object]) -> None: ...

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None: ...

    def log_text(self, text: str, name: str) -> None: ...


class NullSink:
    """Discards everything except a debug log line; the default for library calls."""

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        log.debug("metrics step=%s %s", step, metrics)

    def log_params(self, params: dict[str, object]) -> None:
        log.debug("params %s", params)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        log.debug("artifact %s", path)

    def log_text(self, text: str, name: str) -> None:
        log.debug("text %s", name)


class ListSink(NullSink):
    """Keeps everything in memory (tests and summaries)."""

    def __init__(self) -> None:
        self.metrics: list[tuple[int | None, dict[str, float]]] = []
        self.params: dict[str, object] = {}
        self.artifacts: list[tuple[Path, str | None]] = []
        self.texts: dict[str, str] = {}

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.metrics.append((step, dict(metrics)))

    def log_params(self, params: dict[str, object]) -> None:
        self.params.update(params)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self.artifacts.append((Path(path), artifact_path))

    def log_text(self, text: str, name: str) -> None:
        self.texts[name] = text

    def series(self, key: str) -> list[float]:
        return [m[key] for _, m in self.metrics if key in m]
