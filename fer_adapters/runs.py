"""MLflow glue: tracking set-up, ferflow's run tags (DESIGN §3.5) and the MetricsSink that fer_core reports through."""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import subprocess
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from fer_adapters.liveness import mark_dead_runs, resumed_from_tags
from fer_adapters.placement import placement_tags, profile_tags
from fer_adapters.tracking import EXPERIMENT, configure_tracking
from fer_core.taxonomy import FER_CLASSES

_PACKAGES = ("torch", "timm", "numpy", "onnxruntime", "opencv-python", "prefect", "ray", "mlflow")


# Bookkeeping figures of every epoch that belong in the table, not in a chart of their own (epoch is the step).
TABLE_ONLY: frozenset[str] = frozenset({"epoch", "micro_batch", "train/data_frac"})


def is_per_class(key: str) -> bool:
    """Whether a metric key is one class's value (``val/f1/angry``, ``train_loss/class_3``): a table, not a chart."""
    last = key.rsplit("/", 1)[-1]
    return "/" in key and (last in FER_CLASSES or last.startswith("class_"))


class MlflowSink:
    """fer_core's MetricsSink writing to one MLflow run by id (thread-safe: no fluent active-run state).

    A run's metrics page must read at a glance: headline metrics are logged as stepped curves; per-class values
    (7 classes x several metrics), bookkeeping (:data:`TABLE_ONLY`) and, when ``charts`` is given, every metric not in
    it go to one table artifact (``table``, a CSV of step, metric, class, value) written by :meth:`flush`; ``final/*``
    copies of the last epoch are not logged (the last step of ``val/*`` is it).

    Args:
        run_id: the MLflow run.
        client: an MLflow client (default: a new one on the configured tracking URI).
        table: the artifact name of the per-class table.
        charts: the only metrics logged as charts (None: all but the table's).
    """

    def __init__(self, run_id: str, client: MlflowClient | None = None, table: str = "metrics_per_class.csv",
                 charts: frozenset[str] | None = None):  # fmt: skip
        self.run_id = run_id
        self.client = client or MlflowClient()
        self.table = table
        self.charts = charts
        self.per_class: list[tuple[int, str, str, float]] = []

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        ts = int(time.time() * 1000)
        batch = []
        for k, v in metrics.items():
            if v is None or k.startswith("final/"):
                continue
            if is_per_class(k):
                metric, cls = k.rsplit("/", 1)
                self.per_class.append((step or 0, metric, cls, float(v)))
            elif k in TABLE_ONLY or (self.charts is not None and k not in self.charts):
                self.per_class.append((step or 0, k, "", float(v)))
            else:
                batch.append(Metric(k, float(v), ts, step or 0))
        for i in range(0, len(batch), 900):  # MLflow caps a batch at 1000 metrics
            self.client.log_batch(self.run_id, metrics=batch[i : i + 900])

    def flush(self) -> None:
        """Write the per-class table (once everything of this sink is logged)."""
        if self.per_class:
            rows = ["step,metric,class,value", *(f"{s},{m},{c},{v:.6g}" for s, m, c, v in self.per_class)]
            self.client.log_text(self.run_id, "\n".join(rows) + "\n", self.table)

    def log_params(self, params: dict[str, object]) -> None:
        batch = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(batch), 90):
            self.client.log_batch(self.run_id, params=batch[i : i + 90])

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_text(self, text: str, name: str) -> None:
        self.client.log_text(self.run_id, text, name)


def code_version() -> str:
    """Git commit of the checkout (``+dirty`` when modified), or the package version outside a checkout."""
    root = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, timeout=5)
        if sha.returncode == 0:
            return sha.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except OSError:
        pass
    return metadata.version("ferflow")


def environment_params() -> dict[str, str]:
    """Package versions, hardware and code version, logged on every training run."""
    env = {"env.python": platform.python_version(), "env.machine": platform.machine(), "env.cpus": str(os.cpu_count())}
    for pkg in _PACKAGES:
        try:
            env[f"env.{pkg}"] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            env[f"env.{pkg}"] = "absent"
    try:
        import torch

        env["env.cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    except Exception as e:  # noqa: BLE001 - the environment report must never fail a run
        env["env.cuda"] = f"unknown ({type(e).__name__})"
    env["env.code_version"] = code_version()
    return env


@contextlib.contextmanager
def ferflow_run(
    stage: str,
    *,
    seed: int | None = None,
    dataset_sha256: str = "",
    config_hash: str = "",
    parent: str = "",
    run_name: str | None = None,
    extra_tags: dict[str, str] | None = None,
) -> Iterator[tuple[str, MlflowSink]]:
    """Start an MLflow run with ferflow's tags; yield ``(run_id, sink)``; end it FINISHED or FAILED."""
    configure_tracking()
    client = MlflowClient()
    exp = client.get_experiment_by_name(EXPERIMENT)
    tags = {
        "ferflow.stage": stage,
        "ferflow.seed": "" if seed is None else str(seed),
        "ferflow.dataset_sha256": dataset_sha256,
        "ferflow.config_hash": config_hash,
        "ferflow.parent": parent,
        "mlflow.runName": run_name or stage,
        "ferflow.host": socket.gethostname(),
        "ferflow.pid": str(os.getpid()),
        **placement_tags(),
        **profile_tags(),
        **(extra_tags or {}),
    }
    # A unit that died (worker or node lost) left its run RUNNING: mark it, and link this run to it when it resumes.
    mark_dead_runs(stage)
    if config_hash:
        tags.update(resumed_from_tags(config_hash, stage, tags={"mlflow.runName": tags["mlflow.runName"]}))
    run = client.create_run(exp.experiment_id, tags=tags)
    run_id = run.info.run_id
    start = time.time()
    sink = MlflowSink(run_id, client)
    try:
        yield run_id, sink
    except BaseException:
        sink.flush()
        client.set_terminated(run_id, "FAILED")
        raise
    sink.flush()
    client.log_metric(run_id, "wall_time_s", time.time() - start)
    client.set_terminated(run_id, "FINISHED")


def log_index_input(run_id: str, index: object, index_path: str, index_sha256: str) -> None:
    """Attach the dataset index to a run as an MLflow dataset input (digest = the index's SHA-256 prefix)."""
    import json

    import mlflow.data
    from mlflow.data.dataset_source_registry import get_dataset_source_from_json

    cols = [c for c in ("sample_id", "label", "split", "origin") if c in index.columns]  # type: ignore[attr-defined]
    # A typed source: a plain path matches two registered local sources and MLflow warns on every run.
    uri = index_path if "://" in index_path else Path(index_path).resolve().as_uri()
    scheme = uri.split("://", 1)[0]
    source = get_dataset_source_from_json(json.dumps({"uri": uri}), "local" if scheme == "file" else scheme)
    ds = mlflow.data.from_pandas(index[cols], source=source, name="fer-index", digest=index_sha256[:16])  # type: ignore[index]
    MlflowClient().log_inputs(run_id, datasets=[mlflow.entities.DatasetInput(ds._to_mlflow_entity())])


def log_model_checkpoint(run_id: str, checkpoint: str | Path, data: object, spec: object) -> str:
    """Log a checkpoint file and the model (MLflow pytorch flavour with an input/output signature) to a run.

    Returns:
        The logged model's URI.
    """
    import mlflow.pytorch
    import numpy as np
    import torch
    from mlflow.models import infer_signature

    from fer_core.models.checkpoint import load_checkpoint

    client = MlflowClient()
    client.log_artifact(run_id, str(checkpoint), "checkpoint")
    model, _ = load_checkpoint(checkpoint)
    model.eval()
    x, _ = data.get_batch(np.arange(min(4, len(data))))  # type: ignore[attr-defined]
    with torch.no_grad():
        y = model(x).numpy()
    signature = infer_signature(x.numpy(), y)
    with mlflow.start_run(run_id=run_id):
        info = mlflow.pytorch.log_model(  # pt2: a traced graph, loadable without unpickling code objects
            model,
            name="model",
            signature=signature,
            input_example=x.numpy(),
            serialization_format="pt2",
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
        )
    return info.model_uri


class TeeSink:
    """Forwards everything to a sink and also hands each metrics dict to a callback (Tune reporting)."""

    def __init__(self, sink: MlflowSink, on_metrics: object):
        self._sink = sink
        self._on_metrics = on_metrics

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self._sink.log_metrics(metrics, step)
        self._on_metrics(metrics, step)  # type: ignore[operator]

    def log_params(self, params: dict[str, object]) -> None:
        self._sink.log_params(params)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self._sink.log_artifact(path, artifact_path)

    def log_text(self, text: str, name: str) -> None:
        self._sink.log_text(text, name)
