"""Report computations: family statistics by hand, temperature recovery, subsets, rendering."""

import math

import numpy as np
import pandas as pd
import pytest

from fer_core.errors import DataIntegrityError
from fer_core.report.render import ReportData, Target, render_markdown
from fer_core.report.results import evaluate_logits, evaluate_probs, family_table, prob_metrics


def _rows():
    # ce: 0.50, 0.52, 0.54, 0.56, 0.58 ; kd = ce + 0.02 on every seed ; dkd = ce - 0.01 except one seed
    ce = [0.50, 0.52, 0.54, 0.56, 0.58]
    rows = []
    for i, s in enumerate([1, 2, 3, 4, 5]):
        for fam, v in (("ce", ce[i]), ("kd", ce[i] + 0.02), ("dkd", ce[i] - 0.01 if i else ce[i] + 0.01)):
            rows.append({"family": fam, "seed": s, "accuracy": v, "macro_f1": v, "minority_f1": v / 2, "ece_15": 0.05})
    return pd.DataFrame(rows)


def test_family_table_by_hand():
    t = family_table(_rows(), "ce").set_index("family")
    assert list(t.index) == ["kd", "ce", "dkd"]  # sorted by mean macro-F1
    assert t.loc["ce", "macro_f1_mean"] == pytest.approx(0.54)
    assert t.loc["ce", "macro_f1_std"] == pytest.approx(np.std([0.50, 0.52, 0.54, 0.56, 0.58], ddof=1))
    assert t.loc["kd", "d_macro_f1"] == pytest.approx(0.02)
    # all five differences positive: the exact two-sided sign-flip test gives its floor 2/2^5
    assert t.loc["kd", "p_macro_f1"] == pytest.approx(2 / 32)
    # dkd: differences (+0.01, -0.01 x 4): mean -0.006; exact p = #(|mean| >= 0.006) / 32 = 12/32
    assert t.loc["dkd", "d_macro_f1"] == pytest.approx(-0.006)
    assert t.loc["dkd", "p_macro_f1"] == pytest.approx(12 / 32)
    # paired Student-t interval: kd's differences are all 0.02 (zero spread); dkd's by hand with t_{4, 0.975}
    assert t.loc["kd", "d_macro_f1_ci"] == pytest.approx((0.02, 0.02))
    d = np.array([0.01, -0.01, -0.01, -0.01, -0.01])
    half = 2.7764451 * d.std(ddof=1) / math.sqrt(5)
    assert t.loc["dkd", "d_macro_f1_ci"] == pytest.approx((-0.006 - half, -0.006 + half), abs=1e-6)
    assert "p_macro_f1" not in t.columns or math.isnan(t.loc["ce", "p_macro_f1"])


def test_family_table_refuses_a_seed_twice():
    rows = pd.concat([_rows(), _rows().iloc[:1]])
    with pytest.raises(DataIntegrityError, match="duplicate"):
        family_table(rows, "ce")


def _logits(n, t_true, rng):
    """Labels drawn from softmax(z): z is calibrated, z / t_true is over-confident by 1/t_true when t_true < 1."""
    z = rng.normal(0, 2, (n, 7))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = (rng.random((n, 1)) > p.cumsum(1)).sum(1)
    return z / t_true, y


def test_evaluate_logits_recovers_temperature_and_improves_ece():
    rng = np.random.default_rng(0)
    zv, yv = _logits(4000, 0.4, rng)
    zt, yt = _logits(4000, 0.4, rng)
    ev = evaluate_logits(zv, yv, zt, yt, {"first_half": np.arange(4000) < 2000})
    assert ev.temperature == pytest.approx(1 / 0.4, rel=0.1)
    assert ev.after["ece_15"] < ev.before["ece_15"] / 3
    assert ev.before["accuracy"] == ev.after["accuracy"]  # scaling never changes the argmax
    assert ev.confusion.sum() == 4000
    half = prob_metrics(ev.probs_before[:2000], yt[:2000])
    assert ev.subsets["first_half"]["macro_f1"] == pytest.approx(half["macro_f1"])


def test_evaluate_probs_of_an_ensemble():
    rng = np.random.default_rng(1)
    zv, yv = _logits(2000, 1.0, rng)
    zt, yt = _logits(2000, 1.0, rng)
    p = lambda z: np.exp(z) / np.exp(z).sum(1, keepdims=True)  # noqa: E731
    ev = evaluate_probs(p(zv), yv, p(zt), yt)
    assert ev.temperature == pytest.approx(1.0, rel=0.1)
    assert ev.before["accuracy"] == pytest.approx(np.mean(zt.argmax(1) == yt))


def test_render_has_every_section_and_marks_missed_targets():
    rng = np.random.default_rng(2)
    zv, yv = _logits(500, 0.5, rng)
    zt, yt = _logits(500, 0.5, rng)
    ev = evaluate_logits(zv, yv, zt, yt, {"publictest_originals": np.ones(500, bool)})
    rows = _rows()
    for m in ("ece_15", "nll", "brier"):
        rows[f"{m}_after"] = rows.get(m, 0.1)
    rows["nll"], rows["brier"], rows["run_id"] = 1.0, 0.5, "abcdef1234567890"
    data = ReportData(
        title="t",
        profile="p",
        meta={"profile": "p"},
        findings={"exact_duplicates": 7, "augmented_copies": 3,
                  "duplicates_of_held_out_dropped": {"exact": {"train": 2}, "near": {"train": 5, "val": 1}},
                  "derived_copies": {"policy": "drop", "kept_in_train": 0, "dropped_from_train_by_policy": 3,
                                     "dropped_from_held_out_splits": 0}},  # fmt: skip
        split_counts=pd.DataFrame({"happy": [5, 1]}, index=["train", "test"]),
        test_composition={"originals": 1},
        models=[("resnet", "teacher", ev), ("ensemble", "ensemble", ev)],
        student_rows=rows,
        families=family_table(rows, "ce"),
        baseline="ce",
        packaged_family="kd",
        champion={},
        abstention=None,
        latency={"torch eager": {"median_ms": 4.0, "p95_ms": 5.0}, "onnx": {"median_ms": 1.0, "p95_ms": 1.5}},
        targets=[Target("acc", ">= 0.7", 0.6, False), Target("ece", "<= 0.03", 0.02, True)],
        images={"confusion_ensemble": "confusion_ensemble.png"},
    )
    md = render_markdown(data)
    for heading in (
        "Data findings",
        "Targets",
        "Teachers and ensemble",
        "Students",
        "Calibration",
        "Latency",
        "Confusion",
    ):
        assert heading in md
    assert md.index("Data findings") < md.index("Teachers and ensemble")  # findings come first
    assert "| acc | >= 0.7 | 0.600 | **no** |" in md
    assert "## 3. Teachers and ensemble (last epoch, held-out test originals)" in md
    assert "| training faces dropped as exact duplicates of a held-out face | 2 (train: 2) |" in md
    assert "holds a held-out face (never moved) | 6 (train: 5, val: 1) |" in md
    assert "training policy `derived_copies: drop`: kept / dropped | 0 / 3 |" in md
    assert "paired Student-t interval" in md
    assert "4.00x" in md  # ONNX vs torch eager ratio
    assert "p = 0.0625" in md
    assert "![confusion_ensemble](confusion_ensemble.png)" in md


def test_subset_rows_show_the_subsets_own_calibration():
    rng = np.random.default_rng(5)
    zv, yv = _logits(2000, 0.5, rng)
    zt, yt = _logits(2000, 0.5, rng)
    mask = np.arange(2000) < 300
    ev = evaluate_logits(zv, yv, zt, yt, {"part": mask})
    assert ev.subsets_after["part"]["ece_15"] == pytest.approx(prob_metrics(ev.probs_after[mask], yt[mask])["ece_15"])
    assert ev.subsets["part"]["ece_15"] != ev.before["ece_15"]
