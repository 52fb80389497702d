"""TFRecord training data: ``tf.train.Example`` records, one feature per input and trained output.

Each feature holds the example's values flattened row-major, as a
``float_list`` or an ``int64_list`` (every record the same kind for one
feature; a ``bytes_list`` is refused). Files are read with
``TFRecordDataset``, which checks each record's CRC; the check pass parses
a thousand records at a time with ``tf.io.parse_example`` (variable-length
features) and falls back to reading record by record only to say which
record is wrong. Before TensorFlow opens a file, its framing is walked in
Python (``frame``): each record's length and the length's masked CRC-32C,
bounded by the file's size, so a corrupt or absurd length is refused
naming the record and its byte offset (TensorFlow would try to allocate
it). Extra features are looked for in the first record of each
thousand. Training parses with fixed-length features, a batch at a time.
"""

from __future__ import annotations

import bisect
import re
import struct
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
_AGAIN = "write the file again"
_EXAMPLES = "write tf.train.Example records"


def _crc_table() -> tuple[int, ...]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_CRC32C = _crc_table()


def masked_crc(data: bytes) -> int:
    """The masked CRC-32C TFRecord files keep of a record's length (pure Python: meant for a few bytes)."""
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC32C[(c ^ b) & 0xFF] ^ (c >> 8)
    c ^= 0xFFFFFFFF
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame(path: Path, findings: Findings) -> list[int] | None:
    """Each record's byte offset, walking the file's framing; None (the problem recorded) when it is corrupt."""
    size = path.stat().st_size
    offsets: list[int] = []
    known: dict[int, int] = {}
    with path.open("rb") as f:
        at = 0
        while at < size:
            where = f"a corrupt record (record {len(offsets)}, at byte offset {at})"
            head = f.read(12)
            if len(head) < 12:
                findings.add(path, None, "corrupt", f"{where}: cut short, a truncated file", _AGAIN)
                return None
            length, crc = struct.unpack("<QI", head)
            if known.get(length) != crc and masked_crc(head[:8]) != crc:
                findings.add(path, None, "corrupt", f"{where}: its length fails its checksum", _AGAIN)
                return None
            end = at + 16 + length
            if end > size:
                text = f"{where}: it declares {length} bytes, past the end of the file ({size} bytes)"
                findings.add(path, None, "corrupt", text, _AGAIN)
                return None
            known[length] = crc  # records often share a length: its CRC is computed once
            offsets.append(at)
            f.seek(end)
            at = end
    return offsets


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
    except (DecodeError, UnicodeDecodeError, ValueError):  # the pure-Python protobuf decodes text eagerly
        return None


def _first(raw: bytes, path: Path, fields: Fields, findings: Findings) -> dict[str, str]:
    """Each field's list kind, from the file's first record; missing, extra and text features recorded."""
    ex = _example(raw)
    if ex is None:
        findings.add(path, None, "corrupt", "record 0 is not a tf.train.Example", _EXAMPLES)
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
    if not spec:  # no feature to read (their problems are recorded): nothing TensorFlow could parse
        return {}
    try:
        parsed = t.io.parse_example(raw, spec)
    except (t.errors.InvalidArgumentError, UnicodeDecodeError):  # TF's message may quote the record's bytes
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
            findings.add(chunk.file, None, "corrupt", "not a tf.train.Example", _EXAMPLES, row=chunk.start + i)
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


def _records(path: Path, offsets: list[int], findings: Findings) -> Any:
    """The file's records, ``PARSE_BATCH`` at a time, as numpy arrays of bytes; a corrupt record ends them."""
    t = tf()
    batches = iter(t.data.TFRecordDataset(str(path)).batch(PARSE_BATCH))
    at = 0
    while True:
        try:
            raw = next(batches).numpy()
        except StopIteration:
            return
        except (t.errors.OpError, UnicodeDecodeError) as e:
            findings.add(path, None, "corrupt", _data_crc(str(getattr(e, "message", "")), offsets, at), _AGAIN)
            return
        yield raw
        at += len(raw)


def _data_crc(message: str, offsets: list[int], at: int) -> str:
    """What to say of a record TensorFlow refused (framing is checked already: its data fail their CRC)."""
    found = re.search(r"corrupted record at (\d+)", message)
    if found is None:
        return f"a corrupt record after record {at}: TensorFlow cannot read it"
    offset = int(found.group(1))
    record = max(0, bisect.bisect_right(offsets, offset) - 1)
    return f"a corrupt record (record {record}, at byte offset {offsets[record]}): its data fail their checksum"


def scan(path: Path, fields: Fields, findings: Findings, sink: Any) -> Layout:
    """Check one TFRecord file against the fields, handing each batch of records to ``sink``."""
    layout = Layout(0)
    offsets = frame(path, findings)
    if offsets is None:
        return layout
    for raw in _records(path, offsets, findings):
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
