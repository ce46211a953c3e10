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


def _table(rows: Mapping[str, Any]) -> str:
    if not rows:
        return "_none recorded_\n"
    lines = ["| key | value |", "|---|---|"]
    for k, v in rows.items():
        lines.append(f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |")
    return "\n".join(lines) + "\n"


def render_model_card(
    name: str,
    data: Mapping[str, Any],
    metrics: Mapping[str, Any],
    calibration: CalibrationSpec | Mapping[str, Any],
    spec: PreprocessSpec,
    intended_use: str = "Real-time facial expression recognition demos and research on a CPU.",
    limits: Sequence[str] = DEFAULT_LIMITS,
    lineage: Mapping[str, Any] | None = None,
) -> str:
    """Render the bundle's ``model_card.md``.

    Args:
        name: model name (e.g. ``fer-student``).
        data: dataset facts (index SHA-256, counts per class and split, sources).
        metrics: test metrics (accuracy, macro-F1, minority-F1, ECE, ...).
        calibration: the calibration spec or its dict.
        spec: the preprocessing spec.
        intended_use: one paragraph.
        limits: known limitations, one bullet each.
        lineage: teachers, distillation method, MLflow run ids, code version.

    Returns:
        Markdown text.
    """
    cal = calibration if isinstance(calibration, CalibrationSpec) else CalibrationSpec.model_validate(calibration)
    per_class = "per-class T" if cal.per_class_temperature is not None else f"global T = {cal.temperature:.4f}"
    parts = [
        f"# Model card: {name}\n",
        "## Intended use\n",
        intended_use.strip() + "\n",
        "## Limits\n",
        "\n".join(f"- {x}" for x in limits) + "\n",
        "## Data\n",
        _table(dict(data)),
        "## Metrics\n",
        _table(dict(metrics)),
        "## Calibration\n",
        f"Classes (output order): {', '.join(cal.classes)}. Temperature scaling: {per_class}. "
        f"Abstention thresholds: {'per class' if cal.thresholds is not None else 'none'}.\n",
        _table(dict(cal.metrics or {})),
        "## Preprocessing\n",
        f"Input `{spec.input_name}` [batch, {spec.channels}, {spec.size[0]}, {spec.size[1]}] ({spec.color}); "
        f"CLAHE: {spec.clahe.model_dump() if spec.clahe else 'off'}; crop margin {spec.crop_margin}. "
        "Order: crop → colour → CLAHE → resize → scale → standardise (see preprocess.json).\n",
    ]
    if lineage:
        parts += ["## Lineage\n", _table(dict(lineage))]
    return "\n".join(parts)
