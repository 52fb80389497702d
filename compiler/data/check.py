"""Value checks shared by every format: counts, NaN and infinity, whole numbers, ranges for the loss.

A reader turns each chunk of a file into one ``Column`` per field: the
values of the rows it could parse, flattened row-major, with how many values
each row had. ``check_chunk`` runs the field's rules over them (a table of
small handlers, ``CHECKS``), records what it finds in ``Findings`` and, while
nothing is wrong, returns the values in the field's shape and element type
(``Stored``), ready to cache or to stream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import did_you_mean, quote_names
from .fields import RULE_TEXT, Field, Fields
from .findings import Findings

#: The range of each integer element type. int64 values read from text go through float64, exact to 2**53.
_INT_RANGE: Mapping[str, tuple[int, int]] = {
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint8": (0, 255),
    "bool": (0, 1),
}
_EXACT_FLOAT = 2**53


@dataclass
class Column:
    """One field's values in one chunk.

    Attributes:
        values: every value of the rows that parsed, flattened row-major, in row order.
        counts: how many values each of those rows has.
        rows: the chunk-relative index of each of those rows.
    """

    values: np.ndarray
    counts: np.ndarray
    rows: np.ndarray

    @classmethod
    def dense(cls, array: np.ndarray) -> Column:
        """A column from an array of shape (rows, ...), one row per example."""
        n = len(array)
        per = int(np.prod(array.shape[1:], dtype=np.int64))
        return cls(array.reshape(-1), np.full(n, per, dtype=np.int64), np.arange(n))


@dataclass
class Chunk:
    """Consecutive rows of one file, parsed.

    Attributes:
        file: the file.
        start: the file's 0-based index of the chunk's first row.
        size: how many rows the chunk has (parsed or not).
        columns: one column per field present in the file.
        lines: each row's 1-based line in a text file (None for other formats).
    """

    file: Path
    start: int
    size: int
    columns: dict[str, Column]
    lines: np.ndarray | None = None


@dataclass
class Stored:
    """One field's checked values in its shape and element type.

    Attributes:
        values: (rows, *shape) for a fixed shape; (steps, *shape[1:]) for a variable first axis.
        lengths: each row's number of steps (variable first axis), else None.
    """

    values: np.ndarray
    lengths: np.ndarray | None = None

    @property
    def rows(self) -> int:
        return len(self.lengths) if self.lengths is not None else len(self.values)

    @property
    def nbytes(self) -> int:
        return int(self.values.nbytes) + (int(self.lengths.nbytes) if self.lengths is not None else 0)


# --- value rules: each gives the values it refuses, and what to say of the first one ----------

Check = Callable[[Field, np.ndarray], np.ndarray]


def _nonfinite(f: Field, v: np.ndarray) -> np.ndarray:
    return ~np.isfinite(v) if v.dtype.kind == "f" else np.zeros(len(v), bool)


def _fraction(f: Field, v: np.ndarray) -> np.ndarray:
    return v != np.trunc(v) if v.dtype.kind == "f" else np.zeros(len(v), bool)


def _int_range(f: Field, v: np.ndarray) -> np.ndarray:
    low, high = _INT_RANGE.get(f.dtype, (-(2**63), 2**63 - 1))
    if v.dtype.kind == "f":
        high, low = min(high, _EXACT_FLOAT), max(low, -_EXACT_FLOAT)
    elif v.dtype.kind in "ub":
        return v > high if high < 2**63 - 1 else v > np.uint64(high)
    return (v < low) | (v > high)


def _below(f: Field, v: np.ndarray) -> np.ndarray:
    """Ids or class ids outside [0, high) (the loss's ``ignore_class`` allowed)."""
    bad = v < 0
    if f.high is not None:
        bad |= v >= f.high
    if f.ignore is not None:
        bad &= v != f.ignore
    return bad


def _unit(f: Field, v: np.ndarray) -> np.ndarray:
    return (v < 0) | (v > 1)


def _signs(f: Field, v: np.ndarray) -> np.ndarray:
    return ~np.isin(v, (-1, 0, 1))


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e16 else f"{x:g}"


def _say_nonfinite(f: Field, x: float) -> tuple[str, str]:
    return f"NaN or infinity ({_num(x)}), but {f.what} needs finite numbers", "fill in or drop those rows"


def _say_fraction(f: Field, x: float) -> tuple[str, str]:
    return (
        f"{_num(x)} is not a whole number, but {f.what} is {f.dtype}",
        'round the values, or declare the input "dtype": "float32"' if f.role == "input" else "",
    )


def _say_int_range(f: Field, x: float) -> tuple[str, str]:
    low, high = _INT_RANGE.get(f.dtype, (0, 0))
    if f.dtype == "int64":
        return f"{_num(x)} does not fit {f.what} (int64 is read exactly from text up to 2**53)", "use .npz or Parquet"
    return f"{_num(x)} does not fit {f.what}: {f.dtype} holds {low} to {high}", ""


def _say_below(f: Field, x: float) -> tuple[str, str]:
    if f.rule == "ids":
        return (
            f"id {_num(x)} is outside [0, {f.high}): Embedding `{f.node}` reads {f.what} with input_dim {f.high}",
            f"raise `input_dim` of `{f.node}`, or map the ids into [0, {f.high})",
        )
    skip = f" (nor {f.ignore}, the ignored class)" if f.ignore is not None else ""
    return (
        f"class id {_num(x)} is outside [0, {f.high}){skip}: output `{f.name}` has {f.high} classes ({f.loss})",
        "class ids count from 0 to the output's width - 1: widen the output, or map the labels",
    )


def _say_unit(f: Field, x: float) -> tuple[str, str]:
    return f"{_num(x)} is outside [0, 1], which {f.loss} needs of {f.what}", f"{f.loss} reads {RULE_TEXT[f.rule]}"


def _say_signs(f: Field, x: float) -> tuple[str, str]:
    text = f"{_num(x)} is not -1, 0 or 1, which {f.loss} needs of {f.what}"
    return text, "hinge losses read labels -1 and 1 (or 0 and 1)"


Say = Callable[[Field, float], tuple[str, str]]
#: Each check: the kind it is reported as, the values it refuses, what to say.
CHECKS: Mapping[str, tuple[str, Check, Say]] = {
    "nan": ("nan", _nonfinite, _say_nonfinite),
    "whole": ("whole", _fraction, _say_fraction),
    "fits": ("range", _int_range, _say_int_range),
    "ids": ("range", _below, _say_below),
    "unit": ("range", _unit, _say_unit),
    "signs": ("range", _signs, _say_signs),
}
#: The checks each value rule runs, in order (a value refused by one is not judged by the next).
RULE_CHECKS: Mapping[str, tuple[str, ...]] = {
    "float": ("nan",),
    "regression": ("nan",),
    "int": ("nan", "whole", "fits"),
    "bool": ("nan", "whole", "fits"),
    "ids": ("nan", "whole", "fits", "ids"),
    "sparse": ("nan", "whole", "fits", "ids"),
    "binary": ("nan", "unit"),
    "categorical": ("nan", "unit"),
    "hinge": ("nan", "signs"),
}


class _Report:
    """Where a chunk's findings go: turns value indices into rows and lines."""

    def __init__(self, chunk: Chunk, column: Column, findings: Findings) -> None:
        self.chunk, self.column, self.findings = chunk, column, findings

    def rows(self, bad_rows: np.ndarray, field: Field, kind: str, message: str, hint: str) -> None:
        """Record rows (indices into ``column.rows``) that have a problem of ``kind``."""
        if not len(bad_rows):
            return
        first = int(self.column.rows[bad_rows[0]])
        line = int(self.chunk.lines[first]) if self.chunk.lines is not None else None
        self.findings.add(
            self.chunk.file,
            field.name,
            kind,
            message,
            hint,
            row=self.chunk.start + first,
            line=line,
            count=len(bad_rows),
        )


def _count_problems(field: Field, col: Column, report: _Report) -> np.ndarray:
    """Rows whose number of values does not fit the field's shape; returns which rows are fine."""
    if field.variable:
        fine = col.counts % field.size == 0
        expected = f"a multiple of {field.size}"
    else:
        fine = col.counts == field.size
        expected = str(field.size)
    bad = np.flatnonzero(~fine)
    if len(bad):
        got = int(col.counts[bad[0]])
        said = "no value (missing or empty)" if got == 0 else f"{got} value{'s' * (got != 1)}"
        report.rows(
            bad,
            field,
            "count",
            f"{said}, expected {expected} for {field.what} (shaped {field.shape_text()})",
            field.shape_hint(),
        )
    return fine


def _one_hot_rows(field: Field, values: np.ndarray, ok_rows: np.ndarray, report: _Report) -> None:
    """Categorical cross-entropy labels whose rows along the class axis do not sum to 1."""
    if field.variable or field.loss not in ("categorical_crossentropy", "categorical_focal_crossentropy"):
        return
    shaped = values.reshape(len(ok_rows), *(d or 1 for d in field.shape))
    sums = shaped.sum(axis=field.axis, dtype=np.float64)  # the loss's axis counts the batch axis, as here
    off = ~np.isclose(sums, 1.0, atol=1e-3).reshape(len(ok_rows), -1).all(axis=1)
    bad = np.flatnonzero(off)
    if len(bad):
        where = np.flatnonzero(~np.isclose(sums[bad[0]], 1.0, atol=1e-3))
        total = float(np.ravel(sums[bad[0]])[where[0]]) if len(where) else float("nan")
        report.rows(
            ok_rows[bad],
            field,
            "sum",
            f"a row of probabilities sums to {total:g}, not 1, in {field.where}",
            "one-hot rows (a single 1) or probabilities that add up to 1; for several labels per example, "
            "use binary_crossentropy with a sigmoid",
        )


def _rows_of_values(col: Column, fine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The values of the rows that are ``fine``, and the index (into ``col.rows``) of each value's row."""
    owner = np.repeat(np.arange(len(col.counts)), col.counts)
    keep = np.repeat(fine, col.counts)
    return col.values[keep], owner[keep]


def check_column(field: Field, chunk: Chunk, col: Column, findings: Findings) -> Stored | None:
    """Check one field's values in one chunk; their stored form while nothing is wrong anywhere.

    Args:
        field: what the values must be.
        chunk: where they come from (file, first row, lines).
        col: the values as parsed.
        findings: where problems go.

    Returns:
        The values in the field's shape and element type, or None once the source has problems.
    """
    report = _Report(chunk, col, findings)
    fine = _count_problems(field, col, report)
    values, owner = _rows_of_values(col, fine) if not fine.all() else (col.values, None)
    ok = np.ones(len(values), bool)
    for name in RULE_CHECKS[field.rule]:
        kind, refuse, say = CHECKS[name]
        bad = refuse(field, values) & ok
        if bad.any():
            ok &= ~bad
            first = int(np.argmax(bad))
            if owner is None:
                owner = np.repeat(np.arange(len(col.counts)), col.counts)
            bad_rows = np.unique(owner[bad])
            report.rows(bad_rows, field, kind, *say(field, values[first].item()))
    if fine.all() and ok.all():
        _one_hot_rows(field, values, np.arange(len(col.counts)), report)
    if findings:
        return None
    return store(field, values, col.counts)


def store(field: Field, values: np.ndarray, counts: np.ndarray) -> Stored:
    """Checked values (flattened, with each row's count) in the field's shape and storage type."""
    cast = values.astype(field.np_dtype, copy=False) if field.dtype != "bool" else values != 0
    if field.variable:
        return Stored(cast.reshape(-1, *field.shape[1:]), (counts // field.size).astype(np.int64))
    return Stored(cast.reshape(len(counts), *field.shape))


def check_chunk(fields: tuple[Field, ...], chunk: Chunk, findings: Findings) -> dict[str, Stored] | None:
    """Check every field present in a chunk; the stored values while the source has no problem."""
    out: dict[str, Stored] = {}
    for field in fields:
        col = chunk.columns.get(field.name)
        if col is None:
            continue
        stored = check_column(field, chunk, col, findings)
        if stored is not None:
            out[field.name] = stored
    return None if findings else out


def report_extra(name: str, path: Path, fields: Fields, findings: Findings, thing: str, row: int | None = None) -> None:
    """A column, array or feature (``thing``) that is neither an input nor a trained output."""
    hint = (
        f"output `{name}` has no loss, so it takes no labels: drop the {thing} or give the output a loss"
        if name in fields.untrained
        else f"the spec's inputs and trained outputs are {quote_names(sorted(f.name for f in fields))}"
    )
    findings.add(path, name, "extra", "is not an input nor a trained output of the spec", hint, row=row)


def report_missing(
    field: Field, present: Iterable[str], path: Path, fields: Fields, findings: Findings, thing: str, where: str = ""
) -> None:
    """A field the file lacks: the nearest unused name, or what to add."""
    wanted = {f.name for f in fields}
    near = did_you_mean(field.name, [n for n in present if n not in wanted])
    hint = f"did you mean {quote_names(near)}?" if near else f"add {thing} `{field.name}`: {field.wanted()}"
    findings.add(path, field.name, "missing", f"is missing{where}; it should hold {field.what}", hint)
