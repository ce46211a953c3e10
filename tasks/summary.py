"""The pipeline run's summary artifact: each stage's outcome with links to its MLflow runs and the registry."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact

from fer_adapters.tracking import configure_tracking, run_link
from fer_spec.results import PipelineResult


def summary_markdown(res: PipelineResult, tracking_uri: str) -> str:
    """A Markdown table, one row per stage: what it produced and where to look."""

    def link(run_id: str) -> str:
        return run_link(tracking_uri, run_id)

    t_rows = ", ".join(f"{t.name} {t.val_metrics['macro_f1']:.3f} ({link(t.mlflow_run_id)})" for t in res.teachers)
    s_rows = ", ".join(
        f"{s.name} {s.val_metrics['macro_f1']:.3f} ({link(s.mlflow_run_id)})" for s in res.students.students
    )
    weights = ", ".join(f"{n} {w:.2f}" for n, w in zip(res.ensemble.teacher_names, res.ensemble.weights, strict=True))
    cal = ", ".join(
        f"{c.student.name} T={c.temperature:.2f} ECE {c.before['ece_15']:.4f}→{c.after['ece_15']:.4f}"
        for c in res.calibrated
    )
    b = res.bundle
    rows = [
        ("ingest", f"index `{res.index.index_sha256[:12]}`, {res.index.manifest.get('rows', '?')} rows"),
        ("teachers", f"{len(res.teachers)} units; val macro-F1: {t_rows}"),
        ("ensemble", f"{weights}, T={res.ensemble.temperature:g}, val macro-F1 {res.ensemble.metrics['macro_f1']:.3f} "
                     f"({link(res.ensemble.mlflow_run_id)})"),
        ("students", f"{len(res.students.students)} units; val macro-F1: {s_rows}"
                     + (f"; sweep {link(res.students.sweep.mlflow_run_id)}" if res.students.sweep else "")
                     + (f"; {len(res.students.nested)} Nested Learning units" if res.students.nested else "")),
        ("calibrate", cal),
        ("package", f"{b.details.get('model_name', 'fer-student')} v{b.version} "
                    + (f"@{b.alias} " if b.alias else f"not promoted ({b.details.get('gates', 'gates failed')}) ")
                    + f"({'registered now' if b.registered else 'already registered'}), source run "
                    f"{link(b.candidate_run)}, bundle `{b.bundle}`"),
    ]  # fmt: skip
    lines = [f"# Pipeline `{res.profile}`", "", "| stage | outcome |", "|---|---|"]
    lines += [f"| {stage} | {text} |" for stage, text in rows]
    return "\n".join(lines)


@task(name="pipeline_summary", task_run_name="summary")
def publish_summary(res: PipelineResult) -> str:
    """Create the pipeline run's summary artifact and return its Markdown."""
    md = summary_markdown(res, configure_tracking())
    create_markdown_artifact(
        key="pipeline-summary", markdown=md, description=f"Stages of pipeline {res.profile}: outcomes and links"
    )
    return md
