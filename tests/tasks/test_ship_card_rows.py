"""The shipped card's seed statistics say which sources of variance they cover (issue 21 item 7)."""

from pathlib import Path

from fer_spec.profile import load_pipeline_config
from tasks.ship import _seed_rows

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
REPORT = {
    "families": [
        {"family": "ce", "accuracy_mean": 0.58, "n_seeds": 2},
        {"family": "pairwise-kd", "accuracy_mean": 0.59, "accuracy_std": 0.004, "n_seeds": 6, "other": 1},
    ],
    "headline": {"ensemble_accuracy": 0.60},
}


def test_the_seed_rows_are_the_shipped_students_family_and_name_what_varies_and_what_is_fixed():
    cfg = load_pipeline_config(CONFIGS / "fer2013_cpu.yaml")
    rows = _seed_rows(REPORT, "student-pairwise-kd-s42", cfg)
    assert rows["packaged family (pairwise-kd) accuracy_mean"] == 0.59 and "packaged family (ce) n_seeds" not in rows
    assert rows["teachers' ensemble accuracy (held-out originals)"] == 0.60
    cover = rows["packaged family (pairwise-kd) seed statistics cover"]
    assert cover.startswith("student seeds only (6: 42, 1337, 2025, 7, 11, 3)")
    assert "the teachers' seed 0 (resnet18, resnet18_erase" in cover and "one index" in cover


def test_a_student_without_teachers_names_only_the_index_as_fixed():
    cfg = load_pipeline_config(CONFIGS / "fer2013_cpu.yaml")
    ce = cfg.model_copy(update={"student": cfg.student.model_copy(update={
        "distill": cfg.student.distill.model_copy(update={"teachers": []})})})  # fmt: skip
    cover = _seed_rows(REPORT, "student-ce-s42", ce)["packaged family (ce) seed statistics cover"]
    assert "teachers" not in cover and cover.endswith("fixed across them: one index (one validation split)")
