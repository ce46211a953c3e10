"""A progress bar for long library loops (rich on a terminal, a log line per 10% elsewhere)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

from prefect.logging import get_run_logger


@contextlib.contextmanager
def progress_bar(description: str) -> Iterator[Callable[[str, int, int], None]]:
    """Yield a ``progress(stage, done, total)`` callback for fer_core loops."""
    if sys.stdout.isatty():
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            ids: dict[str, int] = {}

            def update(stage: str, done: int, total: int) -> None:
                if stage not in ids:
                    ids[stage] = bar.add_task(f"{description}: {stage}", total=total)
                bar.update(ids[stage], completed=done, total=total)

            yield update
        return
    logger = get_run_logger()
    last: dict[str, int] = {}

    def log(stage: str, done: int, total: int) -> None:
        decile = 10 * done // max(total, 1)
        if decile > last.get(stage, -1):
            last[stage] = decile
            logger.info("%s: %s %d/%d (%d%%)", description, stage, done, total, 100 * done // max(total, 1))

    yield log
