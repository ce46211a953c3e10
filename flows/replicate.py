"""``replicate`` (nightly): N seeds of the current configuration, calibrated, compared with the champion's seeds."""

from __future__ import annotations

from typing import Any

import numpy as np
from prefect import flow
from prefect.artifacts import create_markdown_artifact

from flows.config import PipelineConfig, resolve
from flows.distill import distill_students
from flows.ensemble import tune_ensemble_flow
from tasks._mlflow import ferflow_run
from tasks.calibrate import calibrate_student
from tasks.distill import compare_seeds
from tasks.replicate import champion_seed_scores


@flow(name="replicate", log_prints=True)
def replicate_flow(
    config: PipelineConfig | None = None, config_path: str | None = None, n_seeds: int = 5
) -> dict[str, Any]:
    """Retrain and calibrate ``n_seeds`` students of the configured recipe; statistics against the champion."""
    cfg = resolve(config, config_path)
    up = tune_ensemble_flow(cfg)
    d = up["data"]
    seeds = list(range(1000, 1000 + n_seeds))
    runs = distill_students(cfg, up, seeds)
    cal = [calibrate_student(r, cfg.calibrate, d["index_path"], d["index_sha256"]) for r in runs]
    ours = np.array([c["after"]["macro_f1"] for c in cal])
    champ = champion_seed_scores(cfg.package.model_name)
    lines = [
        f"# Nightly replication ({n_seeds} seeds)",
        "",
        f"Candidate test macro-F1: {ours.mean():.4f} ± {ours.std(ddof=1) if len(ours) > 1 else 0:.4f}",
    ]
    stats: dict[str, Any] = {}
    if champ is not None and len(champ) >= 2:
        n = min(len(champ), len(ours))
        stats = compare_seeds(ours[:n], champ[:n], "candidate", "champion")
        lines.append(stats["verdict"])
    else:
        lines.append("No champion with >= 2 seed runs in the registry yet: nothing to compare against.")
    md = "\n\n".join(lines)
    create_markdown_artifact(key="replication-report", markdown=md)
    with ferflow_run("replicate", dataset_sha256=d["index_sha256"], run_name="replicate") as (_, sink):
        sink.log_text(md, "replication_report.md")
        sink.log_metrics({"macro_f1_mean": float(ours.mean())})
    print(md)
    return {"seeds": seeds, "macro_f1": ours.tolist(), "stats": stats, "report": md}
