"""Ensemble fusion of teacher logits and vectorised evaluation of weight x temperature grids."""

from fer_core.ensemble.fusion import fuse_probs, normalise_weights, softmax
from fer_core.ensemble.grid import best_config, evaluate_grid, ratio_grid, simplex_grid

__all__ = ["best_config", "evaluate_grid", "fuse_probs", "normalise_weights", "ratio_grid", "simplex_grid", "softmax"]
