"""One-call calibration: fit T (and T_c) on validation logits, thresholds, test metrics, plots, calibration.json.

A global fit that makes validation ECE worse than the raw logits is not used: the temperature falls back to 1 with a
warning that says so (per-class temperatures are then fitted around 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import Field

from fer_core.calibrate import metrics as pm
from fer_core.calibrate import plots
from fer_core.calibrate.calibration_file import CalibrationSpec, read_calibration_json, write_calibration_json
from fer_core.calibrate.temperature import (
    PerClassTemperatureFit,
    TemperatureFit,
    apply_temperature,
    check_logits,
    fit_per_class_temperature,
    fit_temperature,
)
from fer_core.calibrate.thresholds import ThresholdConfig, ThresholdResult, abstention_table, aurc, select_thresholds
from fer_core.config import FrozenModel
from fer_core.evaluate.metrics import classification_metrics, confusion
from fer_core.io import atomic_write_text
from fer_core.sink import MetricsSink, NullSink
from fer_core.taxonomy import FER_CLASSES, MINORITY_CLASSES


class CalibrationConfig(FrozenModel):
    """What :func:`calibrate` fits and writes."""

    classes: tuple[str, ...] = FER_CLASSES
    minority: tuple[str, ...] = MINORITY_CLASSES
    n_bins: int = Field(15, ge=2, le=100)
    t_min: float = Field(0.05, gt=0.0)
    t_max: float = Field(20.0, gt=0.0)
    per_class: bool = True
    per_class_reg: float = Field(0.01, ge=0.0)
    thresholds: ThresholdConfig | None = ThresholdConfig()
    plots: bool = True


@dataclass(frozen=True)
class CalibrationResult:
    """Everything :func:`calibrate` produced; ``spec`` is what ``calibration.json`` holds.

    ``val_metrics`` holds ``val_before`` / ``val_after`` (validation at T = 1 and at the written T);
    ``fitted_temperature`` is the NLL optimum, which ``fell_back`` says was discarded for T = 1.
    """

    spec: CalibrationSpec
    calibration_path: Path
    calibration_sha256: str
    temperature_fit: TemperatureFit
    per_class_fit: PerClassTemperatureFit | None
    threshold_fit: ThresholdResult | None
    test_abstention: pd.DataFrame | None
    plots: dict[str, Path] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    val_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    fitted_temperature: float = 1.0
    fell_back: bool = False


def probability_metrics(
    probs: np.ndarray,
    y: np.ndarray,
    classes: Sequence[str] = FER_CLASSES,
    minority: Sequence[str] = MINORITY_CLASSES,
    n_bins: int = 15,
) -> dict[str, float]:
    """Classification and calibration metrics of ``probs [N, C]``, global and per class (flat dict)."""
    out = classification_metrics(y, probs.argmax(axis=1), classes, minority)
    cw_mean, cw = pm.classwise_ece(probs, y, n_bins)
    out.update({
        "ece_10": pm.ece(probs, y, 10), f"ece_{n_bins}": pm.ece(probs, y, n_bins),
        f"ece_adaptive_{n_bins}": pm.ece(probs, y, n_bins, "quantile"), f"mce_{n_bins}": pm.mce(probs, y, n_bins),
        f"classwise_ece_{n_bins}": cw_mean, "nll": pm.nll(probs, y), "brier": pm.brier(probs, y),
        "aurc": aurc(probs, y), "mean_confidence": float(probs.max(axis=1).mean()),
    })  # fmt: skip
    out.update({f"classwise_ece/{c}": float(v) for c, v in zip(classes, cw, strict=True)})
    return out


def _keep_if_better(
    zv: np.ndarray, yv: np.ndarray, tfit: TemperatureFit, cfg: CalibrationConfig
) -> tuple[TemperatureFit, dict[str, dict[str, float]]]:
    """Validation metrics at T = 1 and at the fitted T; a fit that raises validation ECE falls back to T = 1."""
    m = {"val_before": probability_metrics(apply_temperature(zv, 1.0), yv, cfg.classes, cfg.minority, cfg.n_bins)}
    m["val_after"] = probability_metrics(apply_temperature(zv, tfit.temperature), yv, cfg.classes, cfg.minority,
                                         cfg.n_bins)  # fmt: skip
    key = f"ece_{cfg.n_bins}"
    if m["val_after"][key] <= m["val_before"][key]:
        return tfit, m
    msg = (f"temperature scaling made validation ECE worse ({m['val_before'][key]:.4f} -> {m['val_after'][key]:.4f} "
           f"at T = {tfit.temperature:.3f}), so T falls back to 1 (raw logits)")  # fmt: skip
    m["val_after"] = m["val_before"]
    return replace(tfit, temperature=1.0, nll_after=tfit.nll_before, warnings=(*tfit.warnings, msg)), m


def _write_plots(out: Path, before: np.ndarray, after: np.ndarray, y: np.ndarray, cfg: CalibrationConfig, t: float):
    return {
        "reliability_before": plots.reliability_diagram(before, y, out / "reliability_before.png", cfg.n_bins,
                                                        "Before calibration"),
        "reliability_after": plots.reliability_diagram(after, y, out / "reliability_after.png", cfg.n_bins,
                                                       f"After, T = {t:.2f}"),
        "confidence_after": plots.confidence_histogram(after, out / "confidence_after.png"),
        "selective_after": plots.selective_plot(after, y, out / "selective_after.png"),
        "confusion": plots.confusion_plot(confusion(y, after.argmax(axis=1), len(cfg.classes)),
                                          out / "confusion.png", cfg.classes),
    }  # fmt: skip


def _write_outputs(out, cfg, tfit, pfit, thr, test_tab, m, arrays) -> tuple[Path, str, dict[str, Path]]:
    """Plots, abstention tables, then calibration.json last (its presence marks a complete stage)."""
    before, after, yt = arrays
    out.mkdir(parents=True, exist_ok=True)
    figs = _write_plots(out, before, after, yt, cfg, tfit.temperature) if cfg.plots else {}
    if test_tab is not None:
        atomic_write_text(out / "abstention_test.csv", test_tab.to_csv(index=False))
        atomic_write_text(out / "abstention_val.csv", thr.table.to_csv(index=False))
    path = out / "calibration.json"
    digest = write_calibration_json(path, cfg.classes, tfit.temperature, m["before"], m["after"],
                                    pfit.temperatures if pfit else None, thr.thresholds if thr else None,
                                    m.get("after_per_class"))  # fmt: skip
    return path, digest, figs


def calibrate(
    val_logits: np.ndarray,
    val_y: np.ndarray,
    test_logits: np.ndarray,
    test_y: np.ndarray,
    cfg: CalibrationConfig,
    out_dir: str | Path,
    sink: MetricsSink | None = None,
) -> CalibrationResult:
    """Fit calibration on validation logits, measure it on test, write plots and ``calibration.json``.

    Thresholds are chosen on validation probabilities calibrated with the global T (the runtime default) and
    reported on test in ``abstention_test.csv``. Every fit and check runs before the first file is written.

    Args:
        val_logits: ``[Nv, C]`` validation logits (aligned by sample id).
        val_y: ``[Nv]`` validation labels.
        test_logits: ``[Nt, C]`` test logits.
        test_y: ``[Nt]`` test labels.
        cfg: :class:`CalibrationConfig`.
        out_dir: output folder (created).
        sink: receives ``before/*``, ``after/*``, ``after_per_class/*`` (test), ``val_before/*`` and ``val_after/*``
            (validation: what selection and promotion read) metrics, the temperatures and the written files.

    Returns:
        :class:`CalibrationResult`.

    Raises:
        DataIntegrityError: bad logits or labels (see :func:`check_logits`).
    """
    sink = sink or NullSink()
    c = len(cfg.classes)
    zv, zt = check_logits(val_logits, val_y, c), check_logits(test_logits, test_y, c, where="test")
    yv, yt = np.asarray(val_y, dtype=np.int64), np.asarray(test_y, dtype=np.int64)
    fitted = fit_temperature(zv, yv, c, (cfg.t_min, cfg.t_max))
    tfit, val_m = _keep_if_better(zv, yv, fitted, cfg)
    pfit = (fit_per_class_temperature(zv, yv, tfit.temperature, cfg.classes, cfg.per_class_reg)
            if cfg.per_class else None)  # fmt: skip
    before, after = apply_temperature(zt, 1.0), apply_temperature(zt, tfit.temperature)
    m = {"before": probability_metrics(before, yt, cfg.classes, cfg.minority, cfg.n_bins),
         "after": probability_metrics(after, yt, cfg.classes, cfg.minority, cfg.n_bins)}  # fmt: skip
    if pfit is not None:
        m["after_per_class"] = probability_metrics(apply_temperature(zt, pfit.temperatures), yt, cfg.classes,
                                                   cfg.minority, cfg.n_bins)  # fmt: skip
    thr = (
        select_thresholds(apply_temperature(zv, tfit.temperature), yv, cfg.thresholds, cfg.classes)
        if cfg.thresholds
        else None
    )
    test_tab = abstention_table(after, yt, thr.thresholds, cfg.classes, thr.notes) if thr else None

    path, digest, figs = _write_outputs(Path(out_dir), cfg, tfit, pfit, thr, test_tab, m, (before, after, yt))
    fell_back = tfit.temperature != fitted.temperature
    for stage, vals in {**m, **val_m}.items():
        sink.log_metrics({f"{stage}/{k}": v for k, v in vals.items()})
    # Metrics, not params: a re-calibration of the same run may change them, and MLflow params are write-once.
    sink.log_metrics({"calibration/temperature": tfit.temperature, "calibration/fitted_temperature": fitted.temperature,
                      "calibration/fell_back": float(fell_back)})  # fmt: skip
    for p in [path, *figs.values(), *([path.parent / "abstention_test.csv"] if test_tab is not None else [])]:
        sink.log_artifact(p, "calibration")
    warnings = tfit.warnings + (pfit.warnings if pfit else ())
    return CalibrationResult(read_calibration_json(path), path, digest, tfit, pfit, thr, test_tab, figs, warnings,
                             val_m, fitted.temperature, fell_back)  # fmt: skip
