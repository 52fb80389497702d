"""CSV training data: a header row, then one example per line.

The convention:

- The first line names the columns: one per input and one per trained
  output (an output with a ``loss``), in any order. Outputs without a loss
  take no column.
- A scalar (an input or label of shape ``[]`` or ``[1]``) is a plain number:
  ``3``, ``-0.5``, ``1e-3``.
- A vector, image or sequence is ONE column holding its values flattened
  row-major (C order, numpy's ``reshape(-1)``), separated by spaces:
  ``"0.1 0.5 0.2 0.9"`` for shape ``[4]``; 6 values for ``[3, 2]``. Quotes
  are optional (CSV needs none around spaces). A variable-length first axis
  (``[null, 8]``) takes any multiple of 8 values.
- Integer inputs and class ids are written as whole numbers (``3`` or
  ``3.0``); booleans as ``0`` or ``1``. Text is read through float64, so
  int64 values are exact up to 2**53.
- UTF-8, with or without a byte-order mark; ``,`` separates columns;
  blank lines are skipped; a quoted value may not span lines. Lines end
  with ``\n`` or ``\r\n``: a carriage return alone (old Mac endings) is
  refused, as TensorFlow would not split lines there.

Before training, a pass with Python's ``csv`` module checks every line (so
problems carry their line number); training then parses the file in
TensorFlow (``TextLineDataset`` + ``tf.io.decode_csv``), a batch of lines at
a time.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import did_you_mean, quote_names
from .check import Chunk, Column
from .fields import Field, Fields
from .findings import Findings
from .tfdata import PARSE_BATCH, cast_flat, shape_batch, tf

#: Rows parsed at a time by the check pass.
CHUNK_ROWS = 4096
#: The longest cell read (Python's csv module stops at 128 KiB by default: a 64x64 RGB image as text).
FIELD_LIMIT = 1 << 30
#: Characters a number may be written with (what both Python and TensorFlow read the same way).
_NUMBER_CHARS = frozenset("0123456789+-.eE" + "nNaAiIfFtTyY")


@dataclass(frozen=True)
class Layout:
    """What the scan learned of one CSV file.

    Attributes:
        count: its rows (examples).
        columns: its number of columns.
        index: each field's column.
        skip: lines up to the header, the header included (blank lines before it too).
        blank: whether blank lines sit between rows (then streaming filters every line, slower).
    """

    count: int
    columns: int
    index: dict[str, int]
    skip: int = 1
    blank: bool = False


def _numbers(tokens: list[str]) -> np.ndarray | None:
    """The tokens as float64, or None when one is not a number (as TensorFlow reads numbers)."""
    if not _NUMBER_CHARS.issuperset("".join(tokens)):
        return None
    try:
        return np.array(tokens, dtype=np.float64)
    except ValueError:
        return None


def _not_number(token: str) -> bool:
    return _numbers([token]) is None


def _column(field: Field, cells: list[str], rows: np.ndarray, chunk: Chunk, findings: Findings) -> Column:
    """One field's cells (of the chunk's ``rows``) as numbers; cells that are not numbers are recorded."""
    split = [c.split() for c in cells]
    counts = np.fromiter((len(t) for t in split), np.int64, len(split))
    values = _numbers(list(itertools.chain.from_iterable(split)))
    if values is None:
        bad = np.fromiter((any(_not_number(t) for t in ts) for ts in split), bool, len(split))
        first = int(np.argmax(bad))
        token = next(t for t in split[first] if _not_number(t))
        assert chunk.lines is not None
        findings.add(
            chunk.file,
            field.name,
            "number",
            f"`{token[:40]}` is not a number, but {field.what} takes numbers",
            "separate the values of a vector with spaces" if "," in token or ";" in token else "",
            row=chunk.start + int(rows[first]),
            line=int(chunk.lines[rows[first]]),
            count=int(bad.sum()),
        )
        good = ~bad
        rows, counts = rows[good], counts[good]
        values = np.array(list(itertools.chain.from_iterable(s for s, g in zip(split, good, strict=True) if g)))
        values = values.astype(np.float64) if len(values) else np.zeros(0)
    return Column(values, counts, rows)


def _repeated(names: list[str], path: Path, findings: Findings) -> None:
    """Names the header holds more than once, each said once with its columns."""
    seen: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        seen.setdefault(name, []).append(i)
    for name, columns in seen.items():
        if len(columns) > 1:
            listed = ", ".join(map(str, columns[:5])) + (", ..." if len(columns) > 5 else "")
            times = "twice" if len(columns) == 2 else f"{len(columns)} times"
            findings.add(path, name, "repeated", f"appears {times} in the header (columns {listed})", "")


def _header(header: list[str], path: Path, fields: Fields, findings: Findings) -> dict[str, int]:
    """Each field's column; missing, extra and repeated columns recorded."""
    names = [h.strip() for h in header]
    wanted = {f.name for f in fields}
    index: dict[str, int] = {}
    _repeated(names, path, findings)
    for i, name in enumerate(names):
        if name in index:
            continue
        if name in wanted:
            index[name] = i
        else:
            hint = (
                f"output `{name}` has no loss, so it takes no labels: drop the column or give the output a loss"
                if name in fields.untrained
                else f"the spec's inputs and trained outputs are {quote_names(sorted(wanted))}"
            )
            findings.add(path, name, "extra", "is not an input nor a trained output of the spec", hint)
            index[name] = i
    for f in fields:
        if f.name not in index:
            near = did_you_mean(f.name, [n for n in names if n not in wanted])
            hint = f"did you mean {quote_names(near)}?" if near else f"add column `{f.name}`: {f.wanted()}"
            findings.add(path, f.name, "missing", f"is missing from the header; it should hold {f.what}", hint)
    return {f.name: index[f.name] for f in fields if f.name in index}


def _lines(f: Any, path: Path, findings: Findings) -> Iterator[str]:
    """The file's lines as read (newline=""), a carriage return alone at a line's end recorded."""
    for number, line in enumerate(f, 1):
        if line.endswith("\r"):
            findings.add(
                path,
                None,
                "newline",
                f"line {number} ends with a carriage return alone (old Mac line endings)",
                "save the file with \\n or \\r\\n line endings",
            )
        yield line


def _rows(reader: Any, path: Path, width: int, findings: Findings) -> Iterator[tuple[list[str], int]]:
    """The data rows (with their last line) of a reader past the header; ragged and split rows recorded."""
    row_index = 0
    before = reader.line_num
    for row in reader:
        line, first = reader.line_num, before + 1
        before = line
        if not row:
            continue
        if line != first:
            findings.add(
                path,
                None,
                "multiline",
                f"a quoted value spans lines {first} to {line}",
                "one example per line: write vectors as space-separated values on one line",
                row=row_index,
                line=first,
            )
        elif len(row) != width:
            findings.add(
                path, None, "ragged", f"has {len(row)} fields, the header has {width}", "", row=row_index, line=line
            )
        yield row, line
        row_index += 1


def _chunks(reader: Any, path: Path, fields: Fields, index: dict[str, int], width: int, findings: Findings) -> Any:
    """Chunks of parsed rows; yields (chunk, rows in it)."""
    start = 0
    rows = _rows(reader, path, width, findings)
    while batch := list(itertools.islice(rows, CHUNK_ROWS)):
        lines = np.array([line for _, line in batch], dtype=np.int64)
        chunk = Chunk(path, start, len(batch), {}, lines)
        whole = np.array([i for i, (r, _) in enumerate(batch) if len(r) == width], dtype=np.int64)
        for f in fields:
            if f.name in index:
                cells = [batch[i][0][index[f.name]] for i in whole]
                chunk.columns[f.name] = _column(f, cells, whole, chunk, findings)
        yield chunk
        start += len(batch)


def scan(path: Path, fields: Fields, findings: Findings, sink: Any) -> Layout:
    """Check one CSV file against the fields, handing each chunk of rows to ``sink``."""
    count, reader = 0, None
    csv.field_size_limit(max(csv.field_size_limit(), FIELD_LIMIT))  # an image is one cell of megabytes
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(_lines(f, path, findings))
            header = next((r for r in reader if r), None)
            if header is None:
                findings.add(path, None, "empty", "the file is empty: no header row, no examples", "", code="data")
                return Layout(0, 0, {})
            index, skip = _header(header, path, fields, findings), reader.line_num
            for chunk in _chunks(reader, path, fields, index, len(header), findings):
                count += chunk.size
                sink(chunk)
            return Layout(count, len(header), index, skip, reader.line_num != skip + count)
    except UnicodeDecodeError as e:
        near = f" near line {reader.line_num + 1}" if reader is not None else ""
        findings.add(path, None, "corrupt", f"not UTF-8 text{near}: {e.reason}", "save the file as UTF-8")
    except csv.Error as e:
        near = f" at line {reader.line_num}" if reader is not None else ""
        findings.add(path, None, "corrupt", f"not CSV text{near}: {e}")
    except OSError as e:
        findings.add(path, None, "corrupt", f"cannot be read: {e.strerror or e}", code="file")
    return Layout(count, 0, {})


def stream(path: Path, layout: Layout, fields: Sequence[Field], start: int, stop: int) -> Any:
    """Rows [start, stop) of a checked CSV file as chunks ``{name: batch of rows}``, parsed in TensorFlow."""
    t = tf()
    lines = t.data.TextLineDataset(str(path))
    lines = lines.skip(layout.skip)  # the lines the check skipped: header, BOM, blank lines before it
    if layout.blank:  # a filter costs about 10 us a line: only files with blank lines pay it
        lines = lines.filter(lambda s: t.strings.length(s) > 0)
    lines = lines.skip(start).take(stop - start).batch(PARSE_BATCH)
    defaults = [t.constant("", t.string)] * layout.columns

    def parse(batch: Any) -> dict[str, Any]:
        cells = t.io.decode_csv(batch, record_defaults=defaults)
        out = {}
        for f in fields:
            tokens = t.strings.split(cells[layout.index[f.name]])
            flat = cast_flat(f, t.strings.to_number(tokens.flat_values, t.float64))
            out[f.name] = shape_batch(f, flat, tokens.row_lengths())
        return out

    return lines.map(parse, num_parallel_calls=t.data.AUTOTUNE, deterministic=True)
