"""Static INT8 quantisation (QDQ, per-channel) of an exported model and the keep-or-drop rule."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from fer_core.errors import ConfigError
from fer_core.io import atomic_path


class _ArrayReader:
    """CalibrationDataReader over ``[N, C, H, W]`` float32 inputs, fed in batches of ``batch``."""

    def __init__(self, input_name: str, inputs: np.ndarray, batch: int):
        self._it: Iterator[dict[str, np.ndarray]] = (
            {input_name: np.ascontiguousarray(inputs[i : i + batch], dtype=np.float32)}
            for i in range(0, len(inputs), batch)
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:  # the static calibrator makes one pass
        pass


def quantize_int8(
    onnx_path: str | os.PathLike[str],
    calib_inputs: np.ndarray,
    out_path: str | os.PathLike[str],
    per_channel: bool = True,
    batch: int = 16,
) -> Path:
    """Static INT8 quantisation in QDQ format with MinMax calibration on ``calib_inputs`` ``[N, C, H, W]``.

    Args:
        onnx_path: the FP32 model.
        calib_inputs: preprocessed calibration inputs (a few hundred representative faces).
        out_path: destination of the INT8 model (written atomically).
        per_channel: per-channel weight scales (better accuracy for depthwise convolutions).
        batch: calibration batch size.

    Returns:
        ``out_path``.

    Raises:
        ConfigError: no calibration inputs or not 4-D.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    x = np.asarray(calib_inputs)
    if x.ndim != 4 or len(x) == 0:
        raise ConfigError(f"calib_inputs must be a non-empty [N, C, H, W] array, got shape {x.shape}")
    import onnxruntime as ort

    name = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).get_inputs()[0].name
    dest = Path(out_path)
    with tempfile.TemporaryDirectory() as td, atomic_path(dest) as tmp:
        pre = Path(td) / "pre.onnx"
        # Shape inference + graph cleanup first, as ORT recommends, so Conv/BN folding sees static shapes.
        quant_pre_process(str(onnx_path), str(pre), skip_symbolic_shape=False)
        quantize_static(
            str(pre), str(tmp), _ArrayReader(name, x, batch), quant_format=QuantFormat.QDQ,
            per_channel=per_channel, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )  # fmt: skip
        from fer_core.export.onnx import metadata, set_metadata

        set_metadata(tmp, metadata(onnx_path))  # the class order (and any other stamp) survives quantisation
    return dest


def keep_int8_if(macro_f1_fp32: float, macro_f1_int8: float, max_drop: float = 0.01) -> bool:
    """Keep the INT8 model only if its macro-F1 is at most ``max_drop`` (absolute) below FP32's."""
    if max_drop < 0:
        raise ConfigError(f"max_drop must be >= 0, got {max_drop}")
    # The epsilon keeps a drop of exactly max_drop (0.60 → 0.59) from failing on float rounding.
    return (macro_f1_fp32 - macro_f1_int8) <= max_drop + 1e-9
