"""The language server's pieces that need no client: places in UTF-16, string tokens, no TensorFlow."""

from __future__ import annotations

from lsprotocol import types

from fusec.errors import Span
from fusec.lsp.text import char_col, from_position, string_at, to_range, utf16_col


def test_columns_count_utf16_units() -> None:
    line = '  "doc": "🙂 ok", "x": 1'
    at_x = line.index('"x"')
    assert utf16_col(line, at_x) == at_x + 1  # the emoji is two UTF-16 units
    assert char_col(line, at_x + 1) == at_x
    lines = [line]
    assert from_position(lines, types.Position(line=0, character=at_x + 1)) == (1, at_x + 1)
    span = Span(1, at_x + 1, 1, at_x + 4)
    assert to_range(lines, span) == types.Range(
        start=types.Position(line=0, character=at_x + 1), end=types.Position(line=0, character=at_x + 4)
    )


def test_string_at_the_cursor() -> None:
    line = '"layer": "Den'
    assert string_at(line, len(line)) == (9, len(line))  # an unclosed string runs to the end of its line
    assert string_at('"a": "Dense"', 8) == (5, 12)
    assert string_at('"a": "Dense"', 12) is None  # just after the closing quote
    assert string_at('"a": 1', 5) is None


def test_the_server_never_imports_tensorflow() -> None:
    """Every module of the server loads without TensorFlow (conftest fails this test if one imports it)."""
    from fusec.lsp.server import make_server

    server = make_server()
    server.pool.shutdown()
