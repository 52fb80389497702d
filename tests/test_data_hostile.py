"""Hostile training data: corrupt framing, zip bombs, broken headers, odd line endings.

Each test builds a tiny hostile file and expects a ``DataError`` (exit 1) naming
the file and the place in it, never a crash. TFRecord framing and .npz headers
are refused before TensorFlow opens anything; tests that need TensorFlow to
read records or stream are ``slow``.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_data import fields_of

from fusec.data import DataError, Fields, open_data
from fusec.data import npz as npz_format
from fusec.data.tfrecord import masked_crc

SPEC: dict[str, Any] = {
    "fusec": 1,
    "name": "hostile",
    "seed": 1,
    "inputs": {"x": {"shape": [4]}},
    "nodes": {"h": {"layer": "Dense", "config": {"units": 3, "activation": "softmax"}, "inputs": "x"}},
    "outputs": {"y": {"from": "h", "loss": "sparse_categorical_crossentropy"}},
}
SEQ_SPEC: dict[str, Any] = {
    "fusec": 1,
    "name": "seq",
    "inputs": {"x": {"shape": [None, 4]}},
    "nodes": {
        "p": {"layer": "GlobalAveragePooling1D", "inputs": "x"},
        "h": {"layer": "Dense", "config": {"units": 1, "activation": "sigmoid"}, "inputs": "p"},
    },
    "outputs": {"y": {"from": "h", "loss": "binary_crossentropy"}},
}


@pytest.fixture(scope="module")
def fields(tmp_path_factory: pytest.TempPathFactory) -> Fields:
    return fields_of(tmp_path_factory.mktemp("spec"), SPEC)


def refused(path: Path, fields: Fields, **kw: Any) -> str:
    """The error's text (every problem, with its hint) for data that must be refused."""
    with pytest.raises(DataError) as caught:
        open_data(path, fields, **kw)
    return "\n".join(f"{p.message} ({p.hint})" for p in caught.value.problems)


# --- TFRecord ------------------------------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _len(field: int, payload: bytes) -> bytes:
    return bytes([field << 3 | 2]) + _varint(len(payload)) + payload


def example(x: list[float], y: int) -> bytes:
    """A ``tf.train.Example`` with float feature ``x`` and int64 feature ``y``, encoded by hand."""
    fx = _len(2, _len(1, struct.pack(f"<{len(x)}f", *x)))
    fy = _len(3, _len(1, _varint(y)))
    entries = _len(1, _len(1, b"x") + _len(2, fx)) + _len(1, _len(1, b"y") + _len(2, fy))
    return _len(1, entries)


def record(data: bytes, length: int | None = None) -> bytes:
    """One TFRecord record: length, its masked CRC, the data, theirs."""
    head = struct.pack("<Q", len(data) if length is None else length)
    return head + struct.pack("<I", masked_crc(head)) + data + struct.pack("<I", masked_crc(data))


GOOD = example([0.1, 0.2, 0.3, 0.4], 1)


def test_masked_crc_is_tfrecords() -> None:
    crc = 0xE3069283  # CRC-32C of b"123456789", the standard check value
    assert masked_crc(b"123456789") == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def test_tfrecord_absurd_length_is_refused_before_tensorflow(fields: Fields, tmp_path: Path) -> None:
    path = tmp_path / "absurd.tfrecord"
    good = record(GOOD)
    path.write_bytes(good * 2 + record(b"tail", length=2**62))
    text = refused(path, fields)
    assert f"a corrupt record (record 2, at byte offset {2 * len(good)})" in text
    assert "past the end of the file" in text


@pytest.mark.parametrize(
    ("tail", "said"),
    [
        (lambda r: r[:7], "cut short, a truncated file"),
        (lambda r: r[:8] + b"\0\0\0\0" + r[12:], "its length fails its checksum"),
        (lambda r: r[:-1], "past the end of the file"),
    ],
    ids=["short-header", "length-crc", "truncated"],
)
def test_tfrecord_broken_framing_names_the_record(tail: Any, said: str, fields: Fields, tmp_path: Path) -> None:
    path = tmp_path / "broken.tfrecord"
    good = record(GOOD)
    path.write_bytes(good + tail(good))
    text = refused(path, fields)
    assert f"a corrupt record (record 1, at byte offset {len(good)})" in text and said in text


@pytest.mark.slow
@pytest.mark.parametrize(
    ("records", "said"),
    [
        ([GOOD, GOOD, b"\xff\xff\xff garbage"], "record 2: not a tf.train.Example"),
        ([b"\xff\xff\xff garbage", GOOD], "record 0 is not a tf.train.Example"),
        ([b"", GOOD], "is missing from record 0"),
    ],
    ids=["garbage", "garbage-first", "empty-first"],
)
def test_tfrecord_records_that_are_not_examples(
    records: list[bytes], said: str, fields: Fields, tmp_path: Path
) -> None:
    path = tmp_path / "notexample.tfrecord"
    path.write_bytes(b"".join(record(r) for r in records))
    with pytest.raises(DataError) as caught:
        open_data(path, fields)
    text = "\n".join(p.message for p in caught.value.problems)
    assert said in text
    assert caught.value.file is not None


@pytest.mark.slow
def test_tfrecord_data_checksum_names_the_record(fields: Fields, tmp_path: Path) -> None:
    path = tmp_path / "crc.tfrecord"
    good = record(GOOD)
    broken = bytearray(good)
    broken[20] ^= 0xFF  # a byte of the data: the length and its CRC stay valid
    path.write_bytes(good * 2 + bytes(broken) + good)
    text = refused(path, fields)
    assert f"a corrupt record (record 2, at byte offset {2 * len(good)}): its data fail their checksum" in text
    assert "function_node" not in text and "{{" not in text


# --- .npz -------------------------------------------------------------------------------------


def npy(header: str, data: bytes = b"") -> bytes:
    """A .npy member with a literal header (padded as numpy pads it) and raw data."""
    text = header.encode("latin1")
    text += b" " * (-(len(text) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + data


def write_members(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


Y4 = npy("{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }", bytes(32))


def test_npz_broken_header_is_refused(fields: Fields, tmp_path: Path) -> None:
    path = write_members(tmp_path / "bad.npz", {"x.npy": npy("{'descr': __import__(", bytes(64)), "y.npy": Y4})
    text = refused(path, fields)
    assert "its .npy header is not valid" in text


def test_npz_negative_shape_is_refused(fields: Fields, tmp_path: Path) -> None:
    x = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-4, 4), }")
    text = refused(write_members(tmp_path / "neg.npz", {"x.npy": x, "y.npy": Y4}), fields)
    assert "its header's shape (-4, 4) is invalid" in text
    assert "has 4 rows" not in text


def test_npz_shape_larger_than_its_bytes(fields: Fields, tmp_path: Path) -> None:
    x = npy("{'descr': '<f4', 'fortran_order': True, 'shape': (100000000000000, 4), }", bytes(64))
    text = refused(write_members(tmp_path / "huge.npz", {"x.npy": x, "y.npy": Y4}), fields)
    assert "its header declares shape (100000000000000, 4)" in text and "the archive holds 64" in text


def test_npz_example_over_the_row_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fields = fields_of(tmp_path, SEQ_SPEC)
    monkeypatch.setattr(npz_format, "MAX_ROW_BYTES", 1024)
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, x=np.zeros((1, 1000, 4), np.float32), y=np.zeros(1, np.float32))
    text = refused(path, fields)
    assert "one example holds 16000 bytes" in text and "over the limit" in text


def test_npz_rows_mismatch_says_only_that(fields: Fields, tmp_path: Path) -> None:
    path = tmp_path / "rows.npz"
    np.savez(path, x=np.zeros((5, 4), np.float32), y=np.zeros(3, np.int64))
    with pytest.raises(DataError) as caught:
        open_data(path, fields)
    assert [p.message for p in caught.value.problems] == ["array `y`: has 3 rows, but `x` has 5"]


# --- CSV ----------------------------------------------------------------------------------------


def test_csv_carriage_returns_alone_are_refused(fields: Fields, tmp_path: Path) -> None:
    path = tmp_path / "cr.csv"
    path.write_bytes(b"x,y\r0 1 2 3,1\r4 5 6 7,2\r")
    text = refused(path, fields)
    assert "ends with a carriage return alone" in text and "line endings" in text


def test_csv_repeated_columns_are_counted_as_columns(fields: Fields, tmp_path: Path) -> None:
    path = tmp_path / "repeat.csv"
    path.write_text("x,y" + ",z" * 7 + "\n0 1 2 3,1" + ",0" * 7 + "\n")
    text = refused(path, fields)
    assert "appears 7 times in the header (columns 2, 3, 4, 5, 6, ...)" in text
    assert "rows in all" not in text


@pytest.mark.slow
@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_csv_streams_what_the_check_read(newline: str, fields: Fields, tmp_path: Path) -> None:
    rows = [f"{i} {i + 1} {i + 2} {i + 3},{i % 3}" for i in range(6)]
    lines = ["\ufeff", "", "x,y", rows[0], "", *rows[1:4], "", "", *rows[4:], ""]
    path = tmp_path / "bom_blank.csv"
    path.write_bytes(newline.join(lines).encode("utf-8"))
    held = list(open_data(path, fields).dataset().as_numpy_iterator())
    streamed = list(open_data(path, fields, cache_bytes=0).dataset().as_numpy_iterator())
    assert len(held) == len(streamed) == 6
    for (xa, ya), (xb, yb) in zip(held, streamed, strict=True):
        np.testing.assert_array_equal(xa["x"], xb["x"])
        np.testing.assert_array_equal(ya["y"], yb["y"])
    assert streamed[5][0]["x"].tolist() == [5, 6, 7, 8]
