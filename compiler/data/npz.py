"""``.npz`` training data: one array per input and trained output, the first axis the examples.

The archive is read member by member with ``zipfile`` and numpy's ``.npy``
header reader, in chunks of rows, so a large file is never decoded whole
(an array saved in Fortran order is the exception: it is read whole). An
array whose type holds Python objects is refused from its header, before a
byte of it is read: data are never unpickled (what ``np.load(...,
allow_pickle=False)`` promises, without loading anything). Strings,
complex numbers, dates and records are refused too.

A header is checked before any row is read: a negative length, an array
larger than its member's bytes, or one example over ``MAX_ROW_BYTES`` (a
"zip bomb" that inflates to gigabytes from a small file) is refused.

Shapes: array ``x`` has shape ``(examples, *shape)`` for input ``x`` of
shape ``shape``; an input or output of shape ``[1]`` also accepts
``(examples,)``, and sparse class ids ``(examples,)`` or ``(examples, 1)``
for a vector output.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .check import Chunk, Column, Stored, report_extra, report_missing, store
from .fields import Field, Fields
from .findings import Findings
from .tfdata import from_chunks

#: Bytes of one array read at a time.
CHUNK_BYTES = 4 << 20
#: The most bytes one example of one array may hold (a row is read whole).
MAX_ROW_BYTES = 256 << 20
_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
_KINDS = {
    "O": "Python objects",
    "U": "strings",
    "S": "bytes",
    "c": "complex numbers",
    "M": "dates",
    "m": "time deltas",
    "V": "records (a structured dtype)",
}


@dataclass(frozen=True)
class Array:
    """One array of the archive, from its header: member name, dtype, shape, order."""

    member: str
    dtype: np.dtype[Any]
    shape: tuple[int, ...]
    fortran: bool
    stored: int = -1


@dataclass(frozen=True)
class Layout:
    """What the scan learned of one .npz file: its arrays by field name, and its rows."""

    count: int
    arrays: dict[str, Array]


def _header(z: zipfile.ZipFile, member: str) -> Array:
    """An array's header; ``stored`` is the bytes its member holds after the header."""
    with z.open(member) as fp:
        version = np.lib.format.read_magic(fp)
        reader = _HEADERS.get(version)
        if reader is None:
            raise ValueError(f".npy format version {version[0]}.{version[1]} is not supported")
        try:
            shape, fortran, dtype = reader(fp)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile):
            raise
        except Exception as e:  # numpy parses the header's text with tokenize and ast: anything may come out
            raise ValueError(f"its .npy header is not valid ({type(e).__name__})") from e
        stored = z.getinfo(member).file_size - fp.tell()
    return Array(member, dtype, tuple(shape), bool(fortran), stored)


def _fits(field: Field, dims: tuple[int, ...]) -> bool:
    for want in (field.shape, *field.accepts):
        if len(want) == len(dims) and all(w is None or w == d for w, d in zip(want, dims, strict=True)):
            return True
    return False


def _array_problem(field: Field, a: Array) -> tuple[str, str] | None:
    """What is wrong with an array for a field, judged from its header (None: nothing)."""
    kind = a.dtype.kind
    if kind in _KINDS or a.dtype.hasobject:
        what = _KINDS["O"] if a.dtype.hasobject else _KINDS[kind]
        never = " (refused unread: fusec never unpickles data)" if a.dtype.hasobject else ""
        return f"holds {what}, not numbers (dtype {a.dtype}){never}", "save numbers: np.asarray(x, dtype=np.float32)"
    if not a.shape:
        return "is a single value, not one row per example", "stack the examples along the first axis"
    return _size_problem(a) or _dims_problem(field, a)


def _size_problem(a: Array) -> tuple[str, str] | None:
    """A header whose shape cannot be: a negative length, more bytes than stored, a row too large."""
    again = "write the file again with np.savez"
    if any(d < 0 for d in a.shape):
        return f"its header's shape {a.shape} is invalid (a negative length)", again
    per = row_bytes(a)
    if a.stored >= 0 and per * a.shape[0] > a.stored:
        text = f"its header declares shape {a.shape} ({per * a.shape[0]} bytes), but the archive holds {a.stored}"
        return text, again
    if per > MAX_ROW_BYTES:
        text = f"one example holds {per} bytes (shape {a.shape[1:]}), over the limit of {MAX_ROW_BYTES >> 20} MiB"
        return text, "split long examples, or store smaller ones"
    return None


def _dims_problem(field: Field, a: Array) -> tuple[str, str] | None:
    dims = a.shape[1:]
    if not _fits(field, dims):
        return (
            f"has shape {a.shape}: each example is {list(dims)}, but {field.what} takes {field.shape_text()}",
            field.shape_hint(),
        )
    return None


def _arrays(z: zipfile.ZipFile, path: Path, fields: Fields, findings: Findings) -> dict[str, Array]:
    """The arrays the fields need, checked from their headers; every problem recorded."""
    members = {m[:-4] if m.endswith(".npy") else m: m for m in z.namelist()}
    wanted = {f.name for f in fields}
    for extra in sorted(set(members) - wanted):
        report_extra(extra, path, fields, findings, "array")
    found: dict[str, Array] = {}
    for f in fields:
        if f.name not in members:
            report_missing(f, members, path, fields, findings, "array")
            continue
        try:
            a = _header(z, members[f.name])
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
            findings.add(path, f.name, "corrupt", f"cannot be read: {e}", "write the file again with np.savez")
            continue
        problem = _array_problem(f, a)
        if problem is not None:
            findings.add(path, f.name, "shape", *problem)
        else:
            found[f.name] = a
    rows = {name: a.shape[0] for name, a in found.items()}
    if rows and len(set(rows.values())) > 1:
        first = next(iter(rows))
        for name, n in rows.items():
            if n != rows[first]:
                findings.add(
                    path, name, "rows", f"has {n} rows, but `{first}` has {rows[first]}", "one row per example"
                )
        return {}  # rows are read only when every array has as many
    return found


def row_bytes(a: Array) -> int:
    """Bytes of one row of an array."""
    return math.prod(a.shape[1:]) * a.dtype.itemsize


def read_rows(z: zipfile.ZipFile, a: Array, start: int, stop: int, step: int) -> Iterator[tuple[int, np.ndarray]]:
    """Rows [start, stop) of an array, ``step`` rows at a time (an array in Fortran order is read whole)."""
    per = row_bytes(a)
    with z.open(a.member) as fp:
        _HEADERS[np.lib.format.read_magic(fp)](fp)
        if a.fortran:
            whole = np.frombuffer(fp.read(per * a.shape[0]), a.dtype).reshape(a.shape, order="F")
            for at in range(start, stop, step):
                yield at, np.ascontiguousarray(whole[at : min(at + step, stop)])
            return
        if start:
            fp.seek(fp.tell() + start * per)
        for at in range(start, stop, step):
            n = min(step, stop - at)
            data = fp.read(n * per)
            if len(data) != n * per:
                raise EOFError(f"array `{a.member}` ends after {at + len(data) // max(per, 1)} of {a.shape[0]} rows")
            yield at, np.frombuffer(data, a.dtype).reshape(n, *a.shape[1:])


def _step(arrays: Sequence[Array]) -> int:
    """Rows per chunk: about ``CHUNK_BYTES`` of all the arrays together."""
    return max(1, CHUNK_BYTES // max(1, sum(row_bytes(a) for a in arrays)))


def scan(path: Path, fields: Fields, findings: Findings, sink: Any) -> Layout:
    """Check one .npz file against the fields, handing each chunk of rows to ``sink``.

    Returns:
        The file's layout (its rows and arrays), for ``stream``.
    """
    try:
        with zipfile.ZipFile(path) as z:
            arrays = _arrays(z, path, fields, findings)
            count = next(iter(arrays.values())).shape[0] if arrays else 0
            for f in fields:
                a = arrays.get(f.name)
                if a is None:
                    continue
                for at, block in read_rows(z, a, 0, count, _step([a])):
                    sink(Chunk(path, at, len(block), {f.name: Column.dense(block)}))
            return Layout(count, arrays)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as e:
        findings.add(path, None, "corrupt", f"not a readable .npz archive: {e}", "write it again with np.savez")
        return Layout(0, {})


def stream(path: Path, layout: Layout, fields: Sequence[Field], start: int, stop: int) -> Any:
    """Rows [start, stop) of a checked .npz file as a dataset of chunks ``{name: batch of rows}``."""

    def chunks() -> Iterator[dict[str, Stored]]:
        arrays = [layout.arrays[f.name] for f in fields]
        step = _step(arrays)
        with zipfile.ZipFile(path) as z:
            readers = [read_rows(z, a, start, stop, step) for a in arrays]
            for blocks in zip(*readers, strict=True):
                yield {f.name: _store(f, b) for f, (_, b) in zip(fields, blocks, strict=True)}

    return from_chunks(fields, chunks)


def _store(field: Field, block: np.ndarray) -> Stored:
    col = Column.dense(block)
    return store(field, col.values, col.counts)
