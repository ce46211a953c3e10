"""The nightly replication: the champion's per-seed scores from MLflow and the comparison report."""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
from mlflow.tracking import MlflowClient
from prefect import task
from prefect.artifacts import create_markdown_artifact

from fer_adapters.runs import ferflow_run
from fer_adapters.tracking import EXPERIMENT, configure_tracking
from fer_spec.results import CalibratedStudent, IndexRef, StageResult
from tasks.distill import compare_seeds


def champion_seed_scores(model_name: str) -> np.ndarray | None:
    """Calibrated test macro-F1 of every seed run sharing the champion's configuration hash, or None."""
    configure_tracking()
    client = MlflowClient()
    try:
        version = client.get_model_version_by_alias(model_name, "champion")
    except mlflow.exceptions.MlflowException:
        return None
    source = client.get_run(version.tags["ferflow.source_run"])
    loss = source.data.tags.get("ferflow.loss", "")
    runs = mlflow.search_runs(
        experiment_names=[EXPERIMENT],
        filter_string=f"tags.`ferflow.stage` = 'distill' and tags.`ferflow.loss` = '{loss}'",
        output_format="pandas",
    )
    # The seed is part of each run's config hash, so the recipe (loss tag) identifies the champion's seed family.
    col = "metrics.after/macro_f1"
    return None if runs.empty or col not in runs else runs[col].dropna().to_numpy()


class ReplicationResult(StageResult):
    """The nightly replication: the seeds, each seed's calibrated macro-F1, the comparison and the report."""

    seeds: list[int]
    macro_f1: list[float]
    stats: dict[str, Any]
    report: str


@task(name="replication_report", task_run_name="replication report")
def replication_report(
    model_name: str, seeds: list[int], calibrated: list[CalibratedStudent], index: IndexRef
) -> ReplicationResult:
    """Mean ± std of the seeds' calibrated macro-F1, paired statistics against the champion's seeds when it has two
    or more, as a Prefect artifact and an MLflow ``replicate`` run."""
    ours = np.array([c.after["macro_f1"] for c in calibrated])
    champ = champion_seed_scores(model_name)
    lines = [
        f"# Nightly replication ({len(seeds)} seeds: {', '.join(map(str, seeds))})",
        "",
        f"Candidate macro-F1 (calibrated): {ours.mean():.4f} ± {ours.std(ddof=1) if len(ours) > 1 else 0:.4f}",
    ]
    stats: dict[str, Any] = {}
    if champ is not None and len(champ) >= 2:
        n = min(len(champ), len(ours))
        stats = compare_seeds(ours[:n], champ[:n], "candidate", "champion")
        lines.append(stats["verdict"])
    else:
        lines.append("No champion with >= 2 seed runs in the registry yet: nothing to compare against.")
    md = "\n\n".join(lines)
    create_markdown_artifact(key="replication-report", markdown=md, description="Nightly seeds vs the champion")
    with ferflow_run("replicate", dataset_sha256=index.index_sha256, run_name="replicate") as (_, sink):
        sink.log_text(md, "replication_report.md")
        sink.log_metrics({"macro_f1_mean": float(ours.mean())})
    return ReplicationResult(seeds=seeds, macro_f1=ours.tolist(), stats=stats, report=md)
