"""The student bundle (contract 3.4): write atomically, verify against its manifest, load for inference.

The runtime path (:func:`verify_bundle`, :func:`load_bundle`, :class:`BundleModel`) uses onnxruntime, OpenCV, numpy
and pydantic only — never torch — so any program can run a bundle.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnxruntime as ort
from pydantic import ValidationError

from fer_core.config import FrozenModel
from fer_core.errors import BundleError, ConfigError, FerError, printable
from fer_core.export.calibration import CalibrationSpec, calibrated_softmax, read_calibration
from fer_core.export.session import check_model_classes, make_session
from fer_core.io import sha256_file
from fer_core.preprocess import PreprocessSpec, preprocess_face

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
REQUIRED = ("model.onnx", "calibration.json", "preprocess.json", "model_card.md")
OPTIONAL = ("stabilizer.json",)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class FileEntry(FrozenModel):
    sha256: str
    size: int


class BundleManifest(FrozenModel):
    """``manifest.json``: the bundle format version and SHA-256 + size of every other file."""

    format_version: Literal[1] = FORMAT_VERSION
    files: dict[str, FileEntry]


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode("utf-8")


def write_bundle(
    out_dir: str | os.PathLike[str],
    onnx_path: str | os.PathLike[str],
    calibration: str | os.PathLike[str] | dict[str, Any],
    spec: PreprocessSpec,
    model_card: str,
    stabilizer: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Assemble a bundle in a temp folder beside ``out_dir``, verify it, then rename it into place.

    Args:
        out_dir: the bundle folder to create.
        onnx_path: the exported model (its input must match ``spec``; its output count the calibration classes).
        calibration: ``calibration.json`` path or its dict (validated).
        spec: the preprocessing spec, stored as ``preprocess.json`` (every field written explicitly).
        model_card: Markdown text (see :func:`fer_core.export.model_card.render_model_card`).
        stabilizer: stabiliser defaults (``StabilizerConfig`` fields), stored as ``stabilizer.json``.
        overwrite: replace an existing ``out_dir`` that is a bundle (see :func:`check_replaceable`); otherwise an
            existing non-empty folder is refused.

    Returns:
        ``out_dir``.

    Raises:
        BundleError: ``out_dir`` exists, or the assembled bundle fails :func:`verify_bundle` (nothing is written).
        ConfigError: ``out_dir`` holds files that are not a bundle's (never replaced, even with ``overwrite``).
    """
    dest = Path(out_dir)
    if dest.exists() and any(dest.iterdir()) and not overwrite:
        raise BundleError(f"{dest} already exists and is not empty; pass overwrite=True or choose another folder")
    check_replaceable(dest)
    calib = read_calibration(calibration)
    payload: dict[str, bytes] = {
        "model.onnx": Path(onnx_path).read_bytes(),
        "calibration.json": _json_bytes(calib.model_dump(mode="json")),
        "preprocess.json": _json_bytes(spec.model_dump(mode="json")),
        "model_card.md": model_card.encode("utf-8"),
    }
    if stabilizer is not None:
        from fer_core.realtime.stabilize import StabilizerConfig

        payload["stabilizer.json"] = _json_bytes(_validated_stabilizer(stabilizer, StabilizerConfig))
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        for name, data in payload.items():
            (tmp / name).write_bytes(data)
        files = {n: FileEntry(sha256=sha256_file(tmp / n), size=len(d)) for n, d in payload.items()}
        (tmp / MANIFEST).write_bytes(_json_bytes(BundleManifest(files=files).model_dump(mode="json")))
        verify_bundle(tmp)
        _swap_into_place(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _validated_stabilizer(obj: dict[str, Any], model: type[FrozenModel]) -> dict[str, Any]:
    try:
        return model.model_validate(obj).model_dump(mode="json")
    except (ValidationError, FerError) as e:
        raise BundleError(f"invalid stabiliser defaults: {e}") from e


def check_replaceable(dest: str | os.PathLike[str], option: str = "the output folder") -> None:
    """Refuse to let a bundle replace anything but nothing, an empty folder, or a bundle.

    A folder counts as a bundle when its ``manifest.json`` is a bundle manifest and every entry in it is that manifest
    or a file it lists (hashes may differ: a stale bundle may be replaced, someone's documents never).

    Args:
        dest: the folder a bundle is about to be written to.
        option: how the user named it (e.g. ``--out``), for the message.

    Raises:
        ConfigError: ``dest`` is a file, or a folder holding anything a bundle does not.
    """
    path = Path(dest)
    if not path.exists() and not path.is_symlink():
        return
    shown = printable(path)
    if path.is_symlink() or not path.is_dir():
        raise ConfigError(f"{option} {shown} is not a folder; give a new folder or one of ferflow's bundles")
    entries = sorted(p.name for p in path.iterdir())
    if not entries:
        return
    listed: set[str] = set()
    try:
        listed = set(BundleManifest.model_validate_json((path / MANIFEST).read_bytes()).files)
    except (OSError, ValueError):
        pass  # not a manifest: every entry below is foreign
    foreign = [printable(n) for n in entries if (n != MANIFEST and n not in listed) or (path / n).is_dir()]
    if MANIFEST not in entries or not listed or foreign:
        shown_foreign = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise ConfigError(f"{option} {shown} is not a ferflow bundle (it holds {shown_foreign or 'no bundle manifest'}"
                          "); it would be replaced, so nothing was written: give a new folder, or move those files "
                          "away")  # fmt: skip


def _swap_into_place(tmp: Path, dest: Path) -> None:
    if not dest.exists():
        os.replace(tmp, dest)
        return
    # a fresh name for the old bundle: a fixed one (".NAME.old") could be someone's folder, deleted below
    old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".old", dir=dest.parent))
    os.replace(dest, old / "bundle")
    try:
        os.replace(tmp, dest)
    except BaseException:
        os.replace(old / "bundle", dest)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError(f"{path}: unreadable JSON ({e})") from e


def _check_manifest(root: Path) -> BundleManifest:
    mpath = root / MANIFEST
    if not mpath.is_file():
        raise BundleError(f"{root}: no {MANIFEST}; this is not a bundle (write it with write_bundle)")
    try:
        manifest = BundleManifest.model_validate(_read_json(mpath))
    except ValidationError as e:
        raise BundleError(f"{mpath}: invalid manifest (format_version must be {FORMAT_VERSION}):\n{e}") from e
    problems: list[str] = []
    unlisted = [n for n in REQUIRED if n not in manifest.files]
    problems += [f"{n}: required file not listed in the manifest" for n in unlisted]
    for name, entry in sorted(manifest.files.items()):
        path = root / name
        if not _SAFE_NAME.match(name) or name == MANIFEST:
            problems.append(f"{name!r}: not an allowed bundle file name")
        elif not path.is_file():
            problems.append(f"{name}: listed in the manifest but missing")
        elif path.stat().st_size != entry.size:
            problems.append(f"{name}: size {path.stat().st_size} != manifest {entry.size}")
        elif sha256_file(path) != entry.sha256:
            problems.append(f"{name}: SHA-256 differs from the manifest (file changed)")
    extra = sorted(p.name for p in root.iterdir() if p.name != MANIFEST and p.name not in manifest.files)
    problems += [f"{n}: file not listed in the manifest" for n in extra]
    if problems:
        raise BundleError(
            f"bundle {root} does not match its manifest; rebuild it with write_bundle:\n  - " + "\n  - ".join(problems)
        )
    return manifest


def _check_spec(root: Path) -> PreprocessSpec:
    path = root / "preprocess.json"
    raw = _read_json(path)
    if not isinstance(raw, dict):
        raise BundleError(f"{path}: must hold a JSON object")
    # Defaults must never fill a gap: a bundle states every preprocessing parameter explicitly.
    missing = sorted(set(PreprocessSpec.model_fields) - set(raw))
    if missing:
        raise BundleError(f"{path}: missing field(s) {missing}; every PreprocessSpec field must be present")
    try:
        return PreprocessSpec.model_validate(raw)
    except (ValidationError, FerError) as e:
        raise BundleError(f"{path}: invalid preprocess spec: {e}") from e


def _check_onnx(root: Path, spec: PreprocessSpec, calib: CalibrationSpec, threads: int) -> ort.InferenceSession:
    sess = make_session(root / "model.onnx", threads)
    inputs, outputs = sess.get_inputs(), sess.get_outputs()
    if len(inputs) != 1 or inputs[0].name != spec.input_name:
        raise BundleError(
            f"{root}/model.onnx: inputs {[i.name for i in inputs]} != preprocess.json input_name {spec.input_name!r}"
        )
    shape = list(inputs[0].shape)
    want = [spec.channels, *spec.size]
    if len(shape) != 4 or any(isinstance(g, int) and g != w for g, w in zip(shape[1:], want, strict=True)):
        raise BundleError(
            f"{root}/model.onnx: input shape {shape} disagrees with preprocess.json [batch, {want[0]}, {want[1]}, "
            f"{want[2]}] (channels, size); re-export the model with this spec"
        )
    k = outputs[0].shape[-1] if outputs and outputs[0].shape else None
    if isinstance(k, int) and k != len(calib.classes):
        raise BundleError(f"{root}/model.onnx: {k} outputs but calibration.json lists {len(calib.classes)} classes")
    check_model_classes(sess, calib.classes, where=f"{root}/model.onnx")  # models exported before it: unchecked
    return sess


@dataclass(frozen=True)
class _Verified:
    manifest: BundleManifest
    spec: PreprocessSpec
    calibration: CalibrationSpec
    stabilizer: dict[str, Any] | None
    session: ort.InferenceSession


def _verify(bundle_dir: str | os.PathLike[str], threads: int) -> _Verified:
    root = Path(bundle_dir)
    if not root.is_dir():
        raise BundleError(f"bundle folder {root} does not exist")
    manifest = _check_manifest(root)
    spec = _check_spec(root)
    calib = read_calibration(root / "calibration.json")
    stab = None
    if "stabilizer.json" in manifest.files:
        from fer_core.realtime.stabilize import StabilizerConfig

        stab = _validated_stabilizer(_read_json(root / "stabilizer.json"), StabilizerConfig)
    return _Verified(manifest, spec, calib, stab, _check_onnx(root, spec, calib, threads))


def verify_bundle(bundle_dir: str | os.PathLike[str]) -> BundleManifest:
    """Check a bundle completely: manifest hashes and sizes, no missing or unlisted file, a complete and valid
    ``preprocess.json``, a valid ``calibration.json``, and an ONNX input/output that agree with both.

    Raises:
        BundleError: any mismatch (the message lists every offending file and the fix).
    """
    return _verify(bundle_dir, threads=1).manifest


def bundle_sha256(bundle_dir: str | os.PathLike[str]) -> str:
    """The bundle's identity: SHA-256 of its ``manifest.json``, which holds the SHA-256 of every other file.

    Raises:
        BundleError: the bundle fails :func:`verify_bundle`.
    """
    verify_bundle(bundle_dir)
    return sha256_file(Path(bundle_dir) / MANIFEST)


class BundleModel:
    """A verified bundle ready for inference (onnxruntime + OpenCV + numpy).

    Attributes:
        path, spec, calibration, manifest, stabilizer (defaults dict or ``None``), classes.
    """

    def __init__(self, path: Path, verified: _Verified, per_class_temperature: bool = False):
        self.path = path
        self.spec = verified.spec
        self.calibration = verified.calibration
        self.manifest = verified.manifest
        self.stabilizer = verified.stabilizer
        self.classes: tuple[str, ...] = verified.calibration.classes
        self._session = verified.session
        self.per_class_temperature = per_class_temperature
        self._temps = verified.calibration.temperatures(per_class_temperature)

    def preprocess(self, crop_bgr: np.ndarray) -> np.ndarray:
        """A face crop (BGR/grey, any size) → ``[C, H, W]`` float32 via :func:`fer_core.preprocess.preprocess_face`."""
        return preprocess_face(crop_bgr, self.spec)

    def predict_logits(self, batch: np.ndarray) -> np.ndarray:
        """``[B, C, H, W]`` float32 → raw logits ``[B, K]``."""
        x = np.ascontiguousarray(batch, dtype=np.float32)
        return self._session.run(["logits"], {self.spec.input_name: x})[0]

    def predict_proba(self, batch: np.ndarray) -> np.ndarray:
        """``[B, C, H, W]`` → calibrated probabilities ``[B, K]`` (global T, or per-class T when loaded so)."""
        return self.calibrate(self.predict_logits(batch))

    def calibrate(self, logits: np.ndarray) -> np.ndarray:
        """Raw logits ``[B, K]`` → calibrated probabilities ``[B, K]`` (``softmax(logits / T)``)."""
        return calibrated_softmax(logits, self._temps)


def load_bundle(
    bundle_dir: str | os.PathLike[str], threads: int = 2, per_class_temperature: bool = False
) -> BundleModel:
    """Verify a bundle (as :func:`verify_bundle`) and open it for inference with ``threads`` intra-op threads.

    Args:
        bundle_dir: the bundle folder.
        threads: ONNX Runtime intra-op threads.
        per_class_temperature: calibrate with ``logits / T_c`` (``per_class_temperature`` of calibration.json)
            instead of the global T.

    Raises:
        BundleError: the bundle fails verification, or per-class T is asked for but absent.
    """
    return BundleModel(Path(bundle_dir), _verify(bundle_dir, threads), per_class_temperature)
