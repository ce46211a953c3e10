"""Error hierarchy: every message names the file/row/value, what is allowed, and the fix."""

from __future__ import annotations


class FerError(Exception):
    """Base class of every error ferflow raises on purpose."""


class ConfigError(FerError, ValueError):
    """A configuration value is invalid (unknown name, out-of-range number, missing field)."""


class DataIntegrityError(FerError):
    """Input data is malformed: a bad row, a missing file, misaligned logits, a manifest mismatch.

    Attributes:
        problems: one ``(where, reason)`` pair per offending item (file/row and why), never truncated.
    """

    def __init__(self, message: str, problems: list[tuple[str, str]] | None = None):
        self.problems = list(problems or [])
        if self.problems:
            shown = "\n".join(f"  - {where}: {reason}" for where, reason in self.problems[:20])
            more = f"\n  ... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
            message = f"{message}\n{shown}{more}"
        super().__init__(message)


class CheckpointMismatchError(FerError):
    """A checkpoint does not fit the model it is offered to (backbone, classes, input spec, parameter names)."""


class GateFailedError(FerError):
    """A quality or acceptance gate failed; nothing was written."""


class BundleError(FerError):
    """A student bundle is incomplete, tampered with, or inconsistent."""
