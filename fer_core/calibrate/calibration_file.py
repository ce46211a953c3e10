"""``calibration.json`` (contract 3.4): classes, global and per-class temperature, thresholds, metrics."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydantic import ValidationError, model_validator

from fer_core.calibrate.temperature import apply_temperature, check_logits
from fer_core.config import FrozenModel
from fer_core.errors import ConfigError
from fer_core.io import atomic_write_json, read_json, sha256_file


class CalibrationMetrics(FrozenModel):
    """Metrics on the test split before and after calibration (flat ``name -> value`` maps)."""

    before: dict[str, float]
    after: dict[str, float]
    after_per_class: dict[str, float] | None = None


class CalibrationSpec(FrozenModel):
    """The validated content of ``calibration.json``."""

    classes: tuple[str, ...]
    temperature: float
    per_class_temperature: tuple[float, ...] | None = None
    thresholds: tuple[float, ...] | None = None
    metrics: CalibrationMetrics

    @model_validator(mode="after")
    def _consistent(self) -> CalibrationSpec:
        n = len(self.classes)
        if n == 0 or len(set(self.classes)) != n:
            raise ValueError(f"classes must be unique and non-empty, got {list(self.classes)}")
        temps = [self.temperature, *(self.per_class_temperature or ())]
        if not all(math.isfinite(t) and t > 0 for t in temps):
            raise ValueError(f"temperatures must be finite and > 0, got {temps}")
        for name, vec in (("per_class_temperature", self.per_class_temperature), ("thresholds", self.thresholds)):
            if vec is not None and len(vec) != n:
                raise ValueError(f"{name} has {len(vec)} entries for {n} classes")
        if self.thresholds is not None and not all(0.0 <= t <= 1.0 for t in self.thresholds):
            raise ValueError(f"thresholds must lie in [0, 1], got {list(self.thresholds)}")
        return self


def write_calibration_json(
    path: str | Path,
    classes: Sequence[str],
    temperature: float,
    metrics_before: dict[str, float],
    metrics_after: dict[str, float],
    per_class_temperature: Sequence[float] | None = None,
    thresholds: Sequence[float] | None = None,
    metrics_after_per_class: dict[str, float] | None = None,
) -> str:
    """Validate and write ``calibration.json`` atomically; returns its SHA-256.

    Raises:
        ConfigError: the content fails :class:`CalibrationSpec` validation (nothing is written).
    """
    try:
        spec = CalibrationSpec(
            classes=tuple(classes),
            temperature=float(temperature),
            per_class_temperature=None if per_class_temperature is None else tuple(map(float, per_class_temperature)),
            thresholds=None if thresholds is None else tuple(map(float, thresholds)),
            metrics=CalibrationMetrics(
                before=metrics_before, after=metrics_after, after_per_class=metrics_after_per_class
            ),
        )
    except ValidationError as e:
        raise ConfigError(f"invalid calibration for {path}:\n{e}") from e
    atomic_write_json(path, spec.model_dump(mode="json"))
    return sha256_file(path)


def read_calibration_json(path: str | Path) -> CalibrationSpec:
    """Read and validate ``calibration.json``.

    Raises:
        ConfigError: missing file or invalid content (the message names the file and the fields).
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"calibration file {p} does not exist; run the calibrate stage first")
    try:
        return CalibrationSpec.model_validate(read_json(p))
    except (ValidationError, ValueError) as e:
        raise ConfigError(f"invalid calibration file {p}:\n{e}") from e


def apply_calibration(logits: np.ndarray, spec: CalibrationSpec, per_class: bool = False) -> np.ndarray:
    """Calibrated probabilities ``[N, C]``: ``softmax(logits / T)``, or ``logits / T_c`` with ``per_class``.

    Raises:
        DataIntegrityError: logits not ``[N, len(spec.classes)]``, non-finite, or probabilities.
        ConfigError: ``per_class`` asked for but the spec has no per-class temperatures.
    """
    z = check_logits(logits, None, len(spec.classes), where="input")
    if per_class:
        if spec.per_class_temperature is None:
            raise ConfigError("per_class=True but calibration.json has per_class_temperature null; use per_class=False")
        return apply_temperature(z, spec.per_class_temperature)
    return apply_temperature(z, spec.temperature)
