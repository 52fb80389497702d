"""The lenient check: what `render` draws and `diff` compares of a spec with errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fusec.errors import FusecError
from fusec.spec.graph import BROKEN
from fusec.static.check import check_spec
from helpers import write

ROOT = Path(__file__).resolve().parent.parent

BROKEN_DOC: dict[str, Any] = {
    "fusec": 1,
    "name": "broken",
    "inputs": {"x": {"shape": [16]}},
    "nodes": {
        "a": {"layer": "Dense", "inputs": "x", "config": {"unitz": 8}},
        "b": {"layer": "Dense", "inputs": "x", "config": {"units": 8}},
        "c": {"merge": "concat", "inputs": ["b", "x"]},
        "d": {"layer": "Dense", "inputs": "nope", "config": {"units": 4}},
        "e": {"layer": "Dense", "inputs": "f", "config": {"units": 4}},
        "f": {"layer": "Dense", "inputs": "e", "config": {"units": 4}},
        "g": {"layer": "Dense", "inputs": "a", "config": {"units": 2}},
    },
    "outputs": {"y": {"from": "c"}, "z": {"from": "g"}},
}


def _broken(tmp_path: Path) -> Path:
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(BROKEN_DOC, indent=2))
    return path


def test_lenient_returns_every_error_with_its_place(tmp_path: Path) -> None:
    path = _broken(tmp_path)
    with pytest.raises(FusecError) as raised:
        check_spec(path)
    checked = check_spec(path, lenient=True)
    assert [p.message for p in checked.problems] == [p.message for p in raised.value.problems]
    assert all(p.span is not None and p.span.line > 1 for p in checked.problems)
    paths = {p.path[:2] for p in checked.problems}
    assert {("nodes", "a"), ("nodes", "d"), ("nodes", "e")} <= paths


def test_lenient_graph_keeps_every_node(tmp_path: Path) -> None:
    checked = check_spec(_broken(tmp_path), lenient=True)
    assert set(checked.order) == {"x", "a", "b", "c", "d", "e", "f", "g"}
    assert checked.order[-2:] in (["e", "f"], ["f", "e"])  # the cycle comes last
    assert checked.graph.nodes["a"]["kind"] == BROKEN
    # What could be inferred is: b and c from x; a is broken, so g after it has no shape.
    assert checked.info["b"].shape == (None, 8) and checked.info["c"].shape == (None, 24)
    assert "a" not in checked.info and "g" not in checked.info
    assert checked.totals.params == checked.info["b"].params == 16 * 8 + 8


def test_lenient_valid_spec_is_the_strict_result() -> None:
    spec = ROOT / "specs" / "image_tag.json"
    strict, lenient = check_spec(spec), check_spec(spec, lenient=True)
    assert lenient.problems == ()
    assert lenient.order == strict.order and lenient.totals == strict.totals
    assert lenient.warnings == strict.warnings


def test_lenient_strict_warnings_become_problems(tmp_path: Path) -> None:
    doc = {
        "fusec": 1,
        "inputs": {"x": {"shape": [8, 8, 2]}},
        "nodes": {
            "up": {
                "layer": "Conv2DTranspose",
                "inputs": "x",
                "config": {"filters": 2, "kernel_size": 3, "dilation_rate": 2},
            },
            "flat": {"layer": "Flatten", "inputs": "up"},
        },
        "outputs": {"y": {"from": "flat"}},
    }
    path = write(tmp_path, doc)
    relaxed = check_spec(path, lenient=True)
    assert relaxed.problems == () and [w.code for w in relaxed.warnings] == ["serving"]
    strict = check_spec(path, strict=True, lenient=True)
    assert [p.code for p in strict.problems] == ["serving"] and strict.warnings == ()
    assert strict.problems[0].severity == "error" and strict.problems[0].span is not None


@pytest.mark.parametrize(
    "text",
    [
        "{ not json",
        json.dumps({"fusec": 99, "inputs": {}, "nodes": {}, "outputs": {}}),
        json.dumps({"fusec": 1, "inputs": {"x": {"shape": [2]}}, "outputs": {}}),
        json.dumps([1, 2]),
    ],
    ids=["syntax", "version", "no-nodes", "not-an-object"],
)
def test_lenient_still_raises_when_nothing_is_drawable(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(FusecError):
        check_spec(path, lenient=True)


def _render(tmp_path: Path, name: str = "out.svg") -> Any:
    from click.testing import CliRunner

    from fusec.cli import cli

    out = tmp_path / name
    return CliRunner().invoke(cli, ["render", str(_broken(tmp_path)), "-o", str(out)]), out


def test_render_draws_a_broken_spec_and_exits_1(tmp_path: Path) -> None:
    result, out = _render(tmp_path)
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert lines[0].endswith("(svg, 8 nodes, 4 errors in red)") and len(lines) == 5
    assert "$.nodes.a.config.unitz" in lines[1] and out.read_text().endswith("</svg>\n")


def test_render_of_a_broken_spec_too_large_reports_only_its_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("fusec.cli.render.MAX_BROKEN_DRAWN", 3)
    result, out = _render(tmp_path)
    assert result.exit_code == 1 and not out.exists()
    lines = result.stderr.splitlines()
    assert lines[0].startswith("note: not drawn: it has 8 nodes, and a spec with errors is drawn up to 3")
    assert len(lines) == 5 and all("error: $." in line for line in lines[1:])


def test_render_of_a_broken_spec_without_graphviz_still_lists_its_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` here
    result, out = _render(tmp_path)
    assert result.exit_code == 1 and not out.exists()
    lines = result.stderr.splitlines()
    assert lines[0].startswith("note: not drawn: Graphviz's `dot` program was not found")
    assert any("$.nodes.e.inputs: cycle" in line for line in lines[1:])
    dot, text = _render(tmp_path, "out.dot")  # DOT text needs no Graphviz: drawn
    assert dot.exit_code == 1 and "4 errors in red" in dot.stderr and text.read_text().endswith("}\n")
