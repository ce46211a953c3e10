"""Export and packaging: ONNX export and parity, INT8 quantisation, the student bundle (contract 3.4).

Runtime names (bundle, calibration, session) import no torch; the torch-side exporters load lazily on first use.
"""

from __future__ import annotations

from typing import Any

from fer_core.export.bundle import BundleManifest, BundleModel, bundle_sha256, load_bundle, verify_bundle, write_bundle
from fer_core.export.calibration import CalibrationSpec, calibrated_softmax, read_calibration
from fer_core.export.model_card import render_model_card
from fer_core.export.quantize import keep_int8_if, quantize_int8
from fer_core.export.session import make_session

_LAZY = {"export_onnx", "check_parity", "ParityReport"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:  # keeps torch out of the runtime path
        from fer_core.export import onnx

        return getattr(onnx, name)
    raise AttributeError(f"module 'fer_core.export' has no attribute {name!r}")


__all__ = [
    "BundleManifest",
    "BundleModel",
    "CalibrationSpec",
    "ParityReport",
    "bundle_sha256",
    "calibrated_softmax",
    "check_parity",
    "export_onnx",
    "keep_int8_if",
    "load_bundle",
    "make_session",
    "quantize_int8",
    "read_calibration",
    "render_model_card",
    "verify_bundle",
    "write_bundle",
]
