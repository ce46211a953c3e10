"""Replay tuning on real Ray Tune: the chosen stabiliser beats the defaults on jitter above the accuracy floor."""

import numpy as np
import pandas as pd

from fer_core.export.bundle import load_bundle, verify_bundle
from fer_core.realtime.replay import load_replay_log, replay_metrics
from fer_core.realtime.stabilize import StabilizerConfig
from fer_core.taxonomy import FER_CLASSES
from tests.core.export.helpers import make_bundle


def _noisy_log(path, seed: int) -> None:
    """A labelled 40 s session: 4 s per label, probabilities that favour the truth but flicker."""
    rng = np.random.default_rng(seed)
    n = 600
    y = np.repeat(np.arange(7), n // 7 + 1)[:n]
    z = np.eye(7)[y] * 2.0 + rng.normal(0, 1.0, (n, 7))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    df = pd.DataFrame({"timestamp_s": np.arange(n) / 15, "frame": np.arange(n), "track_id": 0, "x": 0, "y": 0,
                       "w": 100, "h": 100, "true_label": [FER_CLASSES[i] for i in y]})  # fmt: skip
    for i, c in enumerate(FER_CLASSES):
        df[f"p_{c}"] = p[:, i]
    df.to_csv(path, index=False)


def test_sweep_writes_least_jitter_config_back_into_bundle(ray_local, tmp_path):
    from tasks.stabilizer import tune_stabilizer

    bundle = make_bundle(tmp_path)
    logs = [tmp_path / "a.csv", tmp_path / "b.csv"]
    for i, log in enumerate(logs):
        _noisy_log(log, i)
    out = tune_stabilizer.fn(str(bundle), [str(x) for x in logs], min_accuracy=0.6, alphas=[0.1, 0.3, 0.6])

    assert out["feasible"] and out["accuracy"] >= 0.6
    replays = [load_replay_log(x, FER_CLASSES) for x in logs]
    default = np.mean([replay_metrics(p, t, y, StabilizerConfig())["jitter_per_min"] for p, t, y in replays])
    assert out["jitter_per_min"] < default
    verify_bundle(bundle)  # rewritten with a new manifest, still consistent
    assert load_bundle(bundle).stabilizer == out["stabilizer"]
