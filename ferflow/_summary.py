"""What the commands print for people: the ingest's drops and flags, and ``validate``'s problem table."""

from __future__ import annotations

from pathlib import Path

from fer_adapters.findings import ingest_summary
from fer_core.errors import printable

__all__ = ["ingest_summary", "problem_table"]


def problem_table(index: str | Path, problems: list[tuple[str, str]]) -> str:
    """``validate``'s readable result: one line per problem (file, then why), aligned."""
    if not problems:
        return f"index {printable(index)}: OK, it matches its manifest and every file"
    width = min(max(len(printable(p)) for p, _ in problems), 90)
    lines = [f"index {printable(index)}: {len(problems)} problem(s); re-run ingest after fixing or restoring the files",
             f"  {'FILE':<{width}}  PROBLEM"]
    lines += [f"  {printable(p):<{width}}  {printable(r)}" for p, r in problems]
    return "\n".join(lines)
