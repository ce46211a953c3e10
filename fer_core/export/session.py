"""ONNX Runtime CPU session factory with an explicit thread budget (no torch)."""

from __future__ import annotations

import os

import onnxruntime as ort

from fer_core.errors import BundleError, ConfigError


def make_session(onnx_path: str | os.PathLike[str], threads: int = 2) -> ort.InferenceSession:
    """A CPU ONNX Runtime session with ``threads`` intra-op threads and one inter-op thread.

    Args:
        onnx_path: the ``.onnx`` file.
        threads: intra-op threads (the realtime budget is 2 cores).

    Raises:
        ConfigError: ``threads`` < 1.
        BundleError: the file is not a loadable ONNX model.
    """
    if threads < 1:
        raise ConfigError(f"threads must be >= 1, got {threads}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(str(onnx_path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own untyped Fail/InvalidGraph errors
        raise BundleError(f"{onnx_path}: not a loadable ONNX model ({e}); re-export it with export_onnx") from e
