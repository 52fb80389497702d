"""``fusec diff``, second pass: renamed AND changed nodes, inputs through the matching, frames, page data."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from fusec.diff import compare, diff_files, summarize
from fusec.diff.draw import to_dot
from fusec.diff.page import page_data
from fusec.diff.report import text_lines, to_json
from fusec.static.check import check_spec

SPECS = Path(__file__).resolve().parent.parent / "specs"
SIAMESE_WIDER = SPECS.parent / "examples" / "diff" / "siamese_wider.json"


def _dense(src: Any, units: int = 4) -> dict[str, Any]:
    return {"layer": "Dense", "config": {"units": units}, "inputs": src}


def _spec(nodes: dict[str, Any], out: str = "c", **extra: Any) -> dict[str, Any]:
    return {
        "fusec": 1,
        "name": "m",
        "inputs": {"x": {"shape": [8]}},
        "nodes": nodes,
        "outputs": {"y": {"from": out, "loss": "mse"}},
        **extra,
    }


def _diff(tmp_path: Path, old: dict[str, Any], new: dict[str, Any]) -> Any:
    a, b = tmp_path / "old.json", tmp_path / "new.json"
    a.write_text(json.dumps(old, indent=1))
    b.write_text(json.dumps(new, indent=1))
    return diff_files(a, b)


def _status(d: Any) -> dict[str, tuple[str, str | None]]:
    return {n.id: (n.status, n.old_id) for n in d.nodes}


def _siamese() -> tuple[dict[str, Any], dict[str, Any]]:
    """docs/render.md's example: instance tower_a renamed ``left``, the embedding widened, a Dropout added."""
    old, new = (json.loads(p.read_text()) for p in (SPECS / "siamese.json", SIAMESE_WIDER))
    return old, new


def test_renamed_instance_pairs_its_changed_nodes(tmp_path: Path) -> None:
    d = _diff(tmp_path, *_siamese())
    st = _status(d)
    assert st["left__embed"] == ("renamed", "tower_a__embed")
    assert "tower_a__embed" not in st and d.counts["removed"] == 0 and d.counts["added"] == 1
    embed = next(n for n in d.nodes if n.id == "left__embed")
    assert "shared_layer.config.units 16 → 32" in [c.text for c in embed.changes]
    assert d.instances == [("tower_a", "left", "tower", 4)]
    lines = [t for _, t in text_lines(d)]
    assert "  → instance tower_a → left (tower, 4 nodes)" in lines
    assert any(t.startswith("  →~ tower_a__embed → left__embed") for t in lines)
    assert not any("left__conv" in t for t in lines)  # unchanged members: the instance line only
    # 2: the merge's sources were renamed, not rewired
    diff_node = next(n for n in d.nodes if n.id == "diff")
    assert [c.key for c in diff_node.changes] == ["shape"]
    assert to_json(d)["renamed_instances"] == [{"old": "tower_a", "new": "left", "block": "tower", "nodes": 4}]


def test_renamed_and_changed_by_neighbours(tmp_path: Path) -> None:
    old = _spec({"a": _dense("x"), "fc": _dense("a"), "c": _dense("fc", 1)})
    new = _spec({"a": _dense("x"), "fc2": _dense("a", 6), "c": _dense("fc2", 1)})
    d = _diff(tmp_path, old, new)
    assert d.mapping["fc"] == "fc2" and _status(d)["fc2"] == ("renamed", "fc")
    texts = [c.text for c in next(n for n in d.nodes if n.id == "fc2").changes]
    assert "config.units 4 → 6" in texts and not any(t.startswith("inputs") for t in texts)
    assert [c.key for c in next(n for n in d.nodes if n.id == "c").changes] == ["params"]  # not rewired
    assert any(t.startswith("  →~ fc → fc2") for _, t in text_lines(d))


def test_ambiguous_candidates_stay_added_and_removed(tmp_path: Path) -> None:
    old = _spec({"a": _dense("x"), "b": _dense("x"), "c": {"merge": "concat", "inputs": ["a", "b"]}})
    new = _spec({"p": _dense("x", 5), "q": _dense("x", 6), "c": {"merge": "concat", "inputs": ["p", "q"]}})
    st = _status(_diff(tmp_path, old, new))
    assert st["p"][0] == st["q"][0] == "added" and st["a"][0] == st["b"][0] == "removed"


def test_other_op_is_not_a_rename(tmp_path: Path) -> None:
    old = _spec({"a": _dense("x"), "c": _dense("a", 1)})
    new = _spec({"z": {"layer": "Dropout", "config": {"rate": 0.1}, "inputs": "x"}, "c": _dense("z", 1)})
    st = _status(_diff(tmp_path, old, new))
    assert st["z"] == ("added", None) and st["a"][0] == "removed"


def test_rewired_inputs_shown_in_new_names(tmp_path: Path) -> None:
    old = _spec({"a": _dense("x"), "b": _dense("x"), "c": {"merge": "concat", "inputs": ["a", "b"]}})
    new = _spec({"a2": _dense("x"), "b": _dense("x"), "c": {"merge": "concat", "inputs": ["b", "a2"]}})
    d = _diff(tmp_path, old, new)
    change = next(c for c in next(n for n in d.nodes if n.id == "c").changes if c.key == "inputs")
    assert (change.old, change.new) == (["a2", "b"], ["b", "a2"])  # the old side through the renames


BLOCKS: dict[str, Any] = {
    "inner": {"inputs": ["i"], "nodes": {"d": _dense("i")}, "outputs": {"o": "d"}},
    "outer": {
        "inputs": ["i"],
        "nodes": {"p": {"block": "inner", "inputs": "i"}, "q": _dense("p", 3)},
        "outputs": {"o": "q"},
    },
}


def test_nested_instance_renamed_with_all_nodes_changed(tmp_path: Path) -> None:
    old = _spec({"a": {"block": "outer", "inputs": "x"}, "c": _dense("a", 1)}, blocks=BLOCKS)
    new = copy.deepcopy(old)
    new["nodes"] = {"b": {"block": "outer", "inputs": "x"}, "c": _dense("b", 1)}
    new["blocks"]["inner"]["nodes"]["d"]["config"]["units"] = 7  # every node's shape or params change
    new["blocks"]["outer"]["nodes"]["q"]["config"]["units"] = 2
    d = _diff(tmp_path, old, new)
    st = _status(d)
    assert st["b__p__d"] == ("renamed", "a__p__d") and st["b__q"] == ("renamed", "a__q")
    assert d.instances == [("a", "b", "outer", 2)]
    assert d.renamed_instances == {"a": "b", "a__p": "b__p"}
    dot, titles, union = to_dot(d)
    assert {f.label for f in union.frames.values()} == {"a → b · outer", "a__p → b__p · inner"}
    inner = next(f for f in union.frames.values() if f.block == "inner")
    assert inner.parent == "b" and f"subgraph cluster_{inner.dom} {{" in dot and f'id="{inner.dom}"' in dot
    assert titles[inner.dom] == "a__p → b__p · inner"


def test_legend_has_only_statuses_drawn(tmp_path: Path) -> None:
    old = _spec({"a": _dense("x"), "c": _dense("a", 1)})
    new = _spec({"a": _dense("x", 5), "c": _dense("a", 1)})
    dot, _, union = to_dot(_diff(tmp_path, old, new))
    title = dot.split('CELLSPACING="4"', 1)[1].split("</TABLE>", 1)[0]  # the legend's swatches
    assert "(box)" not in dot and "changed</FONT>" in title and "same</FONT>" in title
    assert "added</FONT>" not in title and "removed</FONT>" not in title and "renamed" not in title
    assert not union.frames and "cluster" not in dot and "dashed frame" not in dot


def test_page_data_groups_problems_lines(tmp_path: Path) -> None:
    old, new = _siamese()
    new["nodes"]["same"]["config"]["units"] = -1  # a problem in NEW, on a node
    new["nodes"]["five"] = _dense("drop", 5)
    new["nodes"]["bad"] = {"merge": "add", "inputs": ["five", "drop"]}  # a problem on its inputs
    new["outputs"]["extra"] = {"from": "bad", "loss": "mse"}
    a, b = tmp_path / "old.json", tmp_path / "new.json"
    a.write_text(json.dumps(old))
    b.write_text(json.dumps(new, indent=1))
    d = compare(summarize(check_spec(a, lenient=True)), summarize(check_spec(b, lenient=True), lines=True))
    _, _, union = to_dot(d)
    data = page_data(d, union)
    json.dumps(data)  # plain JSON
    dom = {n["id"]: k for k, n in data["nodes"].items() if k.startswith("n")}
    groups = data["groups"]
    left = next(g for g in groups.values() if g["label"] == "tower_a → left · tower")
    assert left["kind"] == "block" and left["shared_weights"] is True and len(left["members"]) == 4
    assert dom["left__embed"] in left["members"]
    assert sum(g["params"] for g in groups.values()) > 0  # the shared weights: on the first instance's nodes
    assert set(groups) == {f.dom for f in union.frames.values()}
    problems = {p["path"]: p for p in data["problems"]}
    units = problems["$.nodes.same.config.units"]
    assert units["nodes"] == [dom["same"]] and units["line"] is not None
    assert data["nodes"][dom["same"]]["problems"]
    merge = next(p for path, p in problems.items() if path.startswith("$.nodes.bad"))
    assert merge["nodes"] == [dom["bad"]] and len(merge["edges"]) == 2
    assert all(data["edges"][e]["to"] == dom["bad"] and data["edges"][e]["problems"] for e in merge["edges"])
    lines = b.read_text().splitlines()
    line = data["nodes"][dom["drop"]]["line"]
    assert line is not None and '"drop"' in lines[line - 1]
    assert data["diff"]["nodes"][dom["left__embed"]]["status"] == "renamed"


def test_old_problems_are_marked(tmp_path: Path) -> None:
    old = _spec({"a": _dense("x"), "c": _dense("a", 1)})
    old["nodes"]["a"]["config"]["units"] = 0
    new = _spec({"a": _dense("x"), "c": _dense("a", 1)})
    d = _diff(tmp_path, old, new)
    _, _, union = to_dot(d)
    data = page_data(d, union)
    (p,) = data["problems"]
    assert p["text"].startswith("OLD ") and p["line"] is None and p["nodes"] == [union.dom["a"]]


def test_hostile_instance_names_escaped(tmp_path: Path) -> None:
    evil = '<b>"i\u202e'
    old = _spec({"a": {"block": "outer", "inputs": "x"}, "c": _dense("a", 1)}, blocks=BLOCKS)
    new = _spec({evil: {"block": "outer", "inputs": "x"}, "c": _dense(evil, 1)}, blocks=BLOCKS)
    d = _diff(tmp_path, old, new)
    dot, titles, _ = to_dot(d)
    assert d.new.problems  # not a valid id: drawn as a broken node, escaped
    assert "<b>" not in dot and "\u202e" not in dot and '"i' not in dot.replace('"#', "")
    assert all("<b>" not in t for t in titles.values())
