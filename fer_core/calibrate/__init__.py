"""Calibration: temperature scaling, probability metrics, abstention thresholds, plots and calibration.json.

Names resolve lazily (PEP 562) so that importing one light submodule (``metrics``, ``calibration_file``) does not pull
in torch through ``temperature``: the ensemble sweep's Ray workers and the runtime path stay light.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "calibration_file": ("CalibrationMetrics", "CalibrationSpec", "apply_calibration", "read_calibration_json",
                         "write_calibration_json"),
    "metrics": ("brier", "classwise_ece", "ece", "mce", "nll", "reliability_bins"),
    "pipeline": ("CalibrationConfig", "CalibrationResult", "calibrate", "probability_metrics"),
    "temperature": ("PerClassTemperatureFit", "TemperatureFit", "apply_temperature", "fit_per_class_temperature",
                    "fit_temperature"),
    "thresholds": ("ABSTAIN", "ThresholdConfig", "ThresholdResult", "abstention_table", "apply_thresholds", "aurc",
                   "select_thresholds", "selective_curve"),
}  # fmt: skip
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'fer_core.calibrate' has no attribute {name!r}")
    return getattr(importlib.import_module(f"fer_core.calibrate.{_MODULE_OF[name]}"), name)
