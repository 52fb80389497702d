"""The faults issue 15 lists, fixed in the static diagram: folding keeps sharing, spec order, plain
weightless layers, quiet edges, padding shown, real titles, ×N groups, broken specs drawn."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fusec.render import render, to_dot
from fusec.static.check import Checked, check_spec
from helpers import write

ROOT = Path(__file__).resolve().parent.parent
NEEDS_DOT = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
RED = "#cb181d"


def node_stmt(dot: str, dom: str) -> str:
    lines = [ln for ln in dot.splitlines() if ln.strip().startswith(f"{dom} [")]
    assert len(lines) == 1, (dom, lines)
    return lines[0]


def dom_of(checked: Checked, nid: str) -> str:
    return f"n{checked.order.index(nid)}"


def edge_stmts(dot: str) -> list[str]:
    return [ln.strip() for ln in dot.splitlines() if " -> " in ln and 'id="e' in ln]


@pytest.fixture(scope="module")
def siamese() -> Checked:
    return check_spec(ROOT / "specs" / "siamese.json")


@pytest.fixture(scope="module")
def fanin(tmp_path_factory: pytest.TempPathFactory) -> Checked:
    path = tmp_path_factory.mktemp("fanin") / "fanin.json"
    gen = [sys.executable, str(ROOT / "bench" / "gen_specs.py"), "fanin", "199", "-o", str(path)]
    subprocess.run(gen, check=True, capture_output=True)
    return check_spec(path)


# --- a. folding keeps the sharing ----------------------------------------------------------


def test_collapse_keeps_params_and_tie_of_a_shared_block(siamese: Checked) -> None:
    dot = to_dot(siamese, collapse=True)
    first, second = node_stmt(dot, "b0"), node_stmt(dot, "b1")
    assert "21,728 params" in first and "shared weights: instance 1 of 2" in first
    assert "weights of instance 1" in second and "instance 2 of 2" in second
    ties = [ln for ln in dot.splitlines() if "style=dotted" in ln]
    assert len(ties) == 1 and ties[0].strip().startswith("b0 -> b1") and "#1b7e6f" in ties[0]
    assert "frame" not in dot  # no frame drawn: the legend does not explain one
    assert "dotted line" in dot


# --- b. spec order ----------------------------------------------------------------------------

ORDER_SPEC: dict[str, Any] = {
    "fusec": 1,
    "inputs": {"x": {"shape": [8]}},
    "blocks": {
        "tow": {
            "inputs": ["i"],
            "nodes": {"d": {"layer": "Dense", "config": {"units": 4}, "inputs": "i"}},
            "outputs": {"o": "d"},
        },
    },
    "nodes": {
        "z_tow": {"block": "tow", "inputs": "x"},
        "m_tow": {"block": "tow", "inputs": "x"},
        "a_tow": {"block": "tow", "inputs": "x"},
        "cat": {"merge": "concat", "inputs": ["z_tow", "m_tow", "a_tow"]},
    },
    "outputs": {"y": {"from": "cat", "loss": "mse"}},
}


def test_block_instances_follow_spec_order(tmp_path: Path) -> None:
    checked = check_spec(write(tmp_path, ORDER_SPEC))
    dot = to_dot(checked)
    frames = re.findall(r"subgraph cluster_(c\d+) \{\n\s*graph \[id=\"c\d+\", label=<<B>(\w+)</B>", dot)
    assert [name for _, name in frames] == ["z_tow", "m_tow", "a_tow"]
    assert [dom for dom, _ in frames] == ["c0", "c1", "c2"]
    cat = dom_of(checked, "cat")
    into = [ln for ln in edge_stmts(dot) if f"-> {cat} " in ln]
    sources = [ln.split(" -> ")[0] for ln in into]
    assert sources == [dom_of(checked, f"{t}__d") for t in ("z_tow", "m_tow", "a_tow")]
    collapsed = to_dot(checked, collapse=True)
    assert collapsed.index("<B>z_tow</B>") < collapsed.index("<B>m_tow</B>") < collapsed.index("<B>a_tow</B>")


# --- c. weightless layers of a shared-weights block ---------------------------------------------


def test_weightless_layers_of_a_shared_block_are_plain(siamese: Checked) -> None:
    dot = to_dot(siamese)
    pool = node_stmt(dot, dom_of(siamese, "tower_b__pool"))
    assert 'fillcolor="#ffffff"' in pool and "weights of call 1" not in pool and "shared" not in pool
    conv = node_stmt(dot, dom_of(siamese, "tower_b__conv"))
    assert "weights of call 1" in conv and "tower__conv ×2: call 2" in conv
    assert "tower__pool" not in dot and "tower__flat" not in dot


# --- d. edge labels --------------------------------------------------------------------------


def test_plain_edges_have_no_label(siamese: Checked) -> None:
    dot = to_dot(siamese)
    plain = [ln for ln in edge_stmts(dot) if "label=" not in ln]
    assert len(plain) >= 8
    assert all("(None" not in ln for ln in edge_stmts(dot))  # no edge repeats its source's shape
    assert "label=<#1>" in dot and "label=<#2>" in dot  # order-sensitive merge inputs keep #k


def test_named_and_gated_inputs_keep_their_names() -> None:
    dot = to_dot(check_spec(ROOT / "specs" / "gated_experts.json"), unfold=True)  # folded: one ×3 edge
    labels = re.findall(r'id="e\d+" label=<([^>]*)>', dot)
    assert "gate" in labels and any(re.fullmatch(r"experts\[\d\]", lb) for lb in labels), labels


# --- e. padding shown ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layer", "config", "shape"),
    [
        ("MaxPooling2D", {"pool_size": 2}, [8, 8, 3]),
        ("AveragePooling2D", {"pool_size": 2}, [8, 8, 3]),
        ("MaxPooling1D", {"pool_size": 2}, [8, 3]),
        ("AveragePooling1D", {"pool_size": 2}, [8, 3]),
        ("Conv2D", {"filters": 4, "kernel_size": 3}, [8, 8, 3]),
        ("Conv1D", {"filters": 4, "kernel_size": 3}, [8, 3]),
        ("DepthwiseConv2D", {"kernel_size": 3}, [8, 8, 3]),
        ("SeparableConv2D", {"filters": 4, "kernel_size": 3}, [8, 8, 3]),
        ("Conv2DTranspose", {"filters": 4, "kernel_size": 3}, [8, 8, 3]),
    ],
)
def test_padding_same_is_shown(tmp_path: Path, layer: str, config: dict[str, Any], shape: list[int]) -> None:
    doc = {
        "fusec": 1,
        "inputs": {"x": {"shape": shape}},
        "nodes": {"p": {"layer": layer, "config": {**config, "padding": "same"}, "inputs": "x"}},
        "outputs": {"y": {"from": "p"}},
    }
    checked = check_spec(write(tmp_path, doc))
    assert "padding=same" in node_stmt(to_dot(checked), "n1")
    plain = {**doc, "nodes": {"p": {"layer": layer, "config": config, "inputs": "x"}}}
    assert "padding=" not in node_stmt(to_dot(check_spec(write(tmp_path, plain, "plain.json"))), "n1")


# --- f. titles -------------------------------------------------------------------------------


@NEEDS_DOT
def test_svg_titles_are_real_ids_and_ids_are_dom_ids(siamese: Checked) -> None:
    svg = render(siamese, "svg").decode()
    titles = re.findall(r"<title>([^<]*)</title>", svg)
    assert not [t for t in titles if re.fullmatch(r"[nobrcet]\d+|cluster_\w+", t)], titles
    assert "tower_a__conv" in titles and "item_a" in titles
    assert any("→" in t for t in titles)  # edges: "a → b"
    ids = set(re.findall(r'<g id="([^"]+)" class="(?:node|edge|cluster)"', svg))
    assert {"n0", "o0", "e0", "c0", "c1"} <= ids


# --- g. ×N -----------------------------------------------------------------------------------


@NEEDS_DOT
def test_fanin_folds_repeated_branches(fanin: Checked) -> None:
    svg = render(fanin, "svg").decode()
    width = float(re.search(r'<svg width="([0-9.]+)pt"', svg)[1])  # type: ignore[index]
    assert width < 2000, width
    dot = to_dot(fanin)
    assert dot.count("<B>×64</B>") == 3 and "64 × 272 = 17,408 params" in dot
    assert 'id="r0"' in dot and len(edge_stmts(dot)) < 20


def test_unfold_draws_every_branch_in_a_cluster(fanin: Checked) -> None:
    dot = to_dot(fanin, unfold=True)
    assert dot.count("subgraph cluster_r") == 3 and "<B>×64</B>" in dot
    assert all(f"{dom_of(fanin, f'g000_b{i:02d}')} [" in dot for i in range(64))


# --- broken specs ------------------------------------------------------------------------------

#: Three mistakes (a string for units, an add of widths 4 and 8, an output from no node); the gallery draws it too.
BROKEN: dict[str, Any] = json.loads((ROOT / "examples" / "broken_example.json").read_text(encoding="utf-8"))


@pytest.fixture
def broken(tmp_path: Path) -> Checked:
    return check_spec(write(tmp_path, BROKEN), lenient=True)  # type: ignore[call-arg]


def test_broken_spec_drawn_with_faults_in_red(broken: Checked) -> None:
    assert len(broken.problems) == 3  # type: ignore[attr-defined]
    dot = to_dot(broken)
    b = node_stmt(dot, dom_of(broken, "b"))
    assert RED in b and "expected integer" in b and ">?<" in b
    c = node_stmt(dot, dom_of(broken, "c"))
    assert RED not in c and ">?<" in c  # its shape is unknown, nothing is wrong with it
    m = dom_of(broken, "m")
    assert RED in node_stmt(dot, m)
    assert all(RED in ln for ln in edge_stmts(dot) if f"-> {m} " in ln)
    assert RED not in node_stmt(dot, dom_of(broken, "a"))
    assert RED in node_stmt(dot, "o1")
    assert "3 errors" in dot and "$.nodes.b.config.units" in dot


@NEEDS_DOT
def test_broken_spec_renders_svg(broken: Checked) -> None:
    svg = render(broken, "svg")
    assert svg.lstrip().startswith(b"<?xml") and RED.encode() in svg


# --- the page data ----------------------------------------------------------------------------


@NEEDS_DOT
@pytest.mark.parametrize("spec", ["siamese", "gated_experts", "inception_twice"])
def test_page_data_matches_the_svg(spec: str) -> None:
    from fusec.render import page_data

    checked = check_spec(ROOT / "specs" / f"{spec}.json")
    data = page_data(checked)
    json.dumps(data)  # plain JSON
    svg = render(checked, "svg").decode()
    ids = set(re.findall(r'<g id="([^"]+)" class="(?:node|edge)"', svg))
    nodes = {i for i in ids if i[0] in "nobr"}
    edges = {i for i in ids if i[0] == "e"}
    assert nodes <= set(data["nodes"]) and edges <= set(data["edges"])
    assert {data["nodes"][f"n{k}"]["id"] for k in range(len(checked.order))} == set(checked.order)
    for dom, entry in data["edges"].items():
        assert entry["from"] in data["nodes"] and entry["to"] in data["nodes"], dom


def test_page_data_paths_and_fields(siamese: Checked) -> None:
    from fusec.render import page_data

    data = page_data(siamese)
    conv = data["nodes"][dom_of(siamese, "tower_b__conv")]
    assert conv["path"] == "$.blocks.tower.nodes.conv" and conv["label"] == "conv"
    assert conv["scope"] == ["tower_b"] and conv["shared"] == "tower__conv" and conv["call"] == 2
    assert conv["kind"] == "shared" and conv["shape"] == "(None, 26, 26, 8)" and isinstance(conv["line"], int)
    pool = data["nodes"][dom_of(siamese, "tower_b__pool")]
    assert pool["kind"] == "layer" and pool["shared"] is None
    same = data["nodes"][dom_of(siamese, "same")]
    assert same["path"] == "$.nodes.same" and same["line"] and same["inputs"][0]["dom"] == dom_of(siamese, "sq_diff")
    assert data["groups"]["c0"]["kind"] == "block" and data["groups"]["c0"]["shared_weights"] is True
    assert data["shared"]["tower__conv"] == [dom_of(siamese, "tower_a__conv"), dom_of(siamese, "tower_b__conv")]
    assert data["totals"]["params"] == siamese.totals.params and data["diff"] is None and data["problems"] == []


def test_page_data_of_a_broken_spec(broken: Checked) -> None:
    from fusec.render import page_data

    data = page_data(broken)
    json.dumps(data)
    b = data["nodes"][dom_of(broken, "b")]
    assert b["problems"] and b["shape"] is None
    paths = {p["path"] for p in data["problems"]}
    assert "$.nodes.b.config.units" in paths
    units = next(p for p in data["problems"] if p["path"] == "$.nodes.b.config.units")
    assert units["nodes"] == [dom_of(broken, "b")] and units["line"] == 1


def test_page_data_groups_of_the_fanin(fanin: Checked) -> None:
    from fusec.render import page_data

    data = page_data(fanin)
    repeats = {k: g for k, g in data["groups"].items() if g["kind"] == "repeat"}
    assert len(repeats) == 3 and all(g["count"] == 64 and len(g["members"]) == 64 for g in repeats.values())
    assert data["nodes"]["r0"]["kind"] == "repeat" and data["nodes"]["r0"]["params"] == 64 * 272


@NEEDS_DOT
def test_html_page_holds_both_views_and_the_data(fanin: Checked) -> None:
    page = render(fanin, "html")
    assert isinstance(page, bytes) and b"g000_b00" in page
    assert b'"r0"' in page and b'"unfolded"' in page  # the ×64 group, and the view with it unfolded
