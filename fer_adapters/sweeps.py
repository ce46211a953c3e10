"""Ray Tune glue: one place that builds Tuner/RunConfig the way every ferflow sweep wants them."""

from __future__ import annotations

import base64
import logging
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
from ray import tune

from fer_adapters.ray_cluster import ensure_ray
from fer_adapters.store import Store
from fer_core.errors import FerError


class _NoMissingResultFiles(logging.Filter):
    """Drops Tune's "Failed to fetch metrics ... result.json and progress.csv were not found" (files ferflow turns
    off); any other record of that logger passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not (msg.startswith("Failed to fetch metrics") and "progress.csv were not found" in msg)


def run_sweep(
    trainable: Callable[[dict[str, Any]], None],
    param_space: dict[str, Any],
    *,
    name: str,
    metric: str,
    mode: str = "max",
    resources: dict[str, float] | None = None,
    max_failures: int = 2,
    scheduler: Any = None,
    num_samples: int = 1,
    max_concurrent: int = 0,
) -> list[dict[str, Any]]:
    """Run a Tune sweep and return one dict per trial: its config and its last reported metrics.

    Args:
        trainable: function trainable reporting with ``tune.report``.
        param_space: Tune search space (``tune.grid_search`` etc.).
        name: experiment name (folder under ``ray_results/`` in the artifact store).
        metric: the metric trials are ranked by.
        mode: ``"max"`` or ``"min"``.
        resources: per-trial resources, e.g. ``{"cpu": 1}`` here or ``{"gpu": 1}`` on GPU workers.
        max_failures: retries of a crashed trial before the sweep records it as failed.
        scheduler: optional Tune scheduler (ASHA for expensive trials).
        num_samples: repetitions of the search space.
        max_concurrent: cap on concurrent trials (0 = as resources allow).

    Raises:
        FerError: a trial refused its input (the trial's own error, raised once: a refusal is never retried).
        RuntimeError: a trial still crashed after its retries (names the trial; chained to its error).
    """
    # Results go to MLflow and the returned rows: no per-trial CSV/JSON/TensorBoard loggers (they also warn on every
    # list-valued metric) and no experiment table on the terminal.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # Without those files Tune's result grid warns that it cannot read them back; ferflow reads r.metrics instead.
    analysis_log = logging.getLogger("ray.tune.analysis.experiment_analysis")
    if not any(isinstance(f, _NoMissingResultFiles) for f in analysis_log.filters):
        analysis_log.addFilter(_NoMissingResultFiles())
    ensure_ray()
    # Tune's experiment state and trial checkpoints live in the artifact store, so a trial restored on another node
    # finds them (a local storage_path works on one node only).
    fs, root = Store.from_env().filesystem()
    storage = f"{root}/ray_results"
    if isinstance(fs, pafs.LocalFileSystem):
        Path(storage).mkdir(parents=True, exist_ok=True)
    tuner = tune.Tuner(
        tune.with_resources(_refusals_end_the_trial(trainable, metric, mode), resources or {"cpu": 1}),
        param_space=param_space,
        tune_config=tune.TuneConfig(
            metric=metric,
            mode=mode,
            scheduler=scheduler,
            num_samples=num_samples,
            max_concurrent_trials=max_concurrent or None,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage,
            storage_filesystem=fs,
            failure_config=tune.FailureConfig(max_failures=max_failures),
            verbose=0,
        ),
    )
    grid = tuner.fit()
    for r in grid:
        if (r.metrics or {}).get(REFUSAL_KEY):
            raise pickle.loads(base64.b64decode(r.metrics[REFUSAL_KEY]))  # the trial's FerError, as it was raised
    failed = [r for r in grid if r.error is not None]
    if failed:
        raise RuntimeError(
            f"{len(failed)} of {len(grid)} trials of sweep {name!r} failed after {max_failures} retries; "
            f"first: config={failed[0].config} error={failed[0].error!r}"
        ) from failed[0].error
    return [{"config": r.config, "metrics": dict(r.metrics or {})} for r in grid]


REFUSAL_KEY = "ferflow_refusal"


def _refusals_end_the_trial(trainable: Callable[[dict[str, Any]], None], metric: str, mode: str) -> Callable:
    """The trainable, except that a ``FerError`` ends its trial normally with the error as its last result.

    Tune retries every failed trial ``max_failures`` times; a refusal of bad input fails the same way each time, so
    it is reported once instead (with the worst value of ``metric``, which Tune requires) and re-raised by
    :func:`run_sweep`.
    """

    def trial(config: dict[str, Any]) -> None:
        try:
            trainable(config)
        except FerError as e:
            worst = float("inf") if mode == "min" else float("-inf")
            tune.report({metric: worst, REFUSAL_KEY: base64.b64encode(pickle.dumps(e)).decode("ascii")})

    trial.__name__ = getattr(trainable, "__name__", "trial")
    return trial
