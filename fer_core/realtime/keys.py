"""Runtime keys of the realtime runner (live tuning, operator labels) and the scripted-key file of headless runs."""

from __future__ import annotations

import os
from pathlib import Path

from fer_core.errors import ConfigError

# key -> (stabiliser field, direction); the step sizes live in RunnerConfig.
TUNING_KEYS: dict[str, tuple[str, int]] = {
    "a": ("alpha", +1), "z": ("alpha", -1),
    "d": ("delta", +1), "c": ("delta", -1),
    "u": ("unknown_threshold", +1), "j": ("unknown_threshold", -1),
}  # fmt: skip
LABEL_KEYS = tuple("01234567")  # 1..7: operator's true label (class order of the bundle); 0: clear
QUIT_KEYS = ("q", "esc")
ALL_KEYS = (*TUNING_KEYS, *LABEL_KEYS, *QUIT_KEYS)
_LIMITS = {"alpha": (0.01, 1.0), "delta": (0.0, 1.0), "unknown_threshold": (0.0, 1.0)}


def key_from_code(code: int) -> str | None:
    """``cv2.waitKey`` code → key name in :data:`ALL_KEYS`, or ``None``."""
    if code < 0:
        return None
    if code & 0xFF == 27:
        return "esc"
    ch = chr(code & 0xFF).lower()
    return ch if ch in ALL_KEYS else None


def clamp(field: str, value: float) -> float:
    lo, hi = _LIMITS[field]
    return round(min(hi, max(lo, value)), 6)


def read_key_script(path: str | os.PathLike[str]) -> dict[int, list[str]]:
    """Read scripted keys: one ``<frame_idx> <key>`` per line (``#`` comments, blank lines allowed).

    Keys: ``a/z`` α up/down, ``d/c`` δ up/down, ``u/j`` unknown threshold up/down, ``1``-``7`` operator label,
    ``0`` clear label, ``q``/``esc`` quit.

    Raises:
        ConfigError: a missing file or a malformed line (file and line number named).
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"key script {p} does not exist")
    out: dict[int, list[str]] = {}
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        body = line.split("#", 1)[0].strip()
        if not body:
            continue
        parts = body.split()
        if len(parts) != 2 or not parts[0].isdigit() or parts[1].lower() not in ALL_KEYS:
            raise ConfigError(f"{p}:{n}: expected '<frame_idx> <key>' with key in {list(ALL_KEYS)}, got {line!r}")
        out.setdefault(int(parts[0]), []).append(parts[1].lower())
    return out


__all__ = ["ALL_KEYS", "LABEL_KEYS", "QUIT_KEYS", "TUNING_KEYS", "clamp", "key_from_code", "read_key_script"]
