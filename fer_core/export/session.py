"""ONNX Runtime CPU session factory with an explicit thread budget (no torch)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

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


CLASSES_KEY = "ferflow.classes"
"""ONNX ``metadata_props`` key holding the model's output class order (a JSON list), stamped by ``export_onnx``."""


def model_classes(sess: ort.InferenceSession, where: str = "model.onnx") -> tuple[str, ...] | None:
    """The output class order an ONNX model carries (:data:`CLASSES_KEY`), or ``None`` for a model without it.

    Raises:
        BundleError: the metadata is there but is not a JSON list of names.
    """
    raw = sess.get_modelmeta().custom_metadata_map.get(CLASSES_KEY)
    if raw is None:
        return None
    try:
        classes = json.loads(raw)
    except ValueError as e:
        raise BundleError(f"{where}: metadata {CLASSES_KEY!r} is not JSON ({e}); re-export the model") from e
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise BundleError(f"{where}: metadata {CLASSES_KEY!r} is {raw!r}, not a list of class names; re-export it")
    return tuple(classes)


def check_model_classes(sess: ort.InferenceSession, classes: Sequence[str], where: str = "model.onnx") -> None:
    """Refuse class names (e.g. a bundle's ``calibration.json``) that disagree with the model's own output order.

    Raises:
        BundleError: the model carries a class order and ``classes`` differs from it (both named).
    """
    own = model_classes(sess, where)
    if own is not None and tuple(classes) != own:
        raise BundleError(
            f"{where} outputs the classes in the order {list(own)} (its {CLASSES_KEY!r} metadata) but they are given "
            f"as {list(classes)}: probabilities would be read under the wrong names; rebuild the bundle from the "
            "model's own calibration"
        )
