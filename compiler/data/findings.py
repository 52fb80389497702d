"""What is wrong with a data source, gathered over one pass and reported as ``DataError``.

Problems are aggregated per (file, column, kind): the first row where one
shows is named, with how many rows in all have it, so a file with a
million NaNs gives one line, not a million. At most ``MAX_PROBLEMS`` are
reported, and one more line says how many were left out.

Every message starts with where: ``column `x`, row 17 (line 19)`` (CSV),
``column `x`, row 17`` (Parquet), ``array `x`, row 17`` (.npz), ``feature `x`,
record 17`` (TFRecord). Rows and records are 0-based example indices within
their file (a CSV's header and blank lines are not rows; its ``line`` is the
1-based line in the file). When a source has several files, each message
also names its file. A problem found in several rows ends with how many
(``; 12 rows in all``). ``Problem.path`` is ``(column, row)``, ``(column,)`` for
a whole column, ``(row,)`` for a whole row and ``()`` for the whole file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import FusecError, Problem, Span

#: The most problems one error reports (then one line says how many more there were).
MAX_PROBLEMS = 20
#: What a format calls its columns and rows.
NOUNS: dict[str, tuple[str, str]] = {
    "npz": ("array", "row"),
    "csv": ("column", "row"),
    "parquet": ("column", "row"),
    "tfrecord": ("feature", "record"),
}


class DataError(FusecError):
    """Training data that cannot train the spec: a path, a file, a column or values are wrong."""


@dataclass
class Finding:
    """One kind of problem in one column of one file: where it first shows, and how often."""

    file: Path | None
    column: str | None
    kind: str
    message: str
    hint: str
    row: int | None
    line: int | None
    count: int
    code: str


class Findings:
    """The problems found in one data source, in the order found.

    Args:
        fmt: the source's format (a key of ``NOUNS``).
        several: whether the source has several files (messages then name theirs).
    """

    def __init__(self, fmt: str, several: bool = False) -> None:
        self.column_noun, self.row_noun = NOUNS.get(fmt, ("column", "row"))
        self.several = several
        self._found: dict[tuple[Path | None, str | None, str], Finding] = {}

    def __bool__(self) -> bool:
        return bool(self._found)

    def __len__(self) -> int:
        return len(self._found)

    def add(
        self,
        file: Path | None,
        column: str | None,
        kind: str,
        message: str,
        hint: str = "",
        *,
        row: int | None = None,
        line: int | None = None,
        count: int = 1,
        code: str = "data",
    ) -> None:
        """Record a problem (or, when its kind was seen in that column and file, count it).

        Args:
            file: the file it is in (None: the source as a whole).
            column: the column, feature or array (None: the whole row or file).
            kind: what kind of problem (``nan``, ``range``, ``count``...): the aggregation key.
            message: what is wrong, with what was received (after the location).
            hint: the fix.
            row: the first row (record) it shows in, 0-based within the file.
            line: that row's line in a text file, 1-based.
            count: how many rows have it (added up over calls).
            code: the ``--json`` code: ``data`` or ``file``.
        """
        key = (file, column, kind)
        seen = self._found.get(key)
        if seen is not None:
            seen.count += count
            return
        self._found[key] = Finding(file, column, kind, message, hint, row, line, count, code)

    def has(self, file: Path | None, column: str | None, kind: str) -> bool:
        return (file, column, kind) in self._found

    def where(self, f: Finding) -> str:
        """``column `x`, row 17 (line 19)``, with the file's name first when the source has several."""
        parts = [f"file `{f.file.name}`"] if self.several and f.file is not None else []
        if f.column is not None:
            parts.append(f"{self.column_noun} `{f.column}`")
        if f.row is not None:
            parts.append(f"{self.row_noun} {f.row}" + (f" (line {f.line})" if f.line is not None else ""))
        return ", ".join(parts)

    def problems(self) -> list[Problem]:
        """The findings as problems, the first ``MAX_PROBLEMS`` and a line saying how many more."""
        out = []
        for f in list(self._found.values())[:MAX_PROBLEMS]:
            where = self.where(f)
            text = f"{where}: {f.message}" if where else f.message
            if f.count > 1 and f.row is not None:  # a count of rows: a whole column's or file's problem has none
                text += f"; {f.count} {self.row_noun}s in all"
            path = tuple(p for p in (f.column, f.row) if p is not None)
            # A row of a text file is a place editors and CI can point at: the whole line (one file only,
            # since the error names the pattern or folder when there are several).
            line = Span(f.line, 1, f.line + 1, 1) if f.line is not None and not self.several else None
            out.append(Problem(path, text, f.hint, f.code, span=line))
        extra = len(self._found) - MAX_PROBLEMS
        if extra > 0:
            out.append(Problem((), f"... and {extra} more problems of other kinds or columns", "", "data"))
        return out

    def error(self, file: str) -> DataError:
        """A ``DataError`` for ``file`` (the data file, or the pattern or folder naming several)."""
        return DataError(self.problems(), file=file)
