"""Candidate selection against a real MLflow on SQLite, without exporting anything: validation-only ranking, gates
first, a missing calibrate stage named."""

import pytest
from mlflow.tracking import MlflowClient

from fer_adapters.registry import promotion_gates, select_candidate
from fer_core.errors import MissingUpstreamError
from fer_core.export.gates import PromotionGates, baselines

SHA = "a" * 64
SHA_RANKED = "b" * 64
BASE = baselines([10] * 7)


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    """One SQLite MLflow for the module (creating its tables takes seconds); tests use distinct index hashes."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}")
        from fer_adapters.tracking import configure_tracking

        configure_tracking()
        yield MlflowClient()


def calibrated_run(name: str, val_f1: float, val_ece: float, test_f1: float, stage: str = "distill") -> str:
    from fer_adapters.runs import ferflow_run

    with ferflow_run(stage, dataset_sha256=SHA_RANKED, run_name=name) as (run_id, sink):
        sink.log_metrics({"val_after/macro_f1": val_f1, "val_after/accuracy": val_f1, "val_after/ece_15": val_ece,
                          "val_after/nll": 1.0, "after/macro_f1": test_f1, "calibration/temperature": 1.2})  # fmt: skip
    return run_id


def test_no_calibrated_student_names_the_stage_to_run(tracking):
    from fer_adapters.runs import ferflow_run

    with ferflow_run("distill", dataset_sha256=SHA, run_name="uncalibrated"):
        pass  # a finished student the calibrate stage never saw is not a candidate
    with pytest.raises(MissingUpstreamError, match="calibrate"):
        select_candidate(SHA, PromotionGates(), BASE)


def test_ranking_reads_validation_only_and_puts_passing_students_first(tracking):
    calibrated_run("best-on-test", val_f1=0.50, val_ece=0.02, test_f1=0.99)
    fails_ece = calibrated_run("sharp-but-miscalibrated", val_f1=0.90, val_ece=0.20, test_f1=0.90)
    passes = calibrated_run("honest", val_f1=0.60, val_ece=0.02, test_f1=0.40)
    calibrated_run("a-teacher", val_f1=0.99, val_ece=0.01, test_f1=0.99, stage="train_teacher")  # not a student
    best, ranked = select_candidate(SHA_RANKED, PromotionGates(max_ece=0.05), BASE)
    assert best.run_id == passes and best.verdict.passed
    assert [c.name for c in ranked] == ["honest", "best-on-test", "sharp-but-miscalibrated"]
    assert ranked[-1].run_id == fails_ece and not ranked[-1].verdict.passed
    assert best.heldout["macro_f1"] == 0.40  # reported, never ranked on


def test_gates_come_from_the_package_section():
    from fer_spec.profile import PackageSection

    gates = promotion_gates(PackageSection(min_macro_f1=0.4, max_ece=0.07))
    assert (gates.min_macro_f1, gates.max_ece, gates.min_margin_over_chance) == (0.4, 0.07, 0.1)
