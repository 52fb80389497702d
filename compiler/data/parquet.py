"""Parquet training data: one column per input and trained output, read with pyarrow.

A scalar is a numeric column (integers, floats or booleans). A vector,
image or sequence is a list column (``list``, ``large_list`` or
``fixed_size_list``): either flat, holding the example's values row-major
(4 values for ``[4]``, 6 for ``[3, 2]``), or nested one level per axis
(``[[1, 2], [3, 4], [5, 6]]`` for ``[3, 2]``), each level then as long as
its axis. Nulls are refused, at any level.

The check pass and training read the file in record batches
(``ParquetFile.iter_batches``); training streams them into ``tf.data`` with
``from_generator`` (one yield per record batch), starting
at the row group that holds the first row it needs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .check import Chunk, Column, Stored, report_extra, report_missing, store
from .fields import Field, Fields
from .findings import Findings
from .tfdata import from_chunks

#: Rows per record batch.
BATCH_ROWS = 4096
_LISTS = (pa.types.is_list, pa.types.is_large_list, pa.types.is_fixed_size_list)


@dataclass(frozen=True)
class Layout:
    """What the scan learned of one Parquet file: its rows, and each row group's first row."""

    count: int
    groups: tuple[int, ...]


def _is_list(t: pa.DataType) -> bool:
    return any(test(t) for test in _LISTS)


def _depth(t: pa.DataType) -> tuple[int, pa.DataType]:
    """How many list levels a column type has, and its leaf type."""
    depth = 0
    while _is_list(t):
        depth, t = depth + 1, t.value_type
    return depth, t


def _type_problem(field: Field, t: pa.DataType) -> tuple[str, str] | None:
    """What is wrong with a column's type for a field (None: nothing)."""
    depth, leaf = _depth(t)
    if not (pa.types.is_integer(leaf) or pa.types.is_floating(leaf) or pa.types.is_boolean(leaf)):
        return f"holds {leaf} values, not numbers ({t}), but {field.what} takes numbers", "store numbers"
    ranks = {len(s) for s in (field.shape, *field.accepts)}
    if depth == 0 and (field.size > 1 or field.variable):
        return (
            f"holds one number per row, but {field.what} takes {field.shape_text()}",
            "store each example as a list of its values (flat, row-major) or as nested lists",
        )
    if depth > 1 and depth not in ranks:
        return (
            f"holds lists nested {depth} deep ({t}), but {field.what} takes {field.shape_text()}",
            "nest one level per axis, or store the values flat (one list per example, row-major)",
        )
    return None


def _levels(arr: pa.Array, n: int) -> tuple[pa.Array, np.ndarray, list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """Unnest a column: (leaf values, each leaf's row, per level (lengths, each entry's row), rows with nulls)."""
    owner = np.arange(n)
    levels = []
    null_rows = [owner[np.asarray(arr.is_null(), bool)]]
    while _is_list(arr.type):
        lengths = np.asarray(pc.list_value_length(arr).fill_null(0), np.int64)
        levels.append((lengths, owner))
        arr = arr.flatten()
        owner = np.repeat(owner, lengths)
        null_rows.append(owner[np.asarray(arr.is_null(), bool)])
    return arr, owner, levels, np.unique(np.concatenate(null_rows))


def to_column(field: Field, arr: pa.Array, n: int) -> tuple[Column, np.ndarray, np.ndarray]:
    """A column of ``n`` rows as values: (the column of good rows, rows with nulls, rows whose nesting is wrong)."""
    leaf, owner, levels, nulls = _levels(arr, n)
    bad = np.zeros(n, bool)
    bad[nulls] = True
    nested = np.zeros(n, bool)
    if len(levels) > 1:
        for (lengths, rows), dim in zip(levels, field.shape, strict=False):
            if dim is not None:
                nested[rows[lengths != dim]] = True
    bad |= nested
    if leaf.null_count:  # their rows are refused; any value keeps the arrays aligned
        leaf = leaf.fill_null(pa.scalar(0, pa.int8()).cast(leaf.type))
    values = leaf.to_numpy(zero_copy_only=False)
    counts = np.bincount(owner, minlength=n).astype(np.int64)
    if bad.any():
        keep = ~bad[owner]
        values, counts = values[keep], counts[~bad]
    return Column(values, counts, np.flatnonzero(~bad)), nulls, np.flatnonzero(nested & ~np.isin(np.arange(n), nulls))


def _columns(pf: pq.ParquetFile, path: Path, fields: Fields, findings: Findings) -> list[Field]:
    """The fields whose column is there with a usable type; missing, extra and mistyped columns recorded."""
    schema = pf.schema_arrow
    names = list(schema.names)
    wanted = {f.name for f in fields}
    for extra in [n for n in names if n not in wanted]:
        report_extra(extra, path, fields, findings, "column")
    usable = []
    for f in fields:
        if f.name not in names:
            report_missing(f, names, path, fields, findings, "column")
            continue
        # A file without rows may not know its columns' types (pandas writes null columns): it is just empty.
        problem = _type_problem(f, schema.field(f.name).type) if pf.metadata.num_rows else None
        if problem is not None:
            findings.add(path, f.name, "dtype", *problem)
        else:
            usable.append(f)
    return usable


def _record(path: Path, f: Field, start: int, rows: np.ndarray, kind: str, message: str, findings: Findings) -> None:
    if len(rows):
        findings.add(path, f.name, kind, message, row=start + int(rows[0]), count=len(rows))


def scan(path: Path, fields: Fields, findings: Findings, sink: Any) -> Layout:
    """Check one Parquet file against the fields, handing each record batch to ``sink``."""
    count = 0
    try:
        pf = pq.ParquetFile(path)
        groups = tuple(pf.metadata.row_group(i).num_rows for i in range(pf.metadata.num_row_groups))
        usable = _columns(pf, path, fields, findings)
        for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=[f.name for f in usable]):
            chunk = Chunk(path, count, batch.num_rows, {})
            for f in usable:
                col, nulls, nested = to_column(f, batch.column(f.name), batch.num_rows)
                _record(path, f, count, nulls, "null", "an empty value (null)", findings)
                what = f"nested lists whose lengths do not match {f.shape_text()}, the shape of {f.what}"
                _record(path, f, count, nested, "nesting", what, findings)
                chunk.columns[f.name] = col
            count += batch.num_rows
            sink(chunk)
        return Layout(count, groups)
    except (pa.ArrowException, OSError) as e:
        findings.add(path, None, "corrupt", f"not a readable Parquet file (after row {count}): {e}")
        return Layout(count, ())


def stream(path: Path, layout: Layout, fields: Sequence[Field], start: int, stop: int) -> Any:
    """Rows [start, stop) of a checked Parquet file as a dataset of chunks ``{name: batch of rows}``."""
    firsts = np.concatenate([[0], np.cumsum(layout.groups, dtype=np.int64)])
    first_group = int(np.searchsorted(firsts, start, side="right")) - 1
    last_group = int(np.searchsorted(firsts, stop, side="left"))
    names = [f.name for f in fields]

    def chunks() -> Iterator[dict[str, Stored]]:
        pf = pq.ParquetFile(path)
        at = int(firsts[first_group])
        groups = list(range(first_group, last_group))
        for batch in pf.iter_batches(batch_size=BATCH_ROWS, row_groups=groups, columns=names):
            a, b = max(start - at, 0), min(stop - at, batch.num_rows)
            at += batch.num_rows
            if a >= b:
                continue
            part = batch.slice(a, b - a)
            out = {}
            for f in fields:
                col = to_column(f, part.column(f.name), part.num_rows)[0]
                out[f.name] = store(f, col.values, col.counts)
            yield out

    return from_chunks(fields, chunks)
