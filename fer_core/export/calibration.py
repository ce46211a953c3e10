"""A small validated reader of a bundle's ``calibration.json`` (contract 3.4) and calibrated softmax (numpy only).

``fer_core.calibrate.calibration_file`` defines the writer's schema, but importing it pulls in torch (through
``fer_core.calibrate.temperature``); the runtime path must stay torch-free, so this reader re-validates the same fields
(tolerating extra ones, as the contract allows) with numpy and pydantic only.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from fer_core.errors import BundleError


class CalibrationSpec(BaseModel):
    """The fields of ``calibration.json`` the runtime needs; further fields (e.g. ``metrics``) are kept as-is."""

    model_config = ConfigDict(extra="allow", frozen=True)

    classes: tuple[str, ...]
    temperature: float
    per_class_temperature: tuple[float, ...] | None = None
    thresholds: tuple[float, ...] | None = None
    metrics: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> CalibrationSpec:
        k = len(self.classes)
        if k < 2 or len(set(self.classes)) != k:
            raise ValueError(f"classes must hold >= 2 distinct names, got {list(self.classes)}")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature must be a positive finite number, got {self.temperature}")
        if self.per_class_temperature is not None and (
            len(self.per_class_temperature) != k
            or not all(math.isfinite(t) and t > 0 for t in self.per_class_temperature)
        ):
            raise ValueError(f"per_class_temperature needs {k} positive values, got {self.per_class_temperature}")
        if self.thresholds is not None and (
            len(self.thresholds) != k or not all(0.0 <= t <= 1.0 for t in self.thresholds)
        ):
            raise ValueError(f"thresholds need {k} values in [0, 1], got {self.thresholds}")
        return self

    def temperatures(self, per_class: bool = False) -> np.ndarray:
        """Per-class divisor ``[K]``: the per-class temperatures when ``per_class``, else the global T repeated.

        Raises:
            BundleError: ``per_class`` asked for but ``per_class_temperature`` is null.
        """
        if not per_class:
            return np.full(len(self.classes), self.temperature, dtype=np.float32)
        if self.per_class_temperature is None:
            raise BundleError("per-class temperature asked for but calibration.json has per_class_temperature null")
        return np.asarray(self.per_class_temperature, dtype=np.float32)


def read_calibration(source: str | os.PathLike[str] | dict[str, Any]) -> CalibrationSpec:
    """Read and validate a calibration file (or an already-loaded dict).

    Raises:
        BundleError: missing file, invalid JSON, or a field out of range (the message names the file and field).
    """
    where = "calibration dict"
    if not isinstance(source, dict):
        where = str(source)
        p = Path(source)
        if not p.is_file():
            raise BundleError(f"{p}: calibration file is missing; run the calibrate stage to produce it")
        try:
            source = json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise BundleError(f"{p}: not valid JSON ({e})") from e
    try:
        return CalibrationSpec.model_validate(source)
    except ValidationError as e:
        raise BundleError(f"{where}: invalid calibration (contract 3.4):\n{e}") from e


def calibrated_softmax(logits: np.ndarray, temperatures: np.ndarray) -> np.ndarray:
    """``softmax(log_softmax(logits) / T)`` row-wise (= ``softmax(logits / T)`` for one global T).

    ``logits`` ``[B, K]``, ``temperatures`` ``[K]`` → probabilities ``[B, K]``. Dividing log-probabilities keeps
    per-class temperatures shift-invariant (see ``fer_core.calibrate.temperature``).
    """
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    z = (z - np.log(np.exp(z).sum(axis=-1, keepdims=True))) / np.asarray(temperatures, dtype=np.float64)
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
