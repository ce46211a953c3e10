"""ONNX export of a classifier (timm exportable mode) and the torch-vs-ONNX parity check."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fer_core.errors import BundleError, ConfigError
from fer_core.export.session import CLASSES_KEY, make_session
from fer_core.io import atomic_path
from fer_core.models.reparam import reparameterize
from fer_core.preprocess import PreprocessSpec
from fer_core.taxonomy import FER_CLASSES

OUTPUT_NAME = "logits"


def _exportable():
    """timm's exportable layer config (static padding, no scripted/fused ops) when timm is present."""
    try:
        from timm.layers import set_layer_config
    except ImportError:  # plain nn.Module students do not need timm
        import contextlib

        return contextlib.nullcontext()
    return set_layer_config(exportable=True, no_jit=True)


def export_onnx(
    model: nn.Module,
    spec: PreprocessSpec,
    path: str | os.PathLike[str],
    opset: int = 17,
    dynamic_batch: bool = True,
    classes: Sequence[str] = FER_CLASSES,
) -> Path:
    """Export ``model`` (input ``[B, C, H, W]`` → logits ``[B, K]``) to ONNX, written atomically.

    The model is switched to eval mode for the export and restored afterwards. A model with fusion hooks (RepVGG /
    MobileOne branches) is exported reparameterised (:func:`fer_core.models.reparam.reparameterize`, on a copy: the
    caller's model is unchanged). The graph's input is named ``spec.input_name`` with shape
    ``[batch, spec.channels, *spec.size]``; its output is named ``logits``. The model carries its output class
    order as ``metadata_props`` (``ferflow.classes``, a JSON list), which bundle loaders check against
    ``calibration.json``.

    Args:
        model: the classifier; build it under ``timm.layers.set_layer_config(exportable=True)`` for timm models
            whose layers have export-hostile variants (the export itself also runs inside that context).
        spec: the preprocessing spec the model was trained with (input name, channels, size).
        path: destination ``.onnx`` file.
        opset: ONNX opset version.
        dynamic_batch: make the batch axis symbolic (``batch``); otherwise it is fixed at 1.
        classes: the model's output order ``[K]`` (the names of its logits).

    Returns:
        The written path.

    Raises:
        ConfigError: the model does not accept the spec's input, does not return a 2-D logits tensor, or returns
            a different number of logits than ``classes`` names.
    """
    dest = Path(path)
    h, w = spec.size
    dummy = torch.zeros(2 if dynamic_batch else 1, spec.channels, h, w)
    was_training = model.training
    source = model
    model.eval()
    try:
        model = reparameterize(source)
        with torch.no_grad():
            out = model(dummy)
        if not isinstance(out, torch.Tensor) or out.ndim != 2:
            raise ConfigError(f"model must return logits [B, K] for input {tuple(dummy.shape)}, got {type(out)}")
        if out.shape[1] != len(classes):
            raise ConfigError(f"model returns {out.shape[1]} logits but classes names {len(classes)}: {list(classes)}")
        axes = {spec.input_name: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None
        with atomic_path(dest) as tmp, _exportable(), warnings.catch_warnings():
            # The TorchScript exporter is fast and stable at opset 17; its deprecation notice is not actionable here.
            warnings.simplefilter("ignore", category=DeprecationWarning)
            warnings.simplefilter("ignore", category=FutureWarning)
            torch.onnx.export(
                model, (dummy,), str(tmp), input_names=[spec.input_name], output_names=[OUTPUT_NAME],
                opset_version=opset, dynamic_axes=axes, do_constant_folding=True, dynamo=False,
            )  # fmt: skip
            set_metadata(tmp, {CLASSES_KEY: json.dumps(list(classes))})
    except RuntimeError as e:
        raise ConfigError(f"ONNX export of {type(model).__name__} for input {tuple(dummy.shape)} failed: {e}") from e
    finally:
        source.train(was_training)
    return dest


def set_metadata(path: str | os.PathLike[str], props: dict[str, str]) -> None:
    """Set ``metadata_props`` entries of an ONNX file in place (other entries kept)."""
    import onnx

    model = onnx.load(str(path))
    kept = {p.key: p.value for p in model.metadata_props if p.key not in props}
    del model.metadata_props[:]
    for key, value in {**kept, **props}.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))


def metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file."""
    import onnx

    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


@dataclass(frozen=True)
class ParityReport:
    """Torch-vs-ONNX agreement on one batch.

    Attributes:
        max_abs_diff: max |logit_torch − logit_onnx| over the batch.
        argmax_agreement: fraction of rows whose argmax agrees (1.0 required).
        n: number of inputs compared.
        atol: tolerance used.
    """

    max_abs_diff: float
    argmax_agreement: float
    n: int
    atol: float

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.atol and self.argmax_agreement == 1.0


def check_parity(
    model: nn.Module,
    onnx_path: str | os.PathLike[str],
    inputs: np.ndarray | torch.Tensor,
    atol: float = 1e-4,
    threads: int = 2,
) -> ParityReport:
    """Run ``inputs`` ``[N, C, H, W]`` through the eval-mode model and the ONNX file and compare logits.

    Raises:
        BundleError: max |Δlogit| > ``atol`` or any argmax differs (the report is in the message).
    """
    x = inputs.detach().cpu().numpy() if isinstance(inputs, torch.Tensor) else np.asarray(inputs)
    x = np.ascontiguousarray(x, dtype=np.float32)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).cpu().numpy()
    finally:
        model.train(was_training)
    sess = make_session(onnx_path, threads)
    got = sess.run([OUTPUT_NAME], {sess.get_inputs()[0].name: x})[0]
    if got.shape != ref.shape:
        raise BundleError(f"{onnx_path}: ONNX logits shape {got.shape} != torch {ref.shape}")
    report = ParityReport(
        max_abs_diff=float(np.max(np.abs(got - ref))) if ref.size else 0.0,
        argmax_agreement=float(np.mean(got.argmax(1) == ref.argmax(1))) if len(ref) else 1.0,
        n=len(x),
        atol=atol,
    )
    if not report.ok:
        raise BundleError(
            f"{onnx_path}: ONNX/torch parity failed on {report.n} inputs: max |Δlogit| {report.max_abs_diff:.3g} "
            f"(atol {atol:g}), argmax agreement {report.argmax_agreement:.3f}; re-export in timm exportable mode"
        )
    return report
