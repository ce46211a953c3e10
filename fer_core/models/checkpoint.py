"""Checkpoints (contract 3.3): state_dict + plain-typed metadata, atomic writes, guarded ``weights_only`` loading.

Layout of the saved object (plain types only, so ``torch.load(..., weights_only=True)`` reads it):
``{"format": FORMAT, "meta": CheckpointMeta as a JSON-like dict, "state_dict": {...}, "train_state": {...} | absent}``.
Version policy: a timm *major* version difference is refused (parameter layouts change across majors); a minor or
patch difference only logs a warning, the parameter-name check still guards the layout.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import timm
import torch
from pydantic import ValidationError
from torch import nn

from fer_core import __version__
from fer_core.config import FrozenModel
from fer_core.errors import CheckpointMismatchError
from fer_core.io import atomic_path
from fer_core.models.backbones import create_model
from fer_core.models.config import ModelConfig
from fer_core.models.model import FERModel
from fer_core.taxonomy import FER_CLASSES

log = logging.getLogger(__name__)
FORMAT = "ferflow.checkpoint/1"


class CheckpointMeta(FrozenModel):
    """What a checkpoint says about itself (contract 3.3)."""

    model_name: str
    timm_version: str = timm.__version__
    head: Literal["linear", "arcface"] = "linear"
    classes: tuple[str, ...] = FER_CLASSES
    in_chans: int = 1
    img_size: int = 48
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)
    dataset_sha256: str = ""
    model_config_dict: dict[str, Any] = {}
    config: dict[str, Any] = {}
    code_version: str = __version__
    metrics: dict[str, float] = {}
    epoch: int = -1

    @classmethod
    def for_model(cls, cfg: ModelConfig, **fields: Any) -> CheckpointMeta:
        """Metadata filled from a model config; ``fields`` add or override the rest."""
        base = {
            "model_name": cfg.name,
            "head": cfg.head,
            "in_chans": cfg.in_chans,
            "img_size": cfg.img_size,
            "model_config_dict": cfg.model_dump(mode="json"),
        }
        return cls(**{**base, **fields})


def save_checkpoint(
    path: str | Path, model: nn.Module, meta: CheckpointMeta, train_state: dict[str, Any] | None = None
) -> Path:
    """Write ``model``'s state_dict and ``meta`` atomically (temp file + rename).

    Args:
        path: destination file.
        model: the model whose ``state_dict()`` is stored.
        meta: checkpoint metadata.
        train_state: optional resume state (optimizer, scheduler, epoch, history) made of tensors and plain types.

    Returns:
        The written path.
    """
    payload: dict[str, Any] = {
        "format": FORMAT,
        "meta": meta.model_dump(mode="json"),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    if train_state is not None:
        payload["train_state"] = train_state
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def read_checkpoint(path: str | Path, what: str = "checkpoint") -> dict[str, Any]:
    """The raw saved object, read with ``weights_only=True``.

    Args:
        path: the file.
        what: how the message names it (e.g. ``pretrained_path`` for backbone weights).

    Raises:
        CheckpointMismatchError: missing file, or an object that needs arbitrary unpickling (refused; its first
            line names the file, the object torch refused, and the fix).
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointMismatchError(f"{what} {p} does not exist")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)  # noqa: TID251 - this is the guarded loader
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as e:
        # torch's own message is a page of advice to unpickle anyway: keep only what it refused
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        refused = next((ln for ln in lines if "Unsupported global" in ln), lines[0] if lines else type(e).__name__)
        raise CheckpointMismatchError(
            f"{what} {p} cannot be read with weights_only=True ({refused}). "
            "ferflow never unpickles arbitrary objects: save plain tensors "
            "(torch.save(model.state_dict(), path)) or give a ferflow checkpoint"
        ) from e
    if not isinstance(obj, dict):
        raise CheckpointMismatchError(f"{what} {p} holds a {type(obj).__name__}, expected a dict of tensors")
    return obj


def _describe_foreign(keys: Sequence[str]) -> str:
    if any(k.startswith("features.") for k in keys) and any(k.startswith("classifier.") for k in keys):
        return "a torchvision-style model (features.*/classifier.*)"
    return "an unknown model"


def _check_meta(p: Path, meta: CheckpointMeta, expected: ModelConfig | None, classes: Sequence[str]) -> None:
    if tuple(meta.classes) != tuple(classes):
        raise CheckpointMismatchError(f"checkpoint {p} has classes {list(meta.classes)}, expected {list(classes)}")
    ours, theirs = timm.__version__.split(".")[0], meta.timm_version.split(".")[0]
    if ours != theirs:
        raise CheckpointMismatchError(
            f"checkpoint {p} was written with timm {meta.timm_version}, this is timm {timm.__version__} "
            "(major versions differ); re-export it with a matching timm"
        )
    if meta.timm_version != timm.__version__:
        log.warning("checkpoint %s: timm %s, running %s", p, meta.timm_version, timm.__version__)
    if expected is None:
        return
    want = {"model_name": expected.name, "head": expected.head, "in_chans": expected.in_chans,
            "img_size": expected.img_size}  # fmt: skip
    got = {k: getattr(meta, k) for k in want}
    if got != want:
        diff = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
        raise CheckpointMismatchError(
            f"checkpoint {p} holds {meta.model_name!r} and does not fit the expected model {expected.name!r}: "
            + ", ".join(f"{k}: checkpoint {a!r} vs expected {b!r}" for k, (a, b) in diff.items())
        )


def _check_params(p: Path, state: dict[str, torch.Tensor], model: nn.Module, source: str, target: str) -> None:
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or shapes:
        overlap = len(set(own) & set(state))
        raise CheckpointMismatchError(
            f"checkpoint {p} ({source}) does not fit {target}: parameter names overlap {overlap}/{len(own)}; "
            f"{len(missing)} missing (e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}), "
            f"{len(shapes)} with other shapes (e.g. {shapes[:3]})"
        )


def load_checkpoint(
    path: str | Path, expected: ModelConfig | None = None, classes: Sequence[str] = FER_CLASSES
) -> tuple[FERModel, CheckpointMeta]:
    """Load a checkpoint into a fresh :class:`FERModel` after checking that it fits.

    Args:
        path: checkpoint file (ferflow format, or a bare state_dict whose names match ``expected`` fully).
        expected: the model the caller wants; None trusts the checkpoint's own model config.
        classes: the class order the caller needs.

    Returns:
        ``(model in eval mode, metadata)``.

    Raises:
        CheckpointMismatchError: wrong backbone/head/input spec/classes, a timm major mismatch, a bare state_dict
            without an ``expected`` config, or parameter names/shapes that differ; the message names both sides.
    """
    p = Path(path)
    obj = read_checkpoint(p)
    if obj.get("format") == FORMAT:
        try:
            meta = CheckpointMeta.model_validate(obj["meta"])
        except ValidationError as e:
            raise CheckpointMismatchError(f"checkpoint {p} has invalid metadata: {e}") from e
        _check_meta(p, meta, expected, classes)
        cfg = expected or ModelConfig.model_validate(meta.model_config_dict)
        state, source = obj["state_dict"], f"timm {meta.model_name!r}"
    else:
        keys = [str(k) for k in obj]
        odd = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
        if odd:
            raise CheckpointMismatchError(
                f"checkpoint {p} is neither a ferflow checkpoint nor a state_dict: non-tensor entries {odd[:5]}"
            )
        if expected is None:
            raise CheckpointMismatchError(
                f"checkpoint {p} has no ferflow metadata (looks like {_describe_foreign(keys)}); "
                "pass the expected ModelConfig to load a bare state_dict"
            )
        cfg, state, source = expected, obj, f"bare state_dict of {_describe_foreign(keys)}"
        meta = CheckpointMeta.for_model(cfg, classes=tuple(classes), code_version="unknown")
    model = create_model(cfg.model_copy(update={"pretrained_path": None}))
    _check_params(p, state, model, source, f"timm {cfg.name!r} ({cfg.head} head)")
    model.load_state_dict(state)
    model.eval()
    return model, meta
