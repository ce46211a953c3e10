"""Tables for people: boxed text tables for the terminal, Markdown for artifacts, the calibration summary."""

import numpy as np

from fer_adapters.tables import calibration_markdown, format_table, markdown_table
from fer_core.calibrate import CalibrationConfig, calibrate

ROWS = [
    {"class": "angry", "tau": 0.51234, "precision": 0.8, "coverage": float("nan")},
    {"class": "disgust", "tau": 0.9, "precision": None, "coverage": 0.1},
]


def test_format_table_draws_a_box_with_aligned_numbers_and_no_dicts():
    text = format_table(ROWS, title="abstention (test)")
    lines = text.splitlines()
    assert lines[0] == "abstention (test)" and "{" not in text
    assert any("class" in x and "tau" in x and "coverage" in x for x in lines)
    angry = next(x for x in lines if "angry" in x)
    assert "0.512" in angry and "n/a" in angry  # 3 decimals; NaN is spelled out
    assert all(x == x.rstrip() for x in lines) and "\x1b[" not in text  # plain text, no colour codes
    assert format_table([], title="abstention (test)") == "abstention (test): (no rows)"


def test_markdown_table():
    assert markdown_table(ROWS, columns=["class", "tau"]).splitlines() == [
        "| class | tau |",
        "|---|---|",
        "| angry | 0.5123 |",
        "| disgust | 0.9000 |",
    ]


def test_calibration_markdown_says_when_the_fit_was_rejected(tmp_path):
    rng = np.random.default_rng(7)  # near-chance logits whose NLL-optimal T raises validation ECE
    y = rng.integers(0, 7, 200)
    z = rng.normal(size=(200, 7)) * 0.5
    z[np.arange(200), y] += 0.3
    zt, yt = z[::-1] * 1.7, y  # another held-out split: same labels, shuffled and sharpened logits
    res = calibrate(z, y, zt, yt, CalibrationConfig(plots=False, thresholds=None), tmp_path)
    md = calibration_markdown("student-kd-s42", res, "test")
    assert md.startswith("# Calibration of student-kd-s42\n\n**T = 1 (no temperature scaling).**")
    assert f"T = {res.fitted_temperature:.3f}" in md and "made validation ECE worse" in md
    assert "| metric | validation, raw | validation, calibrated | test, raw | test, calibrated |" in md
    ece = next(x for x in md.splitlines() if x.startswith("| ECE (15 bins)"))
    cells = [c.strip() for c in ece.strip("|").split("|")]
    assert cells[1] == cells[2] == f"{res.val_metrics['val_before']['ece_15']:.4f}"  # T = 1: the same before and after
    assert cells[3] == cells[4] != cells[1]


def grid(seeds: list[int]):
    import pandas as pd

    from fer_adapters.ensemble_trial import aggregate

    rows = []
    for s in seeds:
        for w0, t in ((0.25, 1.0), (0.75, 1.0), (0.75, 1.5)):
            f1 = 0.5 + w0 / 10 + s / 100
            rows.append({"w_0": w0, "w_1": 1 - w0, "temperature": t, "seed": s, "accuracy": f1, "macro_f1": f1,
                         "minority_f1": f1, "ece": 0.05, "nll": t, "brier": 0.3})  # fmt: skip
    return aggregate(pd.DataFrame(rows))


def test_ensemble_grid_rows_are_named_by_teacher_and_show_spread_only_when_there_is_one():
    from fer_adapters.tables import ensemble_grid_rows

    one, note = ensemble_grid_rows(grid([0]), ["resnet", "effnet"], ([0.75, 0.25], 1.0))
    assert list(one[0])[:3] == ["weight resnet", "weight effnet", "T"]
    assert not any("w_0" in k or "std" in k for k in one[0]) and "one teacher seed" in note
    assert [r["chosen"] for r in one].count("yes") == 1
    assert next(r for r in one if r["chosen"])["T"] == 1.0
    two, note = ensemble_grid_rows(grid([0, 1]), ["resnet", "effnet"], ([0.75, 0.25], 1.0))
    assert two[0]["macro_f1 std over seeds"] == round(float(np.std([0.575, 0.585], ddof=1)), 4) and "2 teacher" in note


def test_counts_stored_as_floats_print_as_counts():
    text = format_table([{"class": "sad", "support": 30.0, "f1": 0.5}, {"class": "fear", "support": 7.0, "f1": 1.0}])
    sad = next(x for x in text.splitlines() if "sad" in x)
    assert " 30 " in sad and "30.0" not in sad and "0.500" in sad
