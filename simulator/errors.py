"""User-facing errors: one line naming the file, the field (or row) and the problem.

The CLI catches :class:`FleetsimError` and prints ``str(err)`` to stderr with exit code 2,
without a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class FleetsimError(Exception):
    """Base class of errors caused by user input (never by a bug)."""


class ScenarioError(FleetsimError):
    """A scenario (or a file it names) is invalid.

    ``str()`` gives ``"<file>: <field path>: <problem>"`` on one line.
    """

    def __init__(self, problem: str, *, file: str | None = None, field: str | None = None):
        self.file = file
        self.field = field
        self.problem = " ".join(str(problem).split())  # force a single line
        parts = [p for p in (file, field) if p]
        super().__init__(": ".join([*parts, self.problem]))


class DataError(FleetsimError):
    """A data file (trace, calibration table, profile) is malformed.

    ``str()`` gives ``"<file>: row <n>: column <c>: <problem>"`` (row/column when known).
    """

    def __init__(self, problem: str, *, file: str, row: int | None = None, column: str | None = None):
        self.file = file
        self.row = row
        self.column = column
        self.problem = " ".join(str(problem).split())
        parts = [file]
        if row is not None:
            parts.append(f"row {row}")
        if column is not None:
            parts.append(f"column {column!r}")
        super().__init__(": ".join([*parts, self.problem]))


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice other than ``word`` itself,
    or ``""``."""
    close = difflib.get_close_matches(word, [c for c in choices if c != word], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
