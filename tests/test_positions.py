"""Positions: the line and column of every key and value, for errors, SARIF and the language server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_formats import WARNS

from fusec.errors import FusecError, LoadError, Span
from fusec.spec.load import load_spec
from fusec.spec.positions import Positions
from fusec.static.check import check_spec

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.json"))


def walk(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk(v, (*path, i))


def cut(text: str, span: Span) -> str:
    """The text a span covers (1-based lines and columns, end exclusive)."""
    lines = text.split("\n")
    lines = [x + "\n" for x in lines[:-1]] + lines[-1:]  # only \n ends a line, as in JSON and LSP
    start = sum(len(x) for x in lines[: span.line - 1]) + span.col - 1
    end = sum(len(x) for x in lines[: span.end_line - 1]) + span.end_col - 1
    return text[start:end]


def assert_every_place(text: str) -> None:
    """Every value of the document is found, its span decodes to it, its key to its key, path_at finds it."""
    doc = json.loads(text)
    pos = Positions.of(text)
    for path, value in walk(doc):
        span = pos.value(path)
        assert span is not None, path
        assert json.loads(cut(text, span)) == value, path
        if path and isinstance(path[-1], str):
            key = pos.key(path)
            assert key is not None and json.loads(cut(text, key)) == path[-1], path
        assert pos.path_at(span.line, span.col) == (path, "value"), path


@pytest.mark.parametrize("spec", SPECS, ids=[p.name for p in SPECS])
def test_every_value_of_every_bundled_spec(spec: Path) -> None:
    assert_every_place(spec.read_text(encoding="utf-8"))


def test_compact_and_unicode_text() -> None:
    doc = {"ä€😀": [1, {"k": 'v"\\n'}, [], {}], "n": None, "t": True, "x": -1.5e3}
    for text in (json.dumps(doc), json.dumps(doc, indent=4, ensure_ascii=False), json.dumps(doc, indent="\t")):
        assert_every_place(text)
    text = '{"名前": "値", "b": 2}'
    assert Positions.of(text).value(("b",)) == Span(1, 18, 1, 19)  # columns count characters, not bytes


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(json_values, st.sampled_from([None, 0, 1, 2]), st.booleans())
def test_any_json_document(doc: Any, indent: int | None, ascii_only: bool) -> None:
    assert_every_place(json.dumps(doc, indent=indent, ensure_ascii=ascii_only))


@settings(max_examples=150, deadline=None)
@given(json_values, st.sampled_from([None, 2]), st.data())
def test_a_targeted_scan_places_what_it_was_asked_for_as_the_full_scan(doc: Any, indent: int | None, data: Any) -> None:
    text = json.dumps(doc, indent=indent)
    paths = [path for path, _ in walk(doc)]
    asked = data.draw(st.lists(st.sampled_from(paths), max_size=4))
    missing = [(*p, "absent") for p in asked]  # a missing key: its nearest ancestor
    full, some = Positions.of(text), Positions.of(text, only=asked + missing)
    for path in asked + missing:
        assert some.locate(path) == full.locate(path), path
    assert len(some) <= len(full)


def test_a_targeted_scan_skips_the_rest() -> None:
    text = SPECS[0].read_text(encoding="utf-8")
    doc = json.loads(text)
    node = next(iter(doc["nodes"]))
    some = Positions.of(text, only=[("nodes", node, "inputs")])
    assert ("nodes", node, "inputs") in some and ("nodes", node) in some and ("nodes",) in some
    assert len(some) < 10 and len(Positions.of(text)) > 50


def test_broken_text_never_raises_and_keeps_what_was_typed() -> None:
    text = (SPECS[0]).read_text(encoding="utf-8")
    for end in range(0, len(text), 7):  # every prefix, as an editor sees the file while it is typed
        Positions.of(text[:end])
    broken = '{"nodes": {"a": {"layer": "Dense" "config": {"units": }, "inputs": "x\n  }, "b": {"layer": "Den'
    pos = Positions.of(broken)
    assert cut(broken, pos.value(("nodes", "a", "layer"))) == '"Dense"'  # type: ignore[arg-type]
    assert ("nodes", "a", "config") in pos  # a missing comma is forgiven
    assert pos.key(("nodes", "a", "config", "units")) is not None  # a key without a value is still placed
    assert ("nodes", "a", "inputs") in pos  # an unclosed string ends at its line's end
    assert ("nodes", "b", "layer") in pos
    assert pos.path_at(2, 22) == (("nodes", "b", "layer"), "value")
    some = Positions.of(broken, only=[("nodes", "a", "layer")])  # not JSON: the token scan takes over
    assert some.value(("nodes", "a", "layer")) == pos.value(("nodes", "a", "layer"))


def test_locate_rules() -> None:
    text = '{\n  "nodes": {\n    "d": {"layer": "Dense", "config": {"units": -1}}\n  },\n  "list": [{"a": 1}]\n}'
    pos = Positions.of(text)
    assert cut(text, pos.locate(("nodes", "d", "config", "units"))) == '"units": -1'  # a scalar member
    assert cut(text, pos.locate(("nodes", "d"))) == '"d"'  # a member holding an object: its key
    assert cut(text, pos.locate(("nodes", "d", "config", "missing"))) == '"config"'  # nearest ancestor
    assert cut(text, pos.locate(("list", 0))) == '{"a": 1}]'[:8]  # an item holding an object: its line
    assert pos.locate(("nowhere",)) == Span(1, 1, 1, 2)  # the root: its first line
    assert pos.path_at(3, 8) == (("nodes", "d"), "key")
    assert pos.path_at(3, 45) == (("nodes", "d", "config", "units"), "key")


def bad_spec() -> str:
    return (
        '{"fusec": 1, "name": "x",\n'
        ' "inputs": {"a": {"shape": [4]}},\n'
        ' "nodes": {\n'
        '  "d": {"layer": "Dense", "config": {"unit": 3}, "inputs": "a"},\n'
        '  "e": {"layer": "Dense", "config": {"units": 3}, "inputs": "zz"}\n'
        " },\n"
        ' "outputs": {"o": {"from": "d"}}}\n'
    )


def test_every_problem_of_a_check_has_its_place(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(bad_spec())
    with pytest.raises(FusecError) as caught:
        check_spec(path)
    found = {p.jsonpath: p.span for p in caught.value.problems}
    assert found["$.nodes.d.config.unit"] == Span(4, 38, 4, 47)
    assert found["$.nodes.e.inputs"] == Span(5, 51, 5, 65)
    assert all(span is not None for span in found.values())


def test_unsaved_source_is_checked_instead_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(bad_spec())
    fixed = bad_spec().replace('"unit"', '"units"').replace('"zz"', '"d"').replace('"from": "d"', '"from": "e"')
    checked = check_spec(path, source=fixed)
    assert checked.totals.params == (4 * 3 + 3) + (3 * 3 + 3)
    with pytest.raises(FusecError):
        check_spec(path)  # the file itself is still broken


def test_json_syntax_error_and_duplicate_key_are_placed(tmp_path: Path) -> None:
    with pytest.raises(LoadError) as caught:
        load_spec(tmp_path / "x.json", source='{\n  "a": 1,\n  "b": ]\n}')
    assert caught.value.problems[0].span == Span(3, 8, 3, 9)
    with pytest.raises(LoadError) as caught:
        load_spec(tmp_path / "x.json", source='{"a": 1,\n "a": 2}')
    assert caught.value.problems[0].span == Span(2, 2, 2, 8)  # the later one: the one a reader missed


def test_byte_order_mark_does_not_shift_columns(tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + bad_spec().encode())
    with pytest.raises(FusecError) as caught:
        check_spec(path)
    assert {p.jsonpath: p.span for p in caught.value.problems}["$.nodes.e.inputs"] == Span(5, 51, 5, 65)


def test_warnings_have_places(tmp_path: Path) -> None:
    path = tmp_path / "w.json"
    path.write_text(json.dumps(WARNS, indent=2))
    checked = check_spec(path)
    assert checked.warnings and all(w.span is not None for w in checked.warnings)
    text = path.read_text()
    assert cut(text, checked.warnings[0].span).startswith('"inputs"')  # type: ignore[arg-type]
