"""A trial's own refusal (a FerError) surfaces once, as itself; a crash stays a chained RuntimeError."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from ray import tune

from fer_core.errors import DataIntegrityError
from fer_core.taxonomy import FER_CLASSES


def _refuses(config):
    from pathlib import Path

    with (Path(config["folder"]) / f"attempt-{config['x']}").open("a") as f:
        f.write("x")  # one byte per attempt of this trial
    if config["x"] == 1:
        raise DataIntegrityError("row 7 is bad; fix it", [("rows.csv:7", "bad label")])
    tune.report({"score": float(config["x"])})


def _crashes(config):
    raise ZeroDivisionError("boom")


def test_a_refusal_is_raised_once_as_itself(ray_local, tmp_path):
    from fer_adapters.sweeps import run_sweep

    with pytest.raises(DataIntegrityError, match="row 7 is bad") as info:
        run_sweep(_refuses, {"x": tune.grid_search([0, 1]), "folder": str(tmp_path)}, name="refusal",
                  metric="score", max_failures=3)  # fmt: skip
    assert "rows.csv:7: bad label" in str(info.value)
    assert (tmp_path / "attempt-1").read_text() == "x"  # never retried


def test_a_crash_is_chained_to_the_trial_error(ray_local, tmp_path):
    from fer_adapters.sweeps import run_sweep

    with pytest.raises(RuntimeError, match="1 of 1 trials") as info:
        run_sweep(_crashes, {"x": tune.grid_search([0])}, name="crash", metric="score", max_failures=0)
    assert info.value.__cause__ is not None and "boom" in str(info.value.__cause__)


def test_tune_stabilizer_refuses_unlabelled_logs_before_the_sweep(tmp_path):
    from tasks.stabilizer import tune_stabilizer
    from tests.core.export.helpers import make_bundle

    bundle = make_bundle(tmp_path)
    n = 30
    df = pd.DataFrame({"timestamp_s": np.arange(n) / 15, "frame": np.arange(n), "track_id": 0, "x": 0, "y": 0,
                       "w": 100, "h": 100, "true_label": ""})  # fmt: skip
    for c in FER_CLASSES:
        df[f"p_{c}"] = 1 / 7
    df.to_csv(tmp_path / "f.csv", index=False)
    with pytest.raises(DataIntegrityError, match="label keys 1-7") as info:
        tune_stabilizer.fn(str(bundle), [str(tmp_path / "f.csv")], 0.5, [0.1])  # no Ray needed: refused first
    assert "f.csv: no labelled frame" in str(info.value)
