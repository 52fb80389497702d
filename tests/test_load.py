"""The loader accepts one strict JSON document and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from fusec.errors import LoadError
from fusec.spec.load import MAX_BYTES, load_spec, parse_spec

BAD = [
    ("duplicate-top", b'{"a": 1, "a": 2}', "$.a", "more than once"),
    ("duplicate-deep", b'{"a": {"b": [1, {"c": 1, "c": 2}]}}', "$.a.b[1].c", "more than once"),
    ("nan", b'{"x": NaN}', "$.x", "NaN is not valid JSON"),
    ("infinity", b'{"x": [1, -Infinity]}', "$.x[1]", "-Infinity"),
    ("overflow-float", b'{"x": 1e999}', "$.x", "overflows"),
    ("huge-int", b'{"x": ' + b"9" * 5000 + b"}", "$.x", "5000 digits"),
    ("deep-brackets", b"[" * 100_000 + b"]" * 100_000, "$", "deeper than"),
    ("deep-objects", b'{"a":' * 80 + b"1" + b"}" * 80, "$.a.a.a", "deeper than"),
    ("not-utf8", b'{"x": "\xff\xfe"}', "$", "not UTF-8"),
    ("empty", b"", "$", "empty"),
    ("blank", b"  \n\t ", "$", "empty"),
    ("truncated", b'{"a": ', "$", "not valid JSON"),
    ("trailing-comma", b'{"a": 1,}', "$", "not valid JSON"),
    ("comment", b'{"a": 1 // no\n}', "$", "not valid JSON"),
]


@pytest.mark.parametrize(("data", "path", "fragment"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_refused(data: bytes, path: str, fragment: str) -> None:
    with pytest.raises(LoadError) as info:
        parse_spec(data, "s.json")
    first = info.value.problems[0]
    assert first.jsonpath.startswith(path)
    assert fragment in first.message
    assert str(info.value).startswith("s.json: $")


def test_all_duplicates_reported() -> None:
    with pytest.raises(LoadError) as info:
        parse_spec(b'{"a": 1, "a": 2, "b": {"c": 1, "c": 1}}', "s.json")
    assert [p.jsonpath for p in info.value.problems] == ["$.a", "$.b.c"]


def test_bom_and_plain_document_accepted() -> None:
    assert parse_spec(b'\xef\xbb\xbf{"a": [1, 2.5, null, true]}', "s.json") == {"a": [1, 2.5, None, True]}


def test_size_limit(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_bytes(b'{"a": "' + b"x" * MAX_BYTES + b'"}')
    with pytest.raises(LoadError, match="limit"):
        load_spec(big)


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_bad_paths(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "nope.json" if kind == "missing" else tmp_path
    with pytest.raises(LoadError) as info:
        load_spec(target)
    assert ("no such file" if kind == "missing" else "not a regular file") in str(info.value)


def test_sha256_and_text(tmp_path: Path) -> None:
    import hashlib

    data = b'{"fusec": 1}'
    path = tmp_path / "s.json"
    path.write_bytes(data)
    spec = load_spec(path)
    assert spec.sha256 == hashlib.sha256(data).hexdigest()
    assert spec.text == data.decode()
