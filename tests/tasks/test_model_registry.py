"""Candidate selection over the calibrated students the calibrate stage hands over: validation-only ranking, gates
first, exactly the given candidates, a missing calibrate stage named."""

import pytest

from fer_adapters.registry import promotion_gates, select_candidate
from fer_core.errors import MissingUpstreamError
from fer_core.export.gates import PromotionGates, baselines
from fer_spec.results import CalibratedStudent, StudentRun

BASE = baselines([10] * 7)


def calibrated(name: str, val_f1: float, val_ece: float, test_f1: float) -> CalibratedStudent:
    """A calibrated student as the calibrate stage hands it over (typed; no MLflow lookup)."""
    student = StudentRun(name=name, seed=0, checkpoint="runs/x/last.pt", checkpoint_sha256="0" * 64,
                         logits="runs/x/logits.parquet", logits_sha256="0" * 64, mlflow_run_id=f"run-{name}",
                         val_metrics={"macro_f1": val_f1}, class_f1=[0.0] * 7, out_dir="runs/x", kind="pairwise-kd")
    return CalibratedStudent(student=student, calibration_json="runs/x/calibration/calibration.json",
                             calibration_sha256="0" * 64, temperature=1.2, before={}, after={"macro_f1": test_f1},
                             val_after={"macro_f1": val_f1, "accuracy": val_f1, "ece_15": val_ece, "nll": 1.0})


def test_no_candidate_names_the_stage_to_run():
    with pytest.raises(MissingUpstreamError, match="calibrate"):
        select_candidate([], PromotionGates(), BASE)


def test_ranking_reads_validation_only_and_puts_passing_students_first():
    given = [calibrated("best-on-test", 0.50, 0.02, 0.99), calibrated("sharp-but-miscalibrated", 0.90, 0.20, 0.90),
             calibrated("honest", 0.60, 0.02, 0.40)]  # fmt: skip
    best, ranked = select_candidate(given, PromotionGates(max_ece=0.05), BASE)
    assert best.run_id == "run-honest" and best.verdict.passed
    assert [c.name for c in ranked] == ["honest", "best-on-test", "sharp-but-miscalibrated"]
    assert not ranked[-1].verdict.passed
    assert best.heldout["macro_f1"] == 0.40  # reported, never ranked on


def test_exactly_the_given_candidates_are_ranked():
    """Two candidates in, two ranked out: nothing else (replicate seeds, other profiles) is ever considered."""
    given = [calibrated("a", 0.5, 0.02, 0.5), calibrated("b", 0.7, 0.02, 0.5)]
    best, ranked = select_candidate(given, PromotionGates(max_ece=0.05), BASE)
    assert [c.run_id for c in ranked] == ["run-b", "run-a"] and best.run_id == "run-b"


def test_gates_come_from_the_package_section():
    from fer_spec.profile import PackageSection

    gates = promotion_gates(PackageSection(min_macro_f1=0.4, max_ece=0.07))
    assert (gates.min_macro_f1, gates.max_ece, gates.min_margin_over_chance) == (0.4, 0.07, 0.1)
