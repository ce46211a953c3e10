"""One way to refuse: ferflow's own errors become a short message on stderr and one exit code per class of error."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import typer
import typer.core
from typer import Abort, Exit

try:  # typer >= 0.2x vendors click
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - older typer on click
    from click.exceptions import ClickException

from fer_core.errors import (
    BundleError,
    CheckpointMismatchError,
    FerError,
    IntegrityMismatchError,
    MissingUpstreamError,
    ServerUnreachableError,
    printable,
)

EXIT_OK = 0
EXIT_BUG = 1
EXIT_BAD_INPUT = 2
EXIT_INTEGRITY = 3
EXIT_MISSING_UPSTREAM = 4
EXIT_UNREACHABLE = 5

# (code, what it means, the errors behind it): the --help epilog and the README print this table.
EXIT_TABLE: tuple[tuple[int, str, str], ...] = (
    (EXIT_OK, "success", "validate: the index matches its manifest and files"),
    (EXIT_BUG, "a bug: the traceback is printed; please report it", "any other exception"),
    (EXIT_BAD_INPUT, "bad input or usage: an option, config, data file or row",
     "ConfigError, DataIntegrityError, GateFailedError, other FerError, a path the OS refuses"),
    (EXIT_INTEGRITY, "integrity failure: an index, bundle or checkpoint no longer matches its manifest or files",
     "IntegrityMismatchError, BundleError, CheckpointMismatchError; validate finding problems"),
    (EXIT_MISSING_UPSTREAM, "an earlier stage's output is missing: run that stage first", "MissingUpstreamError"),
    (EXIT_UNREACHABLE, "a server is unreachable or could not be started", "ServerUnreachableError, StackError"),
)  # fmt: skip
_KIND = {EXIT_BAD_INPUT: "bad input", EXIT_INTEGRITY: "integrity failure", EXIT_MISSING_UPSTREAM: "missing upstream",
         EXIT_UNREACHABLE: "server unreachable"}  # fmt: skip
MAX_LINES = 40  # a gate failure lists every bad row; a terminal shows the first ones and says how many more


def exit_table_text() -> str:
    """The exit codes as aligned lines (``--help`` epilog)."""
    return "\n".join(f"{code}  {meaning}" for code, meaning, _ in EXIT_TABLE)


def exit_code(err: BaseException) -> int:
    """The exit code of a refusal (see :data:`EXIT_TABLE`); :data:`EXIT_BUG` for anything that is not one."""
    if isinstance(err, MissingUpstreamError):
        return EXIT_MISSING_UPSTREAM
    if isinstance(err, ServerUnreachableError) or type(err).__name__ == "StackError":
        return EXIT_UNREACHABLE
    if isinstance(err, IntegrityMismatchError | BundleError | CheckpointMismatchError):
        return EXIT_INTEGRITY
    if isinstance(err, FerError) or _is_input_error(err):
        return EXIT_BAD_INPUT
    return EXIT_BUG


def _is_input_error(err: BaseException) -> bool:
    """Errors that, reaching the command line, come from what the user gave rather than from a bug."""
    from pydantic import ValidationError

    if isinstance(err, ValidationError):  # a config model built from options or a profile
        return True
    if type(err).__module__.startswith("yaml"):  # a profile that is not YAML
        return True
    # the OS refusing a path the user named (permission, a file where a folder is expected, a full disk)
    return isinstance(err, OSError) and getattr(err, "filename", None) is not None


def find_refusal(err: BaseException) -> BaseException | None:
    """The refusal behind ``err``: itself, an explicit cause (``raise ... from e``) or a member of an exception group.

    Prefect re-raises a failed flow's original exception, and Ray's task errors are instances of their cause's class,
    so the chain of causes covers both. Implicit contexts are not followed: an error raised while handling a refusal
    is a bug of its own.
    """
    seen: set[int] = set()
    todo = [err]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, FerError) or _is_input_error(e):
            return e
        if isinstance(e, BaseExceptionGroup):
            todo.extend(e.exceptions)
        if e.__cause__ is not None:
            todo.append(e.__cause__)
    return None


def refusal_text(err: BaseException, command: str, max_lines: int = MAX_LINES) -> str:
    """The message a person reads: the command, the class of refusal, the error's own lines (escaped), the exit code.

    Args:
        err: the refusal (:func:`find_refusal`).
        command: e.g. ``"ferflow ingest"``.
        max_lines: message lines shown; the rest are counted, never dropped silently.
    """
    code = exit_code(err)
    if isinstance(err, OSError) and not isinstance(err, FerError):
        body = f"{err.strerror or err}: {err.filename}" + (f" -> {err.filename2}" if err.filename2 else "")
    elif type(err).__name__ == "ValidationError":
        body = f"invalid value(s):\n{err}"
    else:
        body = str(err) or type(err).__name__
    lines = [printable(line) for line in body.splitlines()] or [""]
    if len(lines) > max_lines:
        lines = [*lines[:max_lines], f"... and {len(lines) - max_lines} more lines (--debug prints them all)"]
    head = f"{command}: refused ({_KIND[code]}, {type(err).__name__}): {lines[0]}"
    tail = f"[exit {code}; `ferflow --debug ...` shows the traceback]"
    return "\n".join([head, *lines[1:], tail])


class _QuietRefusals(logging.Filter):
    """Prefect logs a failed flow's exception with its traceback; for a refusal the message line is enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None and find_refusal(record.exc_info[1]) is not None:
            record.exc_info, record.exc_text = None, None
        return True


_FILTER = _QuietRefusals()


def quiet_prefect_refusals() -> None:
    """Drop tracebacks of refusals from Prefect's flow- and task-run loggers (call once Prefect is imported)."""
    for name in ("prefect.flow_runs", "prefect.task_runs", "prefect.flow_engine", "prefect.task_engine"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def debug_enabled(ctx: typer.Context | None) -> bool:
    """``ferflow --debug`` or ``FERFLOW_DEBUG=1``."""
    flag = bool(ctx and ctx.find_root().meta.get("ferflow.debug"))
    return flag or os.environ.get("FERFLOW_DEBUG", "") not in ("", "0", "false")


class RefusingGroup(typer.core.TyperGroup):
    """A command group whose sub-commands refuse through :func:`refusal_text` and :func:`exit_code`."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (Exit, ClickException, Abort):
            raise
        except Exception as e:  # noqa: BLE001 - sorted into refusals and bugs below
            found = find_refusal(e)
            if found is None or debug_enabled(ctx):
                raise
            typer.echo(refusal_text(found, _command_name(ctx)), err=True)
            sys.stderr.flush()
            raise Exit(exit_code(found)) from None


def _command_name(ctx: typer.Context) -> str:
    """``ferflow <group> <command>`` whatever the program was called (console script, ``python -m``, a test)."""
    names = [ctx.invoked_subcommand or ""]
    while ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(["ferflow", *[n for n in reversed(names) if n]])
