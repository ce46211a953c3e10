"""Temperature scaling (Guo et al., 2017): fit T minimising validation NLL of softmax(z / T); per-class T_c too.

Temperatures divide log-probabilities, ``softmax(log_softmax(z) / T)``. For one global T that is exactly
``softmax(z / T)``; for per-class ``T_c`` it makes the map shift-invariant (adding a constant to a row of logits, which
leaves the model's prediction unchanged, leaves the calibrated probabilities unchanged too), which ``z / T_c`` is not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, logsumexp

from fer_core.errors import ConfigError, DataIntegrityError
from fer_core.taxonomy import FER_CLASSES

T_BOUNDS = (0.05, 20.0)


@dataclass(frozen=True)
class TemperatureFit:
    """Global temperature fit: ``temperature``, validation NLL before (T=1) and after, optimiser evaluations."""

    temperature: float
    nll_before: float
    nll_after: float
    n_evals: int
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class PerClassTemperatureFit:
    """Per-class temperatures ``[C]`` (logit ``z_c`` divided by ``T_c``) and the classes that fell back to global T."""

    temperatures: tuple[float, ...]
    global_temperature: float
    nll_after: float
    fallback_classes: tuple[str, ...]
    warnings: tuple[str, ...] = ()


def check_logits(logits: np.ndarray, y: np.ndarray | None, n_classes: int, where: str = "validation") -> np.ndarray:
    """Validate ``[N, C]`` logits (and labels ``[N]`` if given); return them as float64.

    Raises:
        DataIntegrityError: wrong shape, empty set, NaN/Inf (with counts), labels outside ``[0, C)``, or
            probabilities passed where logits are expected.
    """
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] != n_classes:
        raise DataIntegrityError(f"{where} logits must be [N, {n_classes}], got shape {z.shape}")
    if z.shape[0] == 0:
        raise DataIntegrityError(f"{where} set is empty: calibration needs labelled {where} logits")
    bad = ~np.isfinite(z)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise DataIntegrityError(
            f"{where} logits hold {int(bad.sum())} NaN/Inf values in {rows.size} rows (e.g. rows {rows[:5].tolist()})"
        )
    if ((z >= 0) & (z <= 1)).all() and np.allclose(z.sum(axis=1), 1.0, atol=1e-3):
        raise DataIntegrityError(
            f"{where} input looks like probabilities (every row in [0, 1] summing to 1); pass the raw logits "
            "(pre-softmax model outputs) instead"
        )
    if y is not None:
        t = np.asarray(y)
        if t.shape != (z.shape[0],):
            raise DataIntegrityError(f"{where} labels must be [{z.shape[0]}], got shape {t.shape}")
        out = np.flatnonzero((t < 0) | (t >= n_classes))
        if out.size:
            raise DataIntegrityError(
                f"{out.size} {where} labels outside [0, {n_classes - 1}] (e.g. row {out[0]}: {t[out[0]]})"
            )
    return z


def nll_at(logits: np.ndarray, y: np.ndarray, temperature: float | np.ndarray) -> float:
    """Mean NLL of ``softmax(log_softmax(logits) / T)`` (T scalar or per class ``[C]``)."""
    z = log_softmax(np.asarray(logits, dtype=np.float64), axis=1) / temperature
    return float((logsumexp(z, axis=1) - z[np.arange(z.shape[0]), y]).mean())


def apply_temperature(logits: np.ndarray, temperature: float | Sequence[float] | np.ndarray) -> np.ndarray:
    """Calibrated probabilities ``softmax(log_softmax(logits) / T)``; ``T`` scalar or per-class ``[C]``.

    With a scalar T this equals ``softmax(logits / T)``. Returns ``[N, C]``.
    """
    t = np.asarray(temperature, dtype=np.float64)
    if not np.isfinite(t).all() or (t <= 0).any():
        raise ConfigError(f"temperatures must be finite and > 0, got {t.tolist()}")
    return np.exp(log_softmax(log_softmax(np.asarray(logits, dtype=np.float64), axis=1) / t, axis=1))


def fit_temperature(
    logits: np.ndarray,
    y: np.ndarray,
    n_classes: int = len(FER_CLASSES),
    bounds: tuple[float, float] = T_BOUNDS,
) -> TemperatureFit:
    """Fit one temperature on validation logits by minimising NLL over ``log T`` (bounded Brent search).

    Args:
        logits: ``[N, C]`` validation logits (not probabilities).
        y: ``[N]`` validation labels.
        n_classes: ``C``.
        bounds: search range of T; an optimum on a bound is reported in ``warnings``.

    Returns:
        :class:`TemperatureFit`.

    Raises:
        DataIntegrityError: see :func:`check_logits`.
    """
    z = check_logits(logits, y, n_classes)
    t = np.asarray(y, dtype=np.int64)
    z_true = z[np.arange(z.shape[0]), t]

    def objective(log_t: float) -> float:
        s = z / np.exp(log_t)
        return float(logsumexp(s, axis=1).mean() - z_true.mean() / np.exp(log_t))

    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    res = minimize_scalar(objective, bounds=(lo, hi), method="bounded", options={"xatol": 1e-5})
    temp = float(np.exp(res.x))
    warnings = []
    if min(res.x - lo, hi - res.x) < 1e-3:
        warnings.append(f"fitted T={temp:.4g} sits on the search bound {bounds}; the logits may be degenerate")
    return TemperatureFit(temp, objective(0.0), float(res.fun), int(res.nfev), tuple(warnings))


def fit_per_class_temperature(
    logits: np.ndarray,
    y: np.ndarray,
    global_temperature: float,
    classes: Sequence[str] = FER_CLASSES,
    reg: float = 0.01,
    max_iter: int = 100,
) -> PerClassTemperatureFit:
    """Fit ``T_c`` jointly (NLL of ``softmax(log_softmax(z) / T)``, ``T = [T_1..T_C]``) by LBFGS on ``log T_c``.

    Fitting on log-probabilities makes the result shift-invariant: a per-row constant added to the logits changes
    neither the fitted ``T_c`` nor the calibrated probabilities.

    Loss: ``NLL + reg * mean_c (log T_c - log T_global)^2``, which pulls classes with little evidence toward the
    global temperature. A class absent from the validation labels keeps the global T (recorded in ``warnings``).

    Args:
        logits: ``[N, C]`` validation logits.
        y: ``[N]`` validation labels.
        global_temperature: the fitted global T (starting point and regularisation target).
        classes: class names ``[C]`` (used in warnings).
        reg: regularisation strength (``>= 0``).
        max_iter: LBFGS iterations.
    """
    z_np = check_logits(logits, y, len(classes))
    if reg < 0 or not global_temperature > 0:
        raise ConfigError(f"need reg >= 0 and global_temperature > 0, got reg={reg}, T={global_temperature}")
    t = torch.from_numpy(np.array(y, dtype=np.int64))  # a writable copy: labels may be read-only
    present = torch.bincount(t, minlength=len(classes)) > 0
    fallback = tuple(c for c, p in zip(classes, present.tolist(), strict=True) if not p)
    warnings = tuple(f"class {c!r} is absent from the validation set; it keeps the global T" for c in fallback)
    z = torch.log_softmax(torch.as_tensor(z_np), dim=1)
    log_g = torch.full((len(classes),), float(np.log(global_temperature)), dtype=torch.float64)
    free = log_g[present].clone().requires_grad_(True)
    opt = torch.optim.LBFGS([free], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def full() -> torch.Tensor:
        return log_g.masked_scatter(present, free)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        log_t = full()
        loss = torch.nn.functional.cross_entropy(z / log_t.exp(), t) + reg * ((log_t - log_g) ** 2).mean()
        loss.backward()
        return loss

    opt.step(closure)
    temps = full().detach().exp().numpy()
    return PerClassTemperatureFit(
        temperatures=tuple(float(v) for v in temps),
        global_temperature=float(global_temperature),
        nll_after=nll_at(z_np, np.asarray(y, dtype=np.int64), temps),
        fallback_classes=fallback,
        warnings=warnings,
    )
