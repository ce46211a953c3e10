"""Tables as people read them: rows of dicts drawn for a terminal (rich) or written as Markdown (Prefect artifacts)."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fer_core.calibrate.pipeline import CalibrationResult

#: Calibration figures shown side by side for validation and the held-out split (name in the metrics -> label).
CALIBRATION_ROWS: dict[str, str] = {
    "ece_15": "ECE (15 bins)",
    "nll": "NLL",
    "brier": "Brier",
    "accuracy": "accuracy",
    "macro_f1": "macro-F1",
}


def _cell(v: Any, digits: int) -> str:
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else f"{v:.{digits}f}"
    return "" if v is None else str(v)


def _columns(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None) -> list[str]:
    return list(columns) if columns is not None else list(dict.fromkeys(k for r in rows for k in r))


def format_table(
    rows: Sequence[Mapping[str, Any]], title: str | None = None, columns: Sequence[str] | None = None, digits: int = 3
) -> str:
    """Rows drawn as a boxed text table (for a terminal or a log), numbers right-aligned.

    Args:
        rows: one mapping per row; columns are the union of their keys in first-seen order.
        title: a caption above the table.
        columns: the columns to show, in order (default: all).
        digits: decimals of floats (NaN shows as ``n/a``).

    Returns:
        The table as plain text (no colour codes), ending without a newline; ``"(no rows)"`` for no rows.
    """
    from rich.console import Console
    from rich.table import Table

    cols = _columns(rows, columns)
    if not rows or not cols:
        return f"{title}: (no rows)" if title else "(no rows)"
    table = Table(title=title, title_justify="left")
    places = {}
    for c in cols:
        values = [r.get(c) for r in rows if r.get(c) is not None]
        numeric = all(isinstance(v, int | float) for v in values)
        # Counts that went through a float column (support 30.0) read as counts.
        places[c] = 0 if numeric and all(float(v).is_integer() for v in values) else digits
        table.add_column(str(c), justify="right" if numeric else "left")
    for r in rows:
        table.add_row(*(_cell(r.get(c), places[c]) for c in cols))
    console = Console(file=io.StringIO(), width=max(80, 14 * len(cols)), record=True, color_system=None)
    console.print(table)
    return "\n".join(line.rstrip() for line in console.export_text().rstrip().splitlines())


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None, digits: int = 4) -> str:
    """Rows as a Markdown table (``_no rows_`` when empty)."""
    cols = _columns(rows, columns)
    if not rows or not cols:
        return "_no rows_"
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_cell(r.get(c), digits) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def calibration_markdown(student: str, res: CalibrationResult, heldout_split: str) -> str:
    """What a calibration did, for a person: the temperature (and whether the fit was rejected), then validation and
    held-out figures before and after, then any other warning.

    Args:
        student: the student's name.
        res: :func:`fer_core.calibrate.pipeline.calibrate`'s result.
        heldout_split: the split ``res.spec.metrics`` were measured on (``test``, or ``val`` without a test split).
    """
    val = res.val_metrics
    held = res.spec.metrics
    if res.fell_back:
        head = (f"**T = 1 (no temperature scaling).** The NLL fit on validation gave T = {res.fitted_temperature:.3f}, "
                "but it made validation ECE worse, so it is not used.")  # fmt: skip
    else:
        head = f"T = {res.spec.temperature:.3f}, fitted on validation by NLL; it lowers validation ECE."
    rows = [
        {"metric": label,
         "validation, raw": val.get("val_before", {}).get(k, math.nan),
         "validation, calibrated": val.get("val_after", {}).get(k, math.nan),
         f"{heldout_split}, raw": held.before.get(k, math.nan),
         f"{heldout_split}, calibrated": held.after.get(k, math.nan)}
        for k, label in CALIBRATION_ROWS.items()
    ]  # fmt: skip
    others = [w for w in res.warnings if "falls back to 1" not in w]
    tail = "\n\nWarnings:\n" + "\n".join(f"- {w}" for w in others) if others else ""
    return f"# Calibration of {student}\n\n{head}\n\n{markdown_table(rows)}{tail}"


def ensemble_grid_rows(
    agg: Any, teacher_names: Sequence[str], chosen: tuple[Sequence[float], float], top: int = 20
) -> tuple[list[dict[str, Any]], str]:
    """The ensemble sweep's best configurations as rows named by teacher, and a note on the seed spread.

    Args:
        agg: the aggregate over seeds (columns ``w_<i>``, ``temperature``, the metrics, ``macro_f1_std``, ``n_seeds``).
        teacher_names: teacher ``i``'s name for column ``w_<i>``.
        chosen: the selected ``(weights, temperature)``, marked in the ``chosen`` column.
        top: rows kept (best macro-F1 first).

    Returns:
        ``(rows, note)``; the macro-F1 spread column is dropped when there is one teacher seed (no spread to show),
        and the note says so.
    """
    weights, temperature = chosen
    n_seeds = int(agg["n_seeds"].max()) if len(agg) else 0
    rows = []
    for _, r in agg.head(top).iterrows():
        w = [float(r[f"w_{i}"]) for i in range(len(teacher_names))]
        row: dict[str, Any] = {f"weight {n}": round(x, 3) for n, x in zip(teacher_names, w, strict=True)}
        row["T"] = float(r["temperature"])
        row.update({k: round(float(r[k]), 4) for k in ("macro_f1", "accuracy", "minority_f1", "ece", "nll")})
        if n_seeds >= 2:
            row["macro_f1 std over seeds"] = round(float(r["macro_f1_std"]), 4)
        row["chosen"] = "yes" if np.allclose(w, weights) and math.isclose(row["T"], temperature) else ""
        rows.append(row)
    note = (f"mean and std over {n_seeds} teacher seeds" if n_seeds >= 2
            else "one teacher seed, so no spread across seeds is shown")  # fmt: skip
    return rows, note
