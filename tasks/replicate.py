"""The nightly replication: the new seeds' calibrated scores against the packaged family's, and the report."""

from __future__ import annotations

from typing import Any

import numpy as np
from prefect import task
from prefect.artifacts import create_markdown_artifact

from fer_adapters.runs import ferflow_run
from fer_spec.results import CalibratedStudent, IndexRef, StageResult
from tasks.distill import compare_seeds


class ReplicationResult(StageResult):
    """The nightly replication: the seeds, each seed's calibrated macro-F1, the comparison and the report."""

    seeds: list[int]
    macro_f1: list[float]
    stats: dict[str, Any]
    report: str


@task(name="replication_report", task_run_name="replication report")
def replication_report(
    seeds: list[int], calibrated: list[CalibratedStudent], family: list[CalibratedStudent], index: IndexRef
) -> ReplicationResult:
    """Mean ± std of the seeds' calibrated macro-F1, paired statistics against the packaged family's seeds (the
    champion's recipe, as typed results) when it has two or more, as a Prefect artifact and an MLflow
    ``replicate`` run."""
    ours = np.array([c.after["macro_f1"] for c in calibrated])
    champ = np.array([c.after["macro_f1"] for c in family]) if family else None
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
        lines.append("The packaged family has fewer than 2 calibrated seeds: nothing to compare against.")
    md = "\n\n".join(lines)
    create_markdown_artifact(key="replication-report", markdown=md, description="Nightly seeds vs the champion")
    with ferflow_run("replicate", dataset_sha256=index.index_sha256, run_name="replicate") as (_, sink):
        sink.log_text(md, "replication_report.md")
        sink.log_metrics({"macro_f1_mean": float(ours.mean())})
    return ReplicationResult(seeds=seeds, macro_f1=ours.tolist(), stats=stats, report=md)
