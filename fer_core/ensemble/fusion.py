"""Weighted fusion of per-teacher tempered softmax probabilities."""

from __future__ import annotations

import numpy as np

from fer_core.errors import ConfigError, DataIntegrityError


def softmax(logits: np.ndarray, temperature: float = 1.0, axis: int = -1) -> np.ndarray:
    """Numerically stable ``softmax(logits / T)`` along ``axis`` (dtype preserved for float inputs)."""
    z = np.asarray(logits) / temperature
    z = z - z.max(axis=axis, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=axis, keepdims=True)
    return z


def normalise_weights(weights: np.ndarray, k: int) -> np.ndarray:
    """Weights ``[..., K]`` scaled to sum to 1 along the last axis.

    Raises:
        ConfigError: wrong length, a negative or non-finite weight, or a row summing to 0.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.shape[-1:] != (k,):
        raise ConfigError(f"weights must have {k} entries (one per teacher) in the last axis, got shape {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ConfigError(f"weights must be finite and >= 0, got {w.tolist() if w.size <= 20 else 'a bad row'}")
    s = w.sum(axis=-1, keepdims=True)
    if (s <= 0).any():
        raise ConfigError("every weight vector needs a positive sum; got an all-zero row")
    return w / s


def _check_logits_kn(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits)
    if z.ndim != 3:
        raise DataIntegrityError(f"teacher logits must be [K, N, C], got shape {z.shape}")
    if not np.isfinite(z).all():
        raise DataIntegrityError(
            f"{int((~np.isfinite(z)).sum())} non-finite teacher logits; align_logits catches these"
        )
    return z


def fuse_probs(logits: np.ndarray, weights: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Ensemble probabilities ``sum_k w_k softmax(z_k / T)`` with weights normalised to sum to 1.

    Args:
        logits: ``[K, N, C]`` per-teacher logits (aligned by sample id).
        weights: ``[K]`` non-negative teacher weights.
        temperature: shared softmax temperature ``T > 0``.

    Returns:
        float64 ``[N, C]`` probabilities (rows sum to 1).
    """
    z = _check_logits_kn(logits).astype(np.float64)
    if not (np.isfinite(temperature) and temperature > 0):
        raise ConfigError(f"temperature must be a finite number > 0, got {temperature}")
    w = normalise_weights(weights, z.shape[0])
    return np.einsum("k,knc->nc", w, softmax(z, temperature))
