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


class IntegrityMismatchError(DataIntegrityError):
    """A stored artifact no longer matches its own record: an index vs its manifest or its files, a cache vs its key."""


class MissingUpstreamError(FerError):
    """A stage was run on its own but the output of an earlier stage it needs is not there (name the stage to run)."""


class ServerUnreachableError(FerError):
    """A server ferflow was told to use (Prefect, MLflow, Ray, S3) does not answer at its address."""


def printable(name: object) -> str:
    """``name`` as text safe for one line of a message, a CSV cell or a log.

    Control characters are shown as Python escapes (``\\n``, ``\\x1b``) and the surrogate escapes Python uses for the
    undecodable bytes of a non-UTF-8 file name as ``\\xNN`` (the original byte); everything else is kept.

    Args:
        name: a path, file name or any value (``str()`` is applied first).

    Returns:
        The text unchanged when every character is printable, else its escaped form.
    """
    text = str(name)
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        elif 0xDC80 <= ord(ch) <= 0xDCFF:  # os.fsdecode's surrogateescape of byte 0x80..0xFF
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        else:
            out.append(repr(ch)[1:-1])
    return "".join(out)
