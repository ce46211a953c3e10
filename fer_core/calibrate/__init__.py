"""Calibration: temperature scaling, probability metrics, abstention thresholds, plots and calibration.json."""

from fer_core.calibrate.calibration_file import (
    CalibrationMetrics,
    CalibrationSpec,
    apply_calibration,
    read_calibration_json,
    write_calibration_json,
)
from fer_core.calibrate.metrics import brier, classwise_ece, ece, mce, nll, reliability_bins
from fer_core.calibrate.pipeline import CalibrationConfig, CalibrationResult, calibrate, probability_metrics
from fer_core.calibrate.temperature import (
    PerClassTemperatureFit,
    TemperatureFit,
    apply_temperature,
    fit_per_class_temperature,
    fit_temperature,
)
from fer_core.calibrate.thresholds import (
    ABSTAIN,
    ThresholdConfig,
    ThresholdResult,
    abstention_table,
    apply_thresholds,
    aurc,
    select_thresholds,
    selective_curve,
)

__all__ = [
    "ABSTAIN",
    "CalibrationConfig",
    "CalibrationMetrics",
    "CalibrationResult",
    "CalibrationSpec",
    "PerClassTemperatureFit",
    "TemperatureFit",
    "ThresholdConfig",
    "ThresholdResult",
    "abstention_table",
    "apply_calibration",
    "apply_temperature",
    "apply_thresholds",
    "aurc",
    "brier",
    "calibrate",
    "classwise_ece",
    "ece",
    "fit_per_class_temperature",
    "fit_temperature",
    "mce",
    "nll",
    "probability_metrics",
    "read_calibration_json",
    "reliability_bins",
    "select_thresholds",
    "selective_curve",
    "write_calibration_json",
]
