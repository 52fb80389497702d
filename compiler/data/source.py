"""Opening training data: every file read and checked once, then a ``Source`` to stream examples from.

``open_data`` resolves the argument to files (``paths.resolve``), hashes
them, and runs the format's check pass over every row, handing each parsed
chunk to the value checks. Data that pass and decode to at most
``CACHE_BYTES`` are kept in memory (and later fed with
``from_tensor_slices``); larger data are streamed from the files by the
format's own reader each epoch, never held whole.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from . import csvtext, npz, parquet, tfrecord
from .check import Chunk, Stored, check_chunk
from .fields import Field, Fields
from .findings import DataError, Findings
from .paths import digest, resolve
from .tfdata import PARSE_BATCH, tf, to_tensor, to_xy

#: Decoded data up to this size are kept in memory after the check; larger data stream from the files.
CACHE_BYTES = 64 << 20
#: Each format's reader: ``scan(path, fields, findings, sink) -> layout`` and ``stream(path, layout, fields, a, b)``.
FORMATS: dict[str, ModuleType] = {"npz": npz, "csv": csvtext, "parquet": parquet, "tfrecord": tfrecord}


@dataclass(frozen=True)
class FileInfo:
    """One file of a source: its path and what its reader learned (``layout.count`` rows)."""

    path: Path
    layout: Any

    @property
    def count(self) -> int:
        return int(self.layout.count)


class _Cache:
    """The sink of the check pass: checks each chunk, and keeps the values while they fit in ``limit`` bytes."""

    def __init__(self, fields: Fields, findings: Findings, limit: int) -> None:
        self.fields, self.findings, self.limit = fields, findings, limit
        self.parts: dict[str, list[Stored]] | None = {f.name: [] for f in fields} if limit > 0 else None
        self.nbytes = 0

    def __call__(self, chunk: Chunk) -> None:
        stored = check_chunk(tuple(self.fields), chunk, self.findings)
        if self.parts is None:
            return
        if stored is None:
            self.parts = None
            return
        for name, s in stored.items():
            self.parts[name].append(s)
            self.nbytes += s.nbytes
        if self.nbytes > self.limit:
            self.parts = None

    def arrays(self) -> dict[str, Stored] | None:
        if self.parts is None:
            return None
        out = {}
        for f in self.fields:
            parts = self.parts[f.name]
            empty = np.zeros((0, *(d or 0 for d in f.shape[f.variable :])), f.np_dtype)
            values = np.concatenate([p.values for p in parts]) if parts else empty
            lengths = np.concatenate([p.lengths for p in parts if p.lengths is not None]) if f.variable else None
            out[f.name] = Stored(values, lengths)
        return out


@dataclass(frozen=True, eq=False)
class Source:
    """Checked training data: a range of examples of one or more files, in file order.

    Attributes:
        format: ``npz``, ``csv``, ``parquet`` or ``tfrecord``.
        paths: the files read, in order.
        fields: what the data hold (inputs, then labels).
        sha256: the hash of the data's bytes (for several files: of their
            sorted names and hashes); a split keeps its source's hash.
        files: each file and its layout.
        start: the first example of this view (0-based, over all the files).
        stop: one past its last example.
        given: the data argument as given (the file, pattern or folder).
        cache: the checked values, when they were small enough to keep (else None: streamed).
    """

    format: str
    paths: tuple[Path, ...]
    fields: Fields
    sha256: str
    files: tuple[FileInfo, ...]
    start: int
    stop: int
    given: str
    cache: dict[str, Stored] | None = field(default=None, repr=False)

    @property
    def count(self) -> int:
        """Examples in this view."""
        return self.stop - self.start

    @property
    def cached(self) -> bool:
        """Whether the examples are held in memory (else they stream from the files)."""
        return self.cache is not None

    def split(self, fraction: float) -> tuple[Source, Source]:
        """Split off the last ``fraction`` of the examples for validation, as Keras's ``validation_split`` does.

        The first ``floor(count * (1 - fraction))`` examples train, the rest
        validate, before any shuffling.

        Raises:
            ValueError: ``fraction`` is not between 0 and 1.
            DataError: either part would be empty.
        """
        if not 0 < fraction < 1:
            raise ValueError(f"the validation fraction must lie between 0 and 1, not {fraction}")
        cut = self.start + int(np.floor(self.count * (1.0 - fraction)))
        if cut in (self.start, self.stop):
            raise DataError.single(
                (),
                f"{self.count} examples cannot be split into training and validation at {fraction:g}",
                "give more examples, another --validation-split, or a --validation file",
                "data",
                file=self.given,
            )
        return replace(self, stop=cut), replace(self, start=cut)

    def dataset(self) -> Any:
        """The examples as an unbatched ``tf.data.Dataset`` of ``(x, y)``, in file order.

        ``x`` maps every input's name to a tensor, ``y`` every trained
        output's name, both in the spec's order, each in the field's shape
        and element type.
        """
        ds = to_xy(self.fields, self.chunks()).unbatch()
        if any(f.variable for f in self.fields):  # unbatched ragged rows come as ragged specs: make them tensors
            ds = ds.map(lambda x, y: (dict(x), dict(y)))
        return ds

    def flat_dataset(self, order: np.ndarray | None = None) -> Any:
        """The examples as flat ``{name: tensor}`` elements; ``order`` (held data only) permutes the view."""
        if self.cache is None:
            if order is not None:
                raise ValueError("only data held in memory can be permuted")
            return self.chunks().unbatch()
        tensors = {f.name: self._slice(f, order) for f in self.fields}
        return tf().data.Dataset.from_tensor_slices(tensors)

    def chunks(self) -> Any:
        """The examples in chunks of rows (``{name: batch}``, sizes as the files give them), in file order."""
        if self.cache is not None:
            flat = self.flat_dataset()
            return flat.ragged_batch(PARSE_BATCH) if any(f.variable for f in self.fields) else flat.batch(PARSE_BATCH)
        parts = []
        offset = 0
        for info in self.files:
            a, b = max(self.start - offset, 0), min(self.stop - offset, info.count)
            offset += info.count
            if a < b:
                parts.append(FORMATS[self.format].stream(info.path, info.layout, self.fields, a, b))
        ds = parts[0]
        for part in parts[1:]:
            ds = ds.concatenate(part)
        return ds

    def _slice(self, f: Field, order: np.ndarray | None) -> Any:
        assert self.cache is not None
        stored = self.cache[f.name]
        if stored.lengths is None:
            values = stored.values[self.start : self.stop]
            return values if order is None else values[order]
        ends = np.concatenate([[0], np.cumsum(stored.lengths)])
        part = Stored(stored.values[ends[self.start] : ends[self.stop]], stored.lengths[self.start : self.stop])
        ragged = to_tensor(f, part)
        return ragged if order is None else tf().gather(ragged, order)


def _shape_problems(fields: Iterable[Field], given: str) -> None:
    bad = [f for f in fields if None in f.shape[1:]]
    if bad:
        raise DataError(
            [
                DataError.single(
                    (f.name,),
                    f"{f.where}: data give a variable size only to the first axis (a sequence's length)",
                    "fix every other axis in the spec",
                    "data",
                ).problems[0]
                for f in bad
            ],
            file=given,
        )


def open_data(data: str | os.PathLike[str], fields: Sequence[Field], *, cache_bytes: int = CACHE_BYTES) -> Source:
    """Read and check training data against a spec's fields.

    Args:
        data: a ``.npz``, ``.csv``, ``.parquet`` or TFRecord file, a glob of
            them, or a folder of them.
        fields: what the spec expects (``expected_fields``).
        cache_bytes: keep the checked data in memory when they decode to at
            most this many bytes (0: always stream from the files).

    Returns:
        The whole source, ready to split and stream.

    Raises:
        DataError: every problem found (at most ``findings.MAX_PROBLEMS``,
            then a count), each naming the file, the column and the row.
    """
    given = os.fspath(data)
    fields = fields if isinstance(fields, Fields) else Fields(fields)
    _shape_problems(fields, given)
    paths, fmt = resolve(given)
    sha = digest(paths, given)
    findings = Findings(fmt, several=len(paths) > 1)
    cache = _Cache(fields, findings, cache_bytes)
    reader = FORMATS[fmt]
    files = tuple(FileInfo(p, reader.scan(p, fields, findings, cache)) for p in paths)
    total = sum(f.count for f in files)
    if total == 0 and not findings:
        what = "the file holds no examples" if len(paths) == 1 else f"none of the {len(paths)} files holds an example"
        findings.add(None, None, "empty", what, "training needs at least one example")
    if findings:
        raise findings.error(str(paths[0]) if len(paths) == 1 else given)
    return Source(fmt, paths, fields, sha, files, 0, total, given, cache.arrays())
