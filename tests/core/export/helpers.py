"""Tiny models and bundles for the export and realtime tests."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from fer_core.export import render_model_card, write_bundle
from fer_core.export.onnx import export_onnx
from fer_core.preprocess import ClaheSpec, PreprocessSpec
from fer_core.taxonomy import FER_CLASSES

SPEC = PreprocessSpec(size=(32, 32), clahe=ClaheSpec())


def tiny_net(channels: int = 1, seed: int = 0) -> nn.Module:
    """A 3-layer CNN: ``[B, C, H, W]`` → logits ``[B, 7]``."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(channels, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, len(FER_CLASSES)),
    ).eval()  # fmt: skip


def calibration_dict(temperature: float = 1.5, thresholds=None, per_class=None) -> dict:
    return {
        "classes": list(FER_CLASSES),
        "temperature": temperature,
        "per_class_temperature": per_class,
        "thresholds": thresholds,
        "metrics": {"before": {"ece": 0.1}, "after": {"ece": 0.03}},
    }


def make_bundle(tmp: Path, spec: PreprocessSpec = SPEC, name: str = "bundle", **calib) -> Path:
    onnx_path = export_onnx(tiny_net(spec.channels), spec, tmp / f"{name}.onnx")
    cal = calibration_dict(**calib)
    card = render_model_card("tiny", {"n": 10}, {"accuracy": 0.5}, cal, spec)
    return write_bundle(tmp / name, onnx_path, cal, spec, card, stabilizer={"alpha": 0.5, "window": 3, "min_count": 2})
