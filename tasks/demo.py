"""What the demo prints at the end: where everything is, with the stage figures as tables."""

from __future__ import annotations

from typing import Any

from tasks.contracts import PipelineResult
from tasks.settings import Settings


def table(rows: list[dict[str, Any]], floats: str = "{:.3f}") -> list[str]:
    """Rows of dicts as aligned text columns (header, rule, rows); floats formatted with ``floats``."""
    if not rows:
        return ["(none)"]
    cols = list(rows[0])
    cells = [[floats.format(r[c]) if isinstance(r[c], float) else str(r[c]) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*cols), fmt.format(*("-" * w for w in widths)), *(fmt.format(*row) for row in cells)]


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
        *(f"  {line}" for line in table(models)),
        "",
        f"  calibration:  T={cal.temperature:.3f}  ECE {cal.before['ece_15']:.4f} -> {cal.after['ece_15']:.4f}  "
        f"NLL {cal.before['nll']:.4f} -> {cal.after['nll']:.4f}",
        f"  abstention ({cal.test_split}):",
        *(f"    {line}" for line in table(cal.abstention)),
        "",
        f"  bundle:       {b.bundle}  (fer-student v{b.version} @{b.alias or 'unchanged'})",
        f"  realtime:     {live['video']}  (per-frame CSV {live['csv']})",
        f"                Protocol-Lite: {', '.join(f'{k} {v:.3f}' for k, v in live['score'].items())}",
        f"  MLflow UI:    mlflow ui --backend-store-uri {s.tracking_uri}",
    ]
    return "\n".join(lines)
