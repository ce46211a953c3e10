"""Realtime runner: frame sources, face detection and tracking, the stabiliser, Protocol-Lite scoring, replay and
offline bundle evaluation. Uses onnxruntime + OpenCV + numpy only (no torch)."""

from fer_core.realtime.detect import DETECTORS, DetectorConfig, create_detector
from fer_core.realtime.evaluate import evaluate_bundle
from fer_core.realtime.replay import replay_metrics
from fer_core.realtime.runner import RunnerConfig, RunSummary, run
from fer_core.realtime.score import score
from fer_core.realtime.sources import open_source
from fer_core.realtime.stabilize import UNKNOWN, Stabilizer, StabilizerConfig, stabilize_sequence

__all__ = [
    "DETECTORS",
    "UNKNOWN",
    "DetectorConfig",
    "RunSummary",
    "RunnerConfig",
    "Stabilizer",
    "StabilizerConfig",
    "create_detector",
    "evaluate_bundle",
    "open_source",
    "replay_metrics",
    "run",
    "score",
    "stabilize_sequence",
]
