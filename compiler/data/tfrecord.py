"""TFRecord training data: ``tf.train.Example`` records, one feature per input and trained output.

Each feature holds the example's values flattened row-major, as a
``float_list`` or an ``int64_list`` (every record the same kind for one
feature; a ``bytes_list`` is refused). Files are read with
``TFRecordDataset``, which checks each record's CRC; the check pass parses
a thousand records at a time with ``tf.io.parse_example`` (variable-length
features) and falls back to reading record by record only to say which
record is wrong. Extra features are looked for in the first record of each
thousand. Training parses with fixed-length features, a batch at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import did_you_mean, quote_names
from .check import Chunk, Column
from .fields import Field, Fields
from .findings import Findings
from .tfdata import PARSE_BATCH, cast_flat, shape_batch, tf

_KINDS = {"float_list": "float32", "int64_list": "int64"}


@dataclass
class Layout:
    """What the scan learned of one TFRecord file: its records and each feature's list kind."""

    count: int
    kinds: dict[str, str] = field(default_factory=dict)


def _example(raw: bytes) -> Any:
    """A record as a ``tf.train.Example`` (None when it is not one)."""
    from google.protobuf.message import DecodeError

    try:
        return tf().train.Example.FromString(raw)
    except DecodeError:
        return None


def _first(raw: bytes, path: Path, fields: Fields, findings: Findings) -> dict[str, str]:
    """Each field's list kind, from the file's first record; missing, extra and text features recorded."""
    ex = _example(raw)
    if ex is None:
        findings.add(path, None, "corrupt", "record 0 is not a tf.train.Example", "write tf.train.Example records")
        return {}
    present = dict(ex.features.feature)
    _extras(present, path, 0, fields, findings)
    kinds = {}
    for f in fields:
        feat = present.get(f.name)
        if feat is None:
            near = did_you_mean(f.name, [n for n in present if n not in {g.name for g in fields}])
            hint = f"did you mean {quote_names(near)}?" if near else f"add feature `{f.name}`: {f.wanted()}"
            findings.add(path, f.name, "missing", f"is missing from record 0; it should hold {f.what}", hint, row=0)
            continue
        kind = feat.WhichOneof("kind")
        if kind not in _KINDS:
            what = "text (bytes_list)" if kind == "bytes_list" else "no values"
            findings.add(path, f.name, "dtype", f"holds {what}, but {f.what} takes numbers", "", row=0)
            continue
        kinds[f.name] = kind
    return kinds


def _extras(present: Any, path: Path, row: int, fields: Fields, findings: Findings) -> None:
    wanted = {f.name for f in fields}
    for extra in sorted(set(present) - wanted):
        hint = (
            f"output `{extra}` has no loss, so it takes no labels: drop the feature or give the output a loss"
            if extra in fields.untrained
            else f"the spec's inputs and trained outputs are {quote_names(sorted(wanted))}"
        )
        findings.add(path, extra, "extra", "is not an input nor a trained output of the spec", hint, row=row)


def _parsed(raw: np.ndarray, fields: Sequence[Field], kinds: dict[str, str]) -> dict[str, Column] | None:
    """Parse a batch of records in bulk; None when TensorFlow refuses it (a record to find one by one)."""
    t = tf()
    spec = {f.name: t.io.VarLenFeature(_KINDS[kinds[f.name]]) for f in fields if f.name in kinds}
    try:
        parsed = t.io.parse_example(raw, spec)
    except t.errors.InvalidArgumentError:
        return None
    out = {}
    for name, sparse in parsed.items():
        counts = np.bincount(sparse.indices[:, 0].numpy(), minlength=len(raw)).astype(np.int64)
        out[name] = Column(sparse.values.numpy(), counts, np.arange(len(raw)))
    return out


def _one_by_one(
    raw: np.ndarray, chunk: Chunk, fields: Sequence[Field], kinds: dict[str, str], findings: Findings
) -> None:
    """Read records one at a time to say which is wrong; fill ``chunk.columns`` with the good ones."""
    values: dict[str, list[Any]] = {n: [] for n in kinds}
    counts: dict[str, list[int]] = {n: [] for n in kinds}
    rows: dict[str, list[int]] = {n: [] for n in kinds}
    for i, record in enumerate(raw):
        ex = _example(bytes(record))
        if ex is None:
            findings.add(chunk.file, None, "corrupt", "not a tf.train.Example", row=chunk.start + i)
            continue
        for name, kind in kinds.items():
            feat = ex.features.feature.get(name)
            got = feat.WhichOneof("kind") if feat is not None else kind
            if got != kind:
                text, fix = f"holds a {got}, but record 0 holds a {kind}", f"write every record's `{name}` as a {kind}"
                findings.add(chunk.file, name, "kind", text, fix, row=chunk.start + i)
                continue
            listed = list(getattr(feat, kind).value) if feat is not None else []
            values[name].extend(listed)
            counts[name].append(len(listed))
            rows[name].append(i)
    for name, kind in kinds.items():
        chunk.columns[name] = Column(
            np.asarray(values[name], dtype=_KINDS[kind]), np.asarray(counts[name], np.int64), np.asarray(rows[name])
        )


def _records(path: Path, findings: Findings, start: int) -> Any:
    """The file's records, ``PARSE_BATCH`` at a time, as numpy arrays of bytes; a corrupt record ends them."""
    t = tf()
    batches = iter(t.data.TFRecordDataset(str(path)).batch(PARSE_BATCH))
    at = start
    while True:
        try:
            raw = next(batches).numpy()
        except StopIteration:
            return
        except t.errors.OpError as e:
            message = " ".join(str(e.message).split())[:200]
            text = f"a corrupt record after record {at}: {message}"
            findings.add(path, None, "corrupt", text, "write the file again")
            return
        yield raw
        at += len(raw)


def scan(path: Path, fields: Fields, findings: Findings, sink: Any) -> Layout:
    """Check one TFRecord file against the fields, handing each batch of records to ``sink``."""
    layout = Layout(0)
    for raw in _records(path, findings, 0):
        if layout.count == 0:
            layout.kinds = _first(bytes(raw[0]), path, fields, findings)
        else:
            ex = _example(bytes(raw[0]))
            if ex is not None:
                _extras(dict(ex.features.feature), path, layout.count, fields, findings)
        chunk = Chunk(path, layout.count, len(raw), {})
        columns = _parsed(raw, fields, layout.kinds)
        if columns is None:
            _one_by_one(raw, chunk, fields, layout.kinds, findings)
        else:
            chunk.columns = columns
        layout.count += len(raw)
        sink(chunk)
    return layout


def stream(path: Path, layout: Layout, fields: Sequence[Field], start: int, stop: int) -> Any:
    """Records [start, stop) of a checked TFRecord file as a dataset of chunks ``{name: batch of rows}``."""
    t = tf()
    spec = {}
    for f in fields:
        dtype = _KINDS[layout.kinds[f.name]]
        spec[f.name] = t.io.VarLenFeature(dtype) if f.variable else t.io.FixedLenFeature([f.size], dtype)

    def parse(batch: Any) -> dict[str, Any]:
        parsed = t.io.parse_example(batch, spec)
        out = {}
        for f in fields:
            value = parsed[f.name]
            if f.variable:
                ragged = t.RaggedTensor.from_sparse(value)
                out[f.name] = shape_batch(f, cast_flat(f, ragged.flat_values), ragged.row_lengths())
            else:
                out[f.name] = shape_batch(f, cast_flat(f, value), None)
        return out

    records = t.data.TFRecordDataset(str(path)).skip(start).take(stop - start).batch(PARSE_BATCH)
    return records.map(parse, num_parallel_calls=t.data.AUTOTUNE, deterministic=True)
