"""What the demo prints at the end: where everything is, with the stage figures as tables."""

from __future__ import annotations

from typing import Any

from prefect import task

from fer_adapters.tables import format_table
from fer_spec.results import PipelineResult
from fer_spec.settings import Settings


@task(name="demo_summary")
def demo_summary(out: PipelineResult, live: dict[str, Any]) -> str:
    """The closing text of ``ferflow demo``."""
    s = Settings.from_env()
    cal = out.calibrated[0]
    ens = out.ensemble
    weights = ", ".join(f"{n} {w:.2f}" for n, w in zip(ens.teacher_names, ens.weights, strict=True))
    models = [{"model": t.name, "val macro-F1": t.val_metrics["macro_f1"], "ran on": t.worker_node}
              for t in out.teachers]  # fmt: skip
    models += [{"model": st.name, "val macro-F1": st.val_metrics["macro_f1"], "ran on": st.worker_node}
               for st in out.students.students]  # fmt: skip
    b = out.bundle
    lines = [
        "ferflow demo finished.",
        f"  index:        {out.index.index_path}",
        f"  balance:      {out.index.balance_png}",
        f"  ensemble:     {weights}, T={ens.temperature:.2f}, val macro-F1 {ens.metrics['macro_f1']:.3f}",
        "",
        *(f"  {line}" for line in format_table(models, title="models").splitlines()),
        "",
        f"  calibration:  T={cal.temperature:.3f}  ECE {cal.before['ece_15']:.4f} -> {cal.after['ece_15']:.4f}  "
        f"NLL {cal.before['nll']:.4f} -> {cal.after['nll']:.4f}",
        *(f"  {line}" for line in format_table(cal.abstention, title=f"abstention ({cal.test_split})").splitlines()),
        "",
        f"  bundle:       {b.bundle}  (fer-student v{b.version} @{b.alias or 'unchanged'})",
        f"  realtime:     {live['video']}  (per-frame CSV {live['csv']})",
        f"                Protocol-Lite: {', '.join(f'{k} {v:.3f}' for k, v in live['score'].items())}",
        f"  MLflow UI:    mlflow ui --backend-store-uri {s.tracking_uri}",
    ]
    return "\n".join(lines)
