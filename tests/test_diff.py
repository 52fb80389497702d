"""``fusec diff``: every change kind, renames, the interface, exit codes, JSON, drawings (no TensorFlow)."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fusec.cli import cli
from fusec.diff import diff_files
from fusec.diff.draw import to_dot
from fusec.diff.report import text_lines, to_json

SPECS = Path(__file__).resolve().parent.parent / "specs"


def _spec(nodes: dict[str, Any], outputs: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "fusec": 1,
        "name": "m",
        "inputs": {"x": {"shape": [8]}},
        "nodes": nodes,
        "outputs": outputs or {"y": {"from": "c", "loss": "mse"}},
        **extra,
    }


def _dense(src: str, units: int = 4, **config: Any) -> dict[str, Any]:
    return {"layer": "Dense", "config": {"units": units, **config}, "inputs": src}


BASE = _spec({"a": _dense("x"), "b": _dense("a"), "c": _dense("b", 1)})


def _write(tmp_path: Path, name: str, doc: dict[str, Any]) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def _diff(tmp_path: Path, new: dict[str, Any], old: dict[str, Any] = BASE) -> Any:
    return diff_files(_write(tmp_path, "old.json", old), _write(tmp_path, "new.json", new))


def _by_id(d: Any) -> dict[str, Any]:
    return {n.id: n for n in d.nodes}


def test_equal_specs(tmp_path: Path) -> None:
    d = _diff(tmp_path, copy.deepcopy(BASE))
    assert d.equal and d.counts["same"] == 4 and not d.interface
    assert text_lines(d)[-1][1] == "no differences"


def test_config_change_added_removed(tmp_path: Path) -> None:
    new = copy.deepcopy(BASE)
    new["nodes"]["a"]["config"]["units"] = 6
    new["nodes"]["a"]["config"]["activation"] = "relu"
    new["nodes"]["d"] = _dense("b")
    new["nodes"]["c"]["inputs"] = "d"
    d = _diff(tmp_path, new)
    nodes = _by_id(d)
    texts = [c.text for c in nodes["a"].changes]
    assert "config.units 4 → 6" in texts and "config.activation (unset) → relu" in texts
    assert "params 36 → 54 (+18)" in texts and "shape (None, 4) → (None, 6)" in texts
    assert nodes["d"].status == "added"
    assert [c.text for c in nodes["c"].changes] == ["inputs b → d"]
    assert nodes["b"].status == "changed"  # its input grew: more params
    removed = _diff(tmp_path, BASE, new)
    assert _by_id(removed)["d"].status == "removed"


def test_renamed_chain_and_rewired(tmp_path: Path) -> None:
    new = _spec({"first": _dense("x"), "second": _dense("first"), "c": _dense("second", 1)})
    d = _diff(tmp_path, new)
    assert d.mapping == {"x": "x", "a": "first", "b": "second", "c": "c"}
    assert d.counts == {"added": 0, "removed": 0, "changed": 0, "renamed": 2, "same": 2}
    assert not d.equal
    lines = [t for _, t in text_lines(d)]
    assert any(t.startswith("  → a → first") for t in lines)


def test_renamed_by_consumers(tmp_path: Path) -> None:
    old = _spec({"a": _dense("x"), "b": _dense("x"), "c": {"merge": "concat", "inputs": ["a", "b"]}})
    new = _spec({"p": _dense("x", 5), "q": _dense("x"), "c": {"merge": "concat", "inputs": ["p", "q"]}})
    d = _diff(tmp_path, new, old)
    statuses = {n.id: n.status for n in d.nodes}
    assert d.mapping.get("b") == "q" and statuses["q"] == "renamed"
    # a and p: same kind and op, inputs and consumers matched: renamed and changed
    assert d.mapping.get("a") == "p" and statuses["p"] == "renamed" and "a" not in statuses
    assert "config.units 4 → 5" in [c.text for c in _by_id(d)["p"].changes]


def test_bundled_spec_equal_to_itself() -> None:
    d = diff_files(SPECS / "siamese.json", SPECS / "siamese.json")
    assert d.equal and d.counts["same"] == len(d.nodes)


def test_renamed_block_instance_files(tmp_path: Path) -> None:
    spec = json.loads((SPECS / "siamese.json").read_text())
    spec.pop("$schema")
    old = copy.deepcopy(spec)
    spec["nodes"]["tower_x"] = spec["nodes"].pop("tower_a")
    spec["nodes"]["diff"]["inputs"] = ["tower_x", "tower_b"]
    d = _diff(tmp_path, spec, old)
    assert d.instances == [("tower_a", "tower_x", "tower", 4)]
    assert d.counts["renamed"] == 4 and d.counts["changed"] == 0
    lines = [t for _, t in text_lines(d)]
    assert "  → instance tower_a → tower_x (tower, 4 nodes)" in lines
    assert not any("tower_a__conv" in t for t in lines)  # one line for the instance


def test_interface_changes(tmp_path: Path) -> None:
    old = _spec(
        {"a": _dense("x"), "c": _dense("a", 1), "z": _dense("a", 2)},
        {"y": {"from": "c", "loss": "mse"}, "w": {"from": "z", "loss": "mse"}},
        training={"optimizer": "adam"},
    )
    new = copy.deepcopy(old)
    new["name"] = "m2"
    new["inputs"]["x"]["shape"] = [9]
    new["inputs"]["k"] = {"shape": [2]}
    new["nodes"]["a"]["inputs"] = ["x", "k"]
    new["nodes"]["a"] = {"merge": "concat", "inputs": ["x", "k"]}
    new["nodes"]["c"]["inputs"] = "a"
    new["outputs"] = {"w": {"from": "z", "loss": "mae", "loss_weight": 0.5}, "y": {"from": "a", "loss": "mse"}}
    new["training"] = {"optimizer": "sgd"}
    d = _diff(tmp_path, new, old)
    texts = [t for role, t in text_lines(d)]
    joined = "\n".join(texts)
    assert "~ name m → m2" in joined
    assert "~ input x: shape [8] → [9]" in joined
    assert "+ input k (added): shape [2]" in joined
    assert "output w: loss mse → mae; loss_weight (unset) → 0.5" in joined
    assert "output y: from c → a" in joined
    assert "~ outputs reordered: y, w → w, y" in joined
    assert "~ training.optimizer adam → sgd" in joined
    assert any(t.startswith("  ~ params ") for t in texts)
    assert _by_id(d)["a"].changes[0].text == "kind layer → merge"


def test_cli_exit_codes_and_json(tmp_path: Path) -> None:
    old = _write(tmp_path, "old.json", BASE)
    new_doc = copy.deepcopy(BASE)
    new_doc["nodes"]["b"]["config"]["units"] = 5
    new = _write(tmp_path, "new.json", new_doc)
    runner = CliRunner()
    same = runner.invoke(cli, ["diff", str(old), str(old)])
    assert same.exit_code == 0 and "no differences" in same.output
    differ = runner.invoke(cli, ["diff", str(old), str(new), "--json"])
    assert differ.exit_code == 1
    report = json.loads(differ.output)
    assert report["schema_version"] == 1 and report["equal"] is False and report["ok"] is True
    assert report["summary"] == {"added": 0, "removed": 0, "changed": 2, "renamed": 0, "same": 2, "interface": 1}
    change = report["nodes"][0]["changes"][0]
    assert change == {"key": "config.units", "text": "config.units 4 → 5", "old": 4, "new": 5}
    again = runner.invoke(cli, ["diff", str(old), str(new), "--json"])
    assert again.output == differ.output  # stable
    quiet = runner.invoke(cli, ["diff", str(old), str(new), "-q"])
    assert quiet.exit_code == 1 and quiet.output == ""
    stat = runner.invoke(cli, ["diff", str(old), str(new), "--stat"])
    assert stat.output.splitlines()[-1].startswith("0 added, 0 removed, 2 changed")
    assert runner.invoke(cli, ["diff", str(old), str(new), "-o", "x.txt"]).exit_code == 2
    assert runner.invoke(cli, ["diff", str(old), str(new), "--format", "svg"]).exit_code == 2


def test_cli_unreadable_and_broken(tmp_path: Path) -> None:
    old = _write(tmp_path, "old.json", BASE)
    runner = CliRunner()
    missing = runner.invoke(cli, ["diff", str(old), str(tmp_path / "nope.json")])
    assert missing.exit_code == 1 and "error:" in missing.output and "Traceback" not in missing.output
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert runner.invoke(cli, ["diff", str(bad), str(old)]).exit_code == 1
    broken = copy.deepcopy(BASE)
    broken["nodes"]["b"]["config"]["units"] = -1
    res = runner.invoke(cli, ["diff", str(old), str(_write(tmp_path, "broken.json", broken))])
    assert res.exit_code == 1
    assert "error:" in res.output and "$.nodes.b" in res.output  # the check's error line
    assert "~ b" in res.output  # and the diff of what could be read
    report = json.loads(runner.invoke(cli, ["diff", str(old), str(tmp_path / "broken.json"), "--json"]).output)
    assert report["ok"] is False and report["new"]["errors"]


def test_dot_marks(tmp_path: Path) -> None:
    new = copy.deepcopy(BASE)
    new["nodes"]["a"]["config"]["units"] = 6
    new["nodes"]["d"] = _dense("b")
    new["nodes"]["c"]["inputs"] = "d"
    old = copy.deepcopy(BASE)
    old["nodes"]["gone"] = _dense("a")
    old["nodes"]["c"] = {"merge": "concat", "inputs": ["b", "gone"]}
    old["nodes"]["c"] = _dense("b", 1)
    old["nodes"]["gone"]["inputs"] = "a"
    old["nodes"]["c2"] = _dense("gone", 1)
    old["outputs"]["z"] = {"from": "c2", "loss": "mse"}
    d = _diff(tmp_path, new, old)
    dot, titles, _ = to_dot(d)
    assert '"#238b45"' in dot and "dashed" in dot and '"#d94801"' in dot  # added, removed, changed
    assert "config.units 4 → 6" in dot
    assert all(f'id="{dom}"' in dot for dom in titles)
    assert next(dom for dom, t in titles.items() if t == "gone").startswith("n")


@pytest.mark.skipif(shutil.which("dot") is None, reason="needs Graphviz")
def test_svg_and_html(tmp_path: Path) -> None:
    new = _spec({"first": _dense("x"), "second": _dense("first"), "c": _dense("second", 1)})
    old = _write(tmp_path, "old.json", BASE)
    runner = CliRunner()
    svg = tmp_path / "d.svg"
    res = runner.invoke(cli, ["diff", str(old), str(_write(tmp_path, "new.json", new)), "-o", str(svg)])
    assert res.exit_code == 1, res.output
    text = svg.read_text()
    assert "<title>first</title>" in text and "a → first" in text and "<title>n0</title>" not in text
    page = tmp_path / "d.html"
    res = runner.invoke(cli, ["diff", str(old), str(tmp_path / "new.json"), "-o", str(page)])
    html = page.read_text()
    assert '"diff"' in html and '"renamed"' in html and "<script" in html
    assert (
        runner.invoke(cli, ["diff", str(old), str(tmp_path / "new.json"), "-o", str(old), "--format", "svg"]).exit_code
        == 1
    )
    assert json.loads(old.read_text()) == BASE  # never over an input


def test_hostile_ids_escaped(tmp_path: Path) -> None:
    evil = '<script>"x\u202e'
    new = _spec({"a": _dense("x"), evil: _dense("a"), "c": _dense(evil, 1)})
    d = _diff(tmp_path, new)
    dot, titles, _ = to_dot(d)
    assert "<script>" not in dot and "\u202e" not in dot
    assert "&lt;script&gt;&quot;x\\u202e" in titles.values()
    assert "\u202e" not in "".join(t for _, t in text_lines(d))
    assert to_json(d)["nodes"]


def test_docs_example_is_what_fusec_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/render.md's `fusec diff` console block is this command's real output, exit status included."""
    root = SPECS.parent
    monkeypatch.chdir(root)
    docs = (root / "docs" / "render.md").read_text(encoding="utf-8")
    command = "fusec diff specs/siamese.json examples/diff/siamese_wider.json"
    block = docs.split(f"$ {command}\n", 1)[1].split("$ echo $?\n", 1)
    result = CliRunner().invoke(cli, command.split()[1:], color=False)
    assert result.stdout == block[0]
    assert block[1].startswith(f"{result.exit_code}\n") and result.exit_code == 1


def test_page_status_colours_are_the_drawing_s() -> None:
    """The review page's diff legend and panel swatches use diff/draw.py's colours, status by status."""
    from fusec.diff.draw import LOOKS

    css = (SPECS.parent / "compiler" / "render" / "page" / "page.css").read_text(encoding="utf-8")
    for status, look in LOOKS.items():
        rule = css.split(f".st-{status} {{", 1)[1].split("}", 1)[0]
        assert f"background: {look.fill};" in rule and f"border-color: {look.border};" in rule, (status, rule)
