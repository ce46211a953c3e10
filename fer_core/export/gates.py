"""Promotion gates: what a packaged student must show on validation data, judged against chance-level baselines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import Field

from fer_core.config import FrozenModel
from fer_core.errors import ConfigError
from fer_core.taxonomy import FER_CLASSES

DEFAULT_MARGIN = 0.1


class PromotionGates(FrozenModel):
    """Thresholds a candidate's VALIDATION metrics must meet before it may become ``@champion``.

    The floors are relative to chance, so no setting of ``min_macro_f1`` can promote a model that guesses: macro-F1
    must beat both chance (1 / number of classes) and the majority-class baseline by ``min_margin_over_chance``, and
    accuracy must beat the majority class's share of validation by the same margin.
    """

    min_macro_f1: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Lowest validation macro-F1 a promoted student may have (the chance floor also holds)",
    )
    min_margin_over_chance: float = Field(
        DEFAULT_MARGIN,
        gt=0,
        le=0.5,
        description="How far above chance (1/classes) and the majority-class baseline macro-F1 and accuracy must be",
    )
    max_ece: float = Field(
        0.05, gt=0, le=1, description="Highest expected calibration error (15 bins) on validation after calibration"
    )


@dataclass(frozen=True)
class Baselines:
    """Scores of models that learned nothing, on one validation split.

    Attributes:
        chance_macro_f1: 1 / C, the macro-F1 of guessing from the class prior.
        majority_class: the most frequent validation class.
        majority_share: its share of validation (the accuracy of always predicting it).
        majority_macro_f1: macro-F1 of always predicting it (its F1 ``2p / (1 + p)`` over C classes).
    """

    chance_macro_f1: float
    majority_class: str
    majority_share: float
    majority_macro_f1: float


def baselines(label_counts: Sequence[int], classes: Sequence[str] = FER_CLASSES) -> Baselines:
    """Chance and majority-class baselines of a split with ``label_counts[c]`` samples of class ``c``.

    Raises:
        ConfigError: the counts do not match the classes, are negative, or sum to zero.
    """
    counts = np.asarray(label_counts, dtype=np.float64)
    if counts.shape != (len(classes),) or (counts < 0).any() or counts.sum() <= 0:
        raise ConfigError(
            f"label counts must be {len(classes)} non-negative numbers with a positive sum (one per class "
            f"{list(classes)}), got {counts.tolist()}"
        )
    share = counts / counts.sum()
    m = int(share.argmax())
    p = float(share[m])
    return Baselines(1.0 / len(classes), classes[m], p, 2 * p / (1 + p) / len(classes))


@dataclass(frozen=True)
class GateCheck:
    """One comparison: ``value`` must be ``>=`` (or ``<=``) ``threshold``."""

    name: str
    value: float
    threshold: float
    higher_is_better: bool
    why: str

    @property
    def passed(self) -> bool:
        ok = self.value >= self.threshold if self.higher_is_better else self.value <= self.threshold
        return bool(ok) and np.isfinite(self.value)

    def line(self) -> str:
        op = ">=" if self.higher_is_better else "<="
        mark = "pass" if self.passed else "FAIL"
        return f"{mark}: {self.name} {self.value:.4f}, needs {op} {self.threshold:.4f} ({self.why})"


@dataclass(frozen=True)
class GateVerdict:
    """Every check of one candidate; ``passed`` when all pass."""

    checks: tuple[GateCheck, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[str]:
        """One line per failed check (empty when the candidate passes)."""
        return [c.line() for c in self.checks if not c.passed]

    def summary(self) -> str:
        """One line per check, failures first."""
        return "\n".join(c.line() for c in sorted(self.checks, key=lambda c: c.passed))


def check_promotion(metrics: Mapping[str, float], gates: PromotionGates, base: Baselines) -> GateVerdict:
    """Judge a candidate's validation ``macro_f1``, ``accuracy`` and calibrated ``ece`` against ``gates``.

    Args:
        metrics: validation metrics of the calibrated candidate: ``macro_f1``, ``accuracy``, ``ece``.
        gates: the thresholds.
        base: the validation split's :func:`baselines`.

    Returns:
        :class:`GateVerdict` (a missing or non-finite metric fails its check).
    """
    margin = gates.min_margin_over_chance
    chance_f1 = max(base.chance_macro_f1, base.majority_macro_f1)
    f1_floor = max(gates.min_macro_f1, chance_f1 + margin)
    f1_why = (
        f"configured floor {gates.min_macro_f1:.2f}"
        if gates.min_macro_f1 >= chance_f1 + margin
        else f"chance {chance_f1:.3f} + margin {margin:.2f}"
    )
    acc_floor = max(base.chance_macro_f1, base.majority_share) + margin
    nan = float("nan")
    return GateVerdict((
        GateCheck("val macro-F1", float(metrics.get("macro_f1", nan)), f1_floor, True, f1_why),
        GateCheck("val accuracy", float(metrics.get("accuracy", nan)), acc_floor, True,
                  f"always '{base.majority_class}' scores {base.majority_share:.3f}, + margin {margin:.2f}"),
        GateCheck("val ECE after calibration", float(metrics.get("ece", nan)), gates.max_ece, False,
                  "configured ceiling"),
    ))  # fmt: skip
