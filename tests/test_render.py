"""fusec render: every spec drawn, escaping, determinism, styling, errors, no TensorFlow."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
from click.testing import CliRunner

from fusec.cli.render import render_command
from fusec.errors import FusecError
from fusec.render import LARGE, render, to_dot
from fusec.render.style import MERGE_DEFAULT, MERGE_LOOKS, esc, merge_look
from fusec.spec.graph import Ref
from fusec.spec.load import Spec
from fusec.static.check import Checked, check_spec
from fusec.static.shapes import NodeInfo, Shapes, total_params
from fusec.vocab.merges import MERGES
from helpers import write

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.json"))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NEEDS_DOT = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
LABELS = re.compile(r"label=<<TABLE.*?</TABLE>>|label=<<B>[^<>]*</B>>|label=<[^<>]*>")

HOSTILE = '<b>bold</b> & "quoted" \\back {braces}: colon \'single\' ]; node [URL="x"]'

SHARED_SPEC: dict[str, Any] = {
    "fusec": 1,
    "name": "tasks",
    "doc": HOSTILE,
    "inputs": {"x": {"shape": [8], "doc": HOSTILE}},
    "shared": {"head": {"layer": "Dense", "config": {"units": 1}}},
    "nodes": {
        "trunk": {
            "layer": "Dense",
            "config": {"units": 8},
            "inputs": "x",
            "trainable": False,
            "doc": HOSTILE,
        },
        "a": {"layer": "Dense", "config": {"units": 4}, "inputs": "trunk"},
        "b": {"layer": "Dense", "config": {"units": 4}, "inputs": "trunk"},
        "c": {"layer": "Dense", "config": {"units": 4}, "inputs": "trunk"},
        "ya": {"shared": "head", "inputs": "a"},
        "yb": {"shared": "head", "inputs": "b"},
        "yc": {"shared": "head", "inputs": "c"},
        "both": {"merge": "concat", "inputs": ["ya", "yb"]},
        "sum": {"merge": "add", "inputs": ["both", "both"]},
    },
    "outputs": {
        "t1": {"from": "sum", "loss": "mse", "loss_weight": 0.5, "doc": HOSTILE},
        "t2": {"from": "yc", "loss": "mae"},
    },
}


@pytest.fixture(scope="module")
def tasks(tmp_path_factory: pytest.TempPathFactory) -> Checked:
    return check_spec(write(tmp_path_factory.mktemp("tasks"), SHARED_SPEC, "tasks.json"))


def svg_texts(svg: bytes) -> list[str]:
    root = ET.fromstring(svg)
    # <title> elements (hover text) hold each element's real id, escaped: drawn text is the rest
    return [el.text for el in root.iter() if el.text and el.text.strip() and not el.tag.endswith("title")]


# --- every bundled spec -------------------------------------------------------


@NEEDS_DOT
@pytest.mark.parametrize("fmt", ["svg", "png", "dot"])
@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_every_spec_renders(path: Path, fmt: str) -> None:
    data = render(check_spec(path), fmt)
    if fmt == "png":
        assert data.startswith(PNG_MAGIC)
    elif fmt == "svg":
        assert ET.fromstring(data).tag.endswith("svg")
    else:
        assert data.startswith(b'digraph "') and data.rstrip().endswith(b"}")


@NEEDS_DOT
@pytest.mark.parametrize("fmt", ["dot", "svg"])
@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_deterministic(path: Path, fmt: str) -> None:
    assert render(check_spec(path), fmt) == render(check_spec(path), fmt)


@NEEDS_DOT
@pytest.mark.parametrize("fmt", ["png", "pdf"])
def test_deterministic_binary(tasks: Checked, fmt: str) -> None:
    first, second = render(tasks, fmt), render(tasks, fmt)
    assert hashlib.sha256(first).digest() == hashlib.sha256(second).digest()


# --- escaping -----------------------------------------------------------------

ESCAPES = [
    ("xml", "<a href='x'>&</a>", "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;"),
    ("quotes", 'say "hi"', "say &quot;hi&quot;"),
    ("dot-specials", "a\\b {c}: d; e -> f", "a\\b {c}: d; e -&gt; f"),
    ("spaces", "a  b\u00a0 c ", "a b c"),
    ("newline-tab", "h\n\tx", "h\\x0a\\x09x"),
    ("control", "bell\x07\x00end\ud800\x1b[31m", "bell\\x07\\x00end\\ud800\\x1b[31m"),
    ("bidi", "abc\u202edcba\u2066x\u2069", "abc\\u202edcba\\u2066x\\u2069"),
    ("zero-width", "a\u200bb\u200dc\ufeffd\u00ade", "a\\u200bb\\u200dc\\ufeffd\\xade"),
    ("separators", "a\u2028b\u2029c\x85d", "a\\u2028b\\u2029c\\x85d"),
    ("noncharacters", "a\ufffe\uffffb\U000e0041", "a\\ufffe\\uffffb\\U000e0041"),
    ("unicode", "ünï × 漢字 🙂", "ünï × 漢字 🙂"),
]


@pytest.mark.parametrize(("text", "want"), [(t, w) for _, t, w in ESCAPES], ids=[i for i, _, _ in ESCAPES])
def test_esc(text: str, want: str) -> None:
    assert esc(text) == want


def test_free_text_wraps_on_any_white_space_and_shows_the_rest() -> None:
    from fusec.render.style import wrap

    assert wrap("one\ntwo\tthree\u2028four", 100, 2) == ["one two three four"]
    assert wrap("evil \u202e txt.exe \u200b", 100, 2) == ["evil \\u202e txt.exe \\u200b"]


@NEEDS_DOT
def test_free_text_shown_literally(tasks: Checked) -> None:
    svg = render(tasks, "svg")
    texts = svg_texts(svg)
    assert any("<b>bold</b>" in t for t in texts)  # shown as text...
    assert b"<b>" not in svg and b"&lt;b&gt;bold&lt;/b&gt;" in svg  # ...never as markup
    for fragment in ('"quoted"', "\\back", "{braces}: colon", "'single'"):
        assert any(fragment in t for t in texts), fragment
    attributes = LABELS.sub("label=...", to_dot(tasks))  # what is left outside the escaped labels
    assert "<" not in attributes.replace("->", "")
    assert not re.search(r"\b(URL|href|tooltip|image|target)\s*=", attributes, re.IGNORECASE)
    # ids are the synthetic DOM ids only (n0, e3, c1...), never a spec string
    assert all(re.fullmatch(r"[nobrcet][0-9]+", v) for v in re.findall(r'\bid="([^"]*)"', attributes))
    assert not re.search(rb"<a |href=|<image", svg)


def hostile_checked() -> Checked:
    """A graph no schema would accept: ids, names and shared ids built to break DOT and HTML."""
    bad_in, bad_mid, bad_sh = 'in"]; evil [label="pwn', "<img src=x onerror=alert(1)>", "sh}\n{a\\"
    g = nx.DiGraph(outputs={'out"<1>': Ref((), bad_mid, ())}, shared={bad_sh: {"layer": "Dense"}})
    g.add_node(bad_in, kind="input", spec={"shape": [4], "doc": "-> n0"}, refs=[], path=())
    g.add_node(bad_mid, kind="shared", spec={"shared": bad_sh}, refs=[Ref((), bad_in, ())], path=())
    g.add_edge(bad_in, bad_mid)
    info = {
        bad_in: NodeInfo("input", "float32", (None, 4)),
        bad_mid: NodeInfo("shared", "Dense", (None, 2), 10, 0, bad_sh, 1),
    }
    doc = {"name": 'x" { graph', "outputs": {'out"<1>': {"from": bad_mid, "loss": "<mse>"}}}
    return Checked(Spec(Path("hostile.json"), doc, "", ""), g, [bad_in, bad_mid], Shapes(info), total_params(info))


@NEEDS_DOT
def test_hostile_ids_cannot_inject() -> None:
    checked = hostile_checked()
    dot = to_dot(checked)
    names = re.findall(r"^\s*(\S+) \[", dot, re.MULTILINE)
    assert sorted(n for n in names if n not in ("graph", "node", "edge")) == ["n0", "n1", "o0"]
    assert dot.startswith('digraph "model" {')
    svg = render(checked, "svg")
    texts = svg_texts(svg)
    for literal in ('in"]; evil [label="pwn', "<img src=x onerror=alert(1)>", 'out"<1>', "loss <mse> × 1.0"):
        assert any(literal in t for t in texts), literal
    assert b"<img" not in svg
    titles = b"".join(re.findall(rb"<title>.*?</title>", svg))  # the real ids, as text: escaped
    assert b"in&quot;]; evil [label=&quot;pwn" in titles and b"&lt;img src=x" in titles


UNSAFE = {"\u202e": "\\u202e", "\u200b": "\\u200b", "\x1b": "\\x1b", "\u2066": "\\u2066", "\ufeff": "\\ufeff"}


def twin_ids_checked() -> Checked:
    """Ids that differ only by a trailing new line, and unsafe characters in every free-text field."""
    evil = "".join(UNSAFE)
    g = nx.DiGraph(outputs={"y\u202e": Ref((), "h\n", ())}, shared={})
    g.add_node("x", kind="input", spec={"shape": [4], "doc": f"in{evil}put"}, refs=[], path=())
    g.add_node("h", kind="layer", spec={"layer": "Dense", "doc": evil}, refs=[Ref((), "x", ())], path=())
    g.add_node("h\n", kind="layer", spec={"layer": "Dense"}, refs=[Ref((), "h", ())], path=())
    g.add_edges_from([("x", "h"), ("h", "h\n")])
    info = {
        "x": NodeInfo("input", "float32", (None, 4)),
        "h": NodeInfo("layer", "Dense", (None, 4), 20),
        "h\n": NodeInfo("layer", "Dense", (None, 4), 20),
    }
    doc = {"name": "twins\n", "doc": f"title {evil}", "outputs": {"y\u202e": {"from": "h\n", "doc": evil}}}
    return Checked(Spec(Path("twins.json"), doc, "", ""), g, ["x", "h", "h\n"], Shapes(info), total_params(info))


def test_unsafe_characters_are_escaped_visibly_in_dot() -> None:
    dot = to_dot(twin_ids_checked())
    for raw, shown in UNSAFE.items():
        assert raw not in dot and shown in dot, shown
    assert dot.startswith('digraph "model" {')  # `twins\n` is not an identifier
    labels = re.findall(r"<B>([^<]*)</B>", dot)
    assert "h" in labels and "h\\x0a" in labels  # two nodes, two different labels
    assert len(set(labels)) == len(labels)
    assert "y\\u202e" in labels


@NEEDS_DOT
def test_unsafe_characters_are_escaped_visibly_in_svg() -> None:
    svg = render(twin_ids_checked(), "svg").decode("utf-8")
    for raw, shown in UNSAFE.items():
        assert raw not in svg and shown in svg, shown
    texts = svg_texts(svg.encode("utf-8"))
    assert texts.count("h") == 1 and texts.count("h\\x0a") == 1


def test_unsafe_characters_in_a_checked_spec(tmp_path: Path) -> None:
    """Docs, names and loss text as a spec can carry them (JSON escapes are legal there)."""
    doc = {
        "fusec": 1,
        "name": "bidi",
        "doc": "safe \u202egnp.exe",
        "inputs": {"x": {"shape": [8], "doc": "zero\u200bwidth"}},
        "nodes": {"y": {"layer": "Dense", "config": {"units": 1}, "inputs": "x", "doc": "esc \x1b[2J"}},
        "outputs": {"y": {"from": "y", "loss": "mse", "doc": "iso\u2066late"}},
    }
    dot = to_dot(check_spec(write(tmp_path, doc)))
    for raw in ("\u202e", "\u200b", "\x1b", "\u2066"):
        assert raw not in dot
    for shown in ("safe \\u202egnp.exe", "zero\\u200bwidth", "esc \\x1b[2J", "iso\\u2066late"):
        assert shown in dot, shown


# --- every reference form -------------------------------------------------------

LSTM_PORTS: dict[str, Any] = {
    "fusec": 1,
    "name": "ports",
    "inputs": {"seq": {"shape": [5, 3]}},
    "nodes": {
        "lstm": {"layer": "LSTM", "config": {"units": 4, "return_state": True}, "inputs": "seq"},
        "from_h": {"layer": "Dense", "config": {"units": 2}, "inputs": "lstm.1"},
        "from_c": {"layer": "Dense", "config": {"units": 2}, "inputs": "lstm.2"},
        "both": {"merge": "concat", "inputs": ["from_h", "from_c", "lstm.0"]},
    },
    "outputs": {"y": {"from": "both", "loss": "mse"}, "cell": {"from": "lstm.2"}, "seq_out": {"from": "lstm"}},
}
BLOCK_PORTS: dict[str, Any] = {
    "fusec": 1,
    "name": "block_ports",
    "inputs": {"x": {"shape": [8]}},
    "blocks": {
        "two": {
            "inputs": ["v"],
            "nodes": {
                "a": {"layer": "Dense", "config": {"units": 3}, "inputs": "v"},
                "b": {"layer": "Dense", "config": {"units": 5}, "inputs": "v"},
            },
            "outputs": {"left": "a", "right": "b"},
        },
        "wrap": {
            "inputs": ["v"],
            "nodes": {"inner": {"block": "two", "inputs": {"v": "v"}}},
            "outputs": {"l": "inner.left", "r": "inner.right"},
        },
    },
    "nodes": {
        "t": {"block": "two", "inputs": {"v": "x"}},
        "w": {"block": "wrap", "inputs": "x"},
        "m": {"merge": "concat", "inputs": ["t.left", "t.right", "w.l", "w.r"]},
    },
    "outputs": {"y": {"from": "m", "loss": "mse"}, "right": {"from": "t.right"}},
}
NAMED_SLOTS: dict[str, Any] = {
    "fusec": 1,
    "name": "slots",
    "inputs": {"q": {"shape": [4, 8]}, "v": {"shape": [6, 8]}, "f": {"shape": [8]}},
    "shared": {"mha": {"layer": "MultiHeadAttention", "config": {"num_heads": 2, "key_dim": 4}}},
    "nodes": {
        "a1": {"shared": "mha", "inputs": {"query": "q", "value": "v"}},
        "a2": {"shared": "mha", "inputs": {"query": "a1", "value": "v"}},
        "self_att": {"layer": "MultiHeadAttention", "config": {"num_heads": 2, "key_dim": 4}, "inputs": "q"},
        "s": {"merge": "add", "inputs": ["a2", "self_att"]},
        "pool": {"layer": "GlobalAveragePooling1D", "inputs": "s"},
        "e1": {"layer": "Dense", "config": {"units": 8}, "inputs": "f"},
        "gate": {"layer": "Dense", "config": {"units": 2, "activation": "softmax"}, "inputs": "f"},
        "g": {"merge": "gated", "inputs": {"experts": ["pool", "e1"], "gate": "gate"}},
    },
    "outputs": {"y": {"from": "g", "loss": "mse"}},
}
TWO_OUTPUTS: dict[str, Any] = {
    "fusec": 1,
    "name": "two_outputs",
    "inputs": {"x": {"shape": [8]}},
    "nodes": {
        "a": {"layer": "Dense", "config": {"units": 3}, "inputs": "x"},
        "b": {"layer": "Dense", "config": {"units": 2}, "inputs": "x"},
    },
    "outputs": {"a": {"from": "a", "loss": "mse"}, "b": {"from": "b", "loss": "mse"}},
}
SUB_MODELS: dict[str, Any] = {
    "fusec": 1,
    "name": "subs",
    "inputs": {"x": {"shape": [8]}, "image": {"shape": [32, 32, 3]}},
    "nodes": {
        "sub_b": {"model": "two.json", "output": "b", "inputs": "x"},
        "sub_a": {"model": "two.json", "output": "a", "inputs": {"x": "x"}},
        "cnn": {"model": "cnn.keras", "inputs": "image", "trainable": False},
        "m": {"merge": "concat", "inputs": ["sub_a", "sub_b", "cnn"]},
    },
    "outputs": {"y": {"from": "m", "loss": "mse"}},
}
REFERENCE_SPECS = {
    "lstm-ports": LSTM_PORTS,
    "block-ports": BLOCK_PORTS,
    "named-slots": NAMED_SLOTS,
    "sub-models": SUB_MODELS,
}


def edges(dot: str) -> list[tuple[str, str, str]]:
    """(source, target, label) of every edge; "" when an edge has no label (a plain one: the shape is in its source)."""
    return re.findall(r'^\s*(\w+) -> (\w+) \[id="e\d+"(?: (?:xlabel|label)=<([^>]*)>)?', dot, re.MULTILINE)


@pytest.mark.parametrize("name", sorted(REFERENCE_SPECS))
def test_every_reference_form_renders(name: str, tmp_path: Path) -> None:
    """Each documented way to name a tensor draws: one edge per reference, labelled with its shape."""
    shutil.copy(ROOT / "specs" / "parts" / "image_classifier.keras", tmp_path / "cnn.keras")
    write(tmp_path, TWO_OUTPUTS, "two.json")
    checked = check_spec(write(tmp_path, REFERENCE_SPECS[name], f"{name}.json"))
    dot = to_dot(checked)
    refs = sum(len(checked.graph.nodes[n]["refs"]) for n in checked.order)
    assert len(edges(dot)) == refs + len(checked.graph.graph["outputs"])
    assert to_dot(checked, collapse=True).count(" -> ") >= len(checked.graph.graph["outputs"])


def test_port_references_are_labelled_with_their_port(tmp_path: Path) -> None:
    dot = to_dot(check_spec(write(tmp_path, LSTM_PORTS)))
    labels = {label for _, _, label in edges(dot)}
    assert {".1 (None, 4)", ".2 (None, 4)", "#3 .0 (None, 4)"} <= labels, labels
    outs = [label for src, dst, label in edges(dot) if dst.startswith("o")]
    # an output's edge is plain (the shape is printed in its source node) unless it names a port
    assert sorted(outs) == ["", "", ".2 (None, 4)"]


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_every_bundled_spec_draws_as_dot(path: Path) -> None:
    """DOT needs no Graphviz: every bundled spec, expanded, folded and at depth 1."""
    checked = check_spec(path)
    for kwargs in ({}, {"collapse": True}, {"depth": 1}, {"rankdir": "LR"}):
        dot = to_dot(checked, **kwargs)  # type: ignore[arg-type]
        assert dot.startswith('digraph "') and dot.endswith("}\n")
    # unfolded: every branch of repeated parallel branches drawn (folded, N references draw one edge)
    assert len(edges(to_dot(checked, unfold=True))) >= len(checked.order) - len(checked.doc["inputs"])


# --- what the diagram shows ---------------------------------------------------


def node_line(dot: str, label_fragment: str) -> str:
    lines = [ln for ln in dot.splitlines() if label_fragment in ln and " -> " not in ln]
    assert len(lines) == 1, (label_fragment, lines)
    return lines[0]


def test_shared_calls_labelled_and_coloured(tasks: Checked) -> None:
    dot = to_dot(tasks)
    lines = [node_line(dot, f"head ×3: call {k}") for k in (1, 2, 3)]
    fills = {re.search(r'fillcolor="([^"]+)"', ln).group(1) for ln in lines}  # type: ignore[union-attr]
    assert len(fills) == 1 and "#ffffff" not in fills
    assert "5 params" in lines[0] and "weights of call 1" in lines[1]
    assert dot.count("style=dotted") == 2  # the tie: call 1 .. call 2 .. call 3
    assert "shared head ×3" in dot  # the legend swatch


@pytest.mark.parametrize(
    ("node", "want"),
    [
        ("trunk", ['style="rounded,filled,dashed"', "Dense · frozen"]),
        ("both", ["shape=invtrapezium", "‖ concat", "label=<#1>"]),
        ("sum", ["shape=octagon", "⊕ add"]),
        ("x", ["shape=ellipse", "input · float32"]),
    ],
    ids=["frozen", "concat", "add", "input"],
)
def test_node_styles(tasks: Checked, node: str, want: list[str]) -> None:
    dot = to_dot(tasks)
    text = node_line(dot, f"<B>{node}</B>") + "\n" + "\n".join(ln for ln in dot.splitlines() if " -> " in ln)
    for fragment in want:
        assert fragment in text, fragment


def test_every_merge_mode_has_its_own_look() -> None:
    looks = [merge_look(mode) for mode in MERGES]
    assert all(mode in MERGE_LOOKS for mode in MERGES)
    assert len({lk.shape for lk in looks}) == len(looks)
    assert len({lk.fill for lk in looks}) == len(looks)
    assert merge_look("not_yet_invented") is MERGE_DEFAULT


def test_title_totals_outputs_and_legend(tasks: Checked) -> None:
    dot = to_dot(tasks)
    t = tasks.totals
    assert f"{t.params:,} params · {t.trainable:,} trainable · {t.non_trainable:,} non-trainable" in dot
    assert "loss mse × 0.5" in dot and "loss mae × 1.0" in dot
    for swatch in (
        "input",
        "layer",
        "frozen (trainable: false)",
        "‖ concat",
        "⊕ add",
        "output (loss × weight)",
    ):
        assert f">{esc(swatch)} <I>" in dot, swatch


BLOCKS_SPEC: dict[str, Any] = {
    "fusec": 1,
    "name": "blocks",
    "inputs": {"x": {"shape": [8]}},
    "blocks": {
        "inner": {
            "inputs": ["v"],
            "nodes": {"d": {"layer": "Dense", "config": {"units": 4}, "inputs": "v"}},
            "outputs": {"out": "d"},
        },
        "outer": {
            "inputs": ["v"],
            "nodes": {
                "i": {"block": "inner", "inputs": "v"},
                "e": {"layer": "Dense", "config": {"units": 4}, "inputs": "i"},
            },
            "outputs": {"out": "e"},
        },
        "tied": {
            "shared_weights": True,
            "inputs": ["v"],
            "nodes": {"t": {"layer": "Dense", "config": {"units": 4}, "inputs": "v"}},
            "outputs": {"out": "t"},
        },
    },
    "nodes": {
        "o1": {"block": "outer", "inputs": "x"},
        "t1": {"block": "tied", "inputs": "o1"},
        "t2": {"block": "tied", "inputs": "t1"},
        "y": {"layer": "Dense", "config": {"units": 1}, "inputs": "t2"},
    },
    "outputs": {"y": {"from": "y", "loss": "mse"}},
}


@pytest.mark.parametrize(
    ("kwargs", "want", "absent"),
    [
        (
            {},
            [
                "<B>o1</B> · outer",
                "<B>i</B> · inner",
                "shared weights: instance 2 of 2",
                "tied__t ×2: call 2",
            ],
            ["box3d"],
        ),
        ({"depth": 1}, ["<B>o1</B> · outer", "box3d", "inner · 1 node"], ["<B>i</B> · inner"]),
        ({"collapse": True}, ["box3d", "outer · 2 nodes", "tied · 1 node"], ["subgraph"]),
    ],
    ids=["expanded", "depth1", "collapsed"],
)
def test_blocks_as_clusters(tmp_path: Path, kwargs: dict[str, Any], want: list[str], absent: list[str]) -> None:
    checked = check_spec(write(tmp_path, BLOCKS_SPEC))
    dot = to_dot(checked, **kwargs)
    for fragment in want:
        assert fragment in dot, fragment
    for fragment in absent:
        assert fragment not in dot, fragment


def test_large_graph_bounds_layout(tmp_path: Path) -> None:
    nodes = {
        f"d{i}": {"layer": "Dense", "config": {"units": 4}, "inputs": f"d{i - 1}" if i else "x"} for i in range(LARGE)
    }
    doc = {"fusec": 1, "name": "deep", "inputs": {"x": {"shape": [4]}}, "nodes": nodes}
    doc["outputs"] = {"y": {"from": f"d{LARGE - 1}", "loss": "mse"}}
    assert "nslimit=" in to_dot(check_spec(write(tmp_path, doc)))
    assert "nslimit=" not in to_dot(check_spec(write(tmp_path, SHARED_SPEC, "small.json")))


# --- errors -------------------------------------------------------------------


def fake_dot(folder: Path, script: str) -> None:
    exe = folder / "dot"
    exe.write_text(f"#!/bin/sh\n{script}\n")
    exe.chmod(0o755)


@pytest.mark.parametrize(
    ("script", "fragment", "hint"),
    [
        (None, "`dot` program was not found", "apt-get install graphviz"),
        ("exec /bin/sleep 5", "took longer than 0.3 s", "--timeout"),
        ("echo 'Error: boom' >&2; exit 3", "failed: Error: boom", "dot -V"),
    ],
    ids=["missing", "timeout", "crash"],
)
def test_dot_problems(
    tasks: Checked,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    script: str | None,
    fragment: str,
    hint: str,
) -> None:
    if script is not None:
        fake_dot(tmp_path, script)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FusecError) as exc:
        render(tasks, "svg", timeout=0.3)
    (problem,) = exc.value.problems
    assert fragment in problem.message and hint in problem.hint and problem.code == "render"
    assert "\n" not in str(exc.value)
    assert render(tasks, "dot").startswith(b"digraph")  # DOT text needs no Graphviz


def test_missing_dot_cli_one_line_and_old_file_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = write(tmp_path, SHARED_SPEC)
    out = tmp_path / "old.svg"
    out.write_text("previous")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = CliRunner().invoke(render_command, [str(spec), "-o", str(out)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "brew install graphviz" in lines[0]
    assert out.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.svg", "spec.json"]


# --- the command --------------------------------------------------------------

CLI_CASES = [
    ("ext-png", ["-o", "d.png"], 0, "d.png", PNG_MAGIC),
    ("ext-dot", ["-o", "d.dot"], 0, "d.dot", b"digraph"),
    ("format-flag", ["--format", "pdf", "-o", "diagram.out.x"], 0, "diagram.out.x", b"%PDF"),
    ("default-name", [], 0, "tasks.svg", b"<?xml"),
    ("format-default-name", ["--format", "dot", "--rankdir", "LR"], 0, "tasks.dot", b"digraph"),
    ("clash", ["-o", "d.png", "--format", "svg"], 2, None, None),
    ("unknown-ext", ["-o", "d.txt"], 2, None, None),
    ("bad-rankdir", ["--rankdir", "BT"], 2, None, None),
    ("stdout-json", ["-o", "-", "--json"], 2, None, None),
    ("no-folder", ["-o", "missing/d.svg"], 1, None, None),
]


@NEEDS_DOT
@pytest.mark.parametrize(("args", "code", "file", "magic"), [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_cli(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    code: int,
    file: str | None,
    magic: bytes | None,
) -> None:
    spec = write(tmp_path, SHARED_SPEC, "tasks.json")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(render_command, [str(spec), *args])
    assert result.exit_code == code, result.output
    if file is not None and magic is not None:
        assert (tmp_path / file).read_bytes().startswith(magic)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_render_replaces_a_regular_file_through_a_temporary_one(tmp_path: Path) -> None:
    spec = write(tmp_path, SHARED_SPEC, "tasks.json")
    out = tmp_path / "d.dot"
    out.write_text("old diagram")
    inode = out.stat().st_ino
    result = CliRunner().invoke(render_command, [str(spec), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"digraph") and out.stat().st_ino != inode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.dot", "tasks.json"]


def test_render_never_takes_a_path_created_meanwhile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process creates the output between fusec's last check and its rename: it stays."""
    import fusec.files

    spec = write(tmp_path, SHARED_SPEC, "tasks.json")
    out = tmp_path / "d.dot"
    real = fusec.files.renameat2

    def racing(a: Path, b: Path, flags: int) -> bool:
        b.write_text("precious")
        return real(a, b, flags)

    monkeypatch.setattr(fusec.files, "renameat2", racing)
    result = CliRunner().invoke(render_command, [str(spec), "-o", str(out)])
    assert result.exit_code == 1
    assert "was created by another process while fusec wrote it" in result.output
    assert out.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.dot", "tasks.json"]


def test_render_puts_back_what_replaced_the_file_meanwhile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The output file becomes a FIFO just before the swap: fusec swaps back and reports it; the FIFO stays."""
    import stat

    import fusec.files

    spec = write(tmp_path, SHARED_SPEC, "tasks.json")
    out = tmp_path / "d.dot"
    out.write_text("old diagram")
    real = fusec.files.exchange
    calls: list[int] = []

    def racing(a: Path, b: Path) -> bool:
        if not calls:
            b.unlink()
            os.mkfifo(b)
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(fusec.files, "exchange", racing)
    result = CliRunner().invoke(render_command, [str(spec), "-o", str(out)])
    assert result.exit_code == 1
    assert "was replaced by another process while fusec wrote it" in result.output
    assert stat.S_ISFIFO(out.lstat().st_mode) and len(calls) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.dot", "tasks.json"]


def test_cli_stdout_and_json(tmp_path: Path) -> None:
    spec = write(tmp_path, SHARED_SPEC, "tasks.json")
    result = CliRunner().invoke(render_command, [str(spec), "-o", "-", "--format", "dot"])
    assert result.exit_code == 0 and result.output.startswith('digraph "tasks"')
    result = CliRunner().invoke(render_command, [str(spec), "-o", str(tmp_path / "t.dot"), "--json"])
    payload = json.loads(result.output)
    assert payload["ok"] and payload["format"] == "dot" and payload["nodes"] == 10


def test_cli_bad_spec_exit_1(tmp_path: Path) -> None:
    spec = write(tmp_path, {**SHARED_SPEC, "outputs": {"t": {"from": "nope", "loss": "mse"}}})
    result = CliRunner().invoke(render_command, [str(spec), "-o", str(tmp_path / "x.svg")])
    assert result.exit_code == 1 and "error: " in result.output and "$.outputs.t.from" in result.output
    # a broken spec is drawn (what can be drawn, the fault in red), and still exits 1
    assert b"#cb181d" in (tmp_path / "x.svg").read_bytes()


# --- no TensorFlow --------------------------------------------------------------

RUNNER = """
import sys
from fusec.cli.render import render_command
out = sys.argv[1]
for spec in sys.argv[2:]:
    for fmt in ("svg", "png"):
        stem = spec.rsplit("/", 1)[-1][:-5]
        render_command.main([spec, "-o", f"{out}/{stem}.{fmt}"], standalone_mode=False)
assert "tensorflow" not in sys.modules and "keras" not in sys.modules
"""


@NEEDS_DOT
def test_render_without_tensorflow(tmp_path: Path, no_tf: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(no_tf)}
    blocked = subprocess.run([sys.executable, "-c", "import keras"], env=env, capture_output=True)
    assert blocked.returncode != 0  # the shim works
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, str(out), *map(str, SPECS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    for spec in SPECS:
        assert (out / f"{spec.stem}.png").read_bytes().startswith(PNG_MAGIC)
        ET.fromstring((out / f"{spec.stem}.svg").read_bytes())


def test_render_refuses_read_only_folder_and_honours_allow_dir(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from fusec.cli import cli

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        result = CliRunner().invoke(cli, ["render", str(ROOT / "specs" / "image_tag.json"), "-o", str(ro / "x.svg")])
        assert result.exit_code == 1 and "is not writable" in result.output, result.output
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)
    home = tmp_path / "home"
    home.mkdir()
    spec = {
        "fusec": 1,
        "inputs": {"image": {"shape": [32, 32, 3]}},
        "nodes": {"cnn": {"model": str(ROOT / "specs" / "parts" / "image_classifier.keras"), "inputs": "image"}},
        "outputs": {"p": {"from": "cnn"}},
    }
    path = home / "s.json"
    path.write_text(json.dumps(spec))
    out = tmp_path / "s.svg"
    refused = CliRunner().invoke(cli, ["render", str(path), "-o", str(out)])
    assert refused.exit_code == 1 and "--allow-dir" in refused.output
    allowed = CliRunner().invoke(
        cli, ["render", str(path), "-o", str(out), "--allow-dir", str(ROOT / "specs" / "parts")]
    )
    assert allowed.exit_code == 0, allowed.output
    assert out.read_bytes().lstrip().startswith(b"<?xml")
