"""Markdown model card of a student bundle: data, metrics, calibration, preprocessing, intended use and limits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fer_core.export.calibration import CalibrationSpec
from fer_core.preprocess import PreprocessSpec

DEFAULT_LIMITS: tuple[str, ...] = (
    "Trained on posed and web-collected faces; accuracy drops on profile views, occlusion, low light and "
    "spontaneous micro-expressions.",
    "Expression labels are not emotions: the model reports visible facial configuration, not inner state.",
    "Minority classes (disgust, fear, sad) have fewer training examples and lower F1; read their scores with care.",
    "Not for decisions about people (hiring, policing, health, education); research and demo use only.",
)
# calibration.json's before/after metrics shown in the card (the file keeps every metric).
CALIBRATION_ROWS: tuple[str, ...] = ("accuracy", "macro_f1", "ece_15", "nll", "brier")


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    if isinstance(v, Mapping):
        return ", ".join(f"{k}: {_cell(x)}" for k, x in v.items())
    return str(v)


def _table(rows: Mapping[str, Any]) -> str:
    if not rows:
        return "_none recorded_\n"
    lines = ["| key | value |", "|---|---|"]
    lines += [f"| {k} | {_cell(v)} |" for k, v in rows.items()]
    return "\n".join(lines) + "\n"


def _counts_table(counts: Mapping[str, Mapping[str, int]]) -> str:
    """Images per split (rows) and class (columns)."""
    classes = sorted({c for per in counts.values() for c in per})
    lines = ["| split | " + " | ".join(classes) + " | total |", "|---" * (len(classes) + 2) + "|"]
    for split, per in counts.items():
        lines.append(f"| {split} | " + " | ".join(str(per.get(c, 0)) for c in classes) + f" | {sum(per.values())} |")
    return "\n".join(lines) + "\n"


def _calibration_section(cal: CalibrationSpec, notes: Sequence[str]) -> list[str]:
    how = f"global T = {cal.temperature:.4f}"
    if cal.per_class_temperature is not None:
        how += " (per-class temperatures also provided: " + ", ".join(f"{t:.2f}" for t in cal.per_class_temperature)
        how += ")"
    parts = [
        f"Classes (output order): {', '.join(cal.classes)}. Temperature scaling: {how}. "
        f"Abstention thresholds: {'per class' if cal.thresholds is not None else 'none'}.\n",
        *(f"> **Note:** {n}\n" for n in notes),
    ]
    m = cal.metrics or {}
    before, after = m.get("before") or {}, m.get("after") or {}
    rows = [k for k in CALIBRATION_ROWS if k in before and k in after]
    if rows:
        parts.append("Held-out split, raw logits vs calibrated:\n")
        parts.append("\n".join(["| metric | before | after |", "|---|---|---|"]
                               + [f"| {k} | {before[k]:.4f} | {after[k]:.4f} |" for k in rows]) + "\n")  # fmt: skip
    return parts


def render_model_card(
    name: str,
    data: Mapping[str, Any],
    metrics: Mapping[str, Any],
    calibration: CalibrationSpec | Mapping[str, Any],
    spec: PreprocessSpec,
    intended_use: str = "Real-time facial expression recognition demos and research on a CPU.",
    limits: Sequence[str] = DEFAULT_LIMITS,
    lineage: Mapping[str, Any] | None = None,
    calibration_notes: Sequence[str] = (),
) -> str:
    """Render the bundle's ``model_card.md``.

    Args:
        name: model name (e.g. ``fer-student``).
        data: dataset facts (index SHA-256, sources, ...); a ``counts`` entry ``{split: {class: n}}`` becomes a table.
        metrics: headline metrics with readable names (held-out and validation figures, the promotion verdict).
        calibration: the calibration spec or its dict.
        spec: the preprocessing spec.
        intended_use: one paragraph.
        limits: known limitations, one bullet each.
        lineage: teachers, distillation method, MLflow run ids, code version.
        calibration_notes: warnings of the calibration stage (e.g. a fit that fell back to T = 1).

    Returns:
        Markdown text.
    """
    cal = calibration if isinstance(calibration, CalibrationSpec) else CalibrationSpec.model_validate(calibration)
    facts = {k: v for k, v in data.items() if k != "counts"}
    counts = data.get("counts")
    parts = [
        f"# Model card: {name}\n",
        "## Intended use\n",
        intended_use.strip() + "\n",
        "## Metrics\n",
        _table(dict(metrics)),
        "## Limits\n",
        "\n".join(f"- {x}" for x in limits) + "\n",
        "## Data\n",
        _table(facts),
        *([_counts_table(counts)] if isinstance(counts, Mapping) and counts else []),
        "## Calibration\n",
        *_calibration_section(cal, calibration_notes),
        "## Preprocessing\n",
        f"Input `{spec.input_name}` of shape (batch, {spec.channels}, {spec.size[0]}, {spec.size[1]}), {spec.color}; "
        f"CLAHE: {spec.clahe.model_dump() if spec.clahe else 'off'}; crop margin {spec.crop_margin}. "
        "Order: crop → colour → CLAHE → resize → scale → standardise (see preprocess.json).\n",
    ]
    if lineage:
        parts += ["## Lineage\n", _table(dict(lineage))]
    return "\n".join(parts)


def card_excerpt(card: str, max_chars: int = 4000) -> str:
    """The card cut at the last section (``## ``) boundary that fits ``max_chars`` (registry descriptions are short).

    Args:
        card: Markdown from :func:`render_model_card`.
        max_chars: the longest text returned.

    Returns:
        The whole card when it fits, else its leading sections and a line pointing at the full card.
    """
    if len(card) <= max_chars:
        return card
    tail = "\n_(shortened: the full card is the bundle's `model_card.md`)_\n"
    cut = card.rfind("\n## ", 0, max_chars - len(tail))
    return (card[:cut] if cut > 0 else card[: max_chars - len(tail)]) + tail
