"""Graph checks: ids, references, arity, cycles, reachability, order."""

from __future__ import annotations

from typing import Any

import pytest

from fusec.errors import GraphError
from fusec.spec.graph import build_graph, topo_order
from fusec.spec.schema import validate_schema
from helpers import spec


def dense(src: str, units: int = 4) -> dict[str, Any]:
    return {"layer": "Dense", "config": {"units": units}, "inputs": src}


CASES = [
    (
        "dangling-near",
        spec(nodes={"hidden": dense("x"), "y": dense("hiden", 1)}),
        "$.nodes.y.inputs",
        "no node or input named `hiden`",
        "did you mean `hidden`?",
    ),
    (
        "dangling-far",
        spec(nodes={"y": dense("zzz", 1)}),
        "$.nodes.y.inputs",
        "no node or input named `zzz`",
        "valid: `x`, `y`",
    ),
    (
        "dangling-in-list",
        spec(nodes={"a": dense("x"), "m": {"merge": "add", "inputs": ["a", "b"]}, "y": dense("m", 1)}),
        "$.nodes.m.inputs[1]",
        "no node or input named `b`",
        "",
    ),
    (
        "dangling-output",
        spec(outputs={"y": {"from": "yy"}}),
        "$.outputs.y.from",
        "no node or input named `yy`",
        "did you mean `y`?",
    ),
    (
        "dangling-shared",
        spec(
            shared={"head": {"layer": "Dense", "config": {"units": 1}}},
            nodes={"y": {"shared": "haed", "inputs": "x"}},
        ),
        "$.nodes.y.shared",
        "no shared layer named `haed`",
        "did you mean `head`?",
    ),
    (
        "shared-as-input",
        spec(
            shared={"head": {"layer": "Dense", "config": {"units": 1}}},
            nodes={"c": {"shared": "head", "inputs": "x"}, "y": dense("head", 1)},
        ),
        "$.nodes.y.inputs",
        "`head` is a shared layer, not a node",
        '{"shared": "head"',
    ),
    (
        "duplicate-id",
        spec(inputs={"x": {"shape": [8]}, "h": {"shape": [2]}}),
        "$.nodes.h",
        "id `h` is used in both `inputs` and `nodes`",
        "rename one",
    ),
    (
        "self-loop",
        spec(nodes={"h": dense("h"), "y": dense("x", 1)}),
        "$.nodes.h.inputs",
        "cycle: h -> h",
        "acyclic",
    ),
    (
        "long-cycle",
        spec(nodes={"a": dense("c"), "b": dense("a"), "c": dense("b"), "y": dense("x", 1)}),
        "$.nodes.a.inputs",
        "cycle: a -> b -> c -> a",
        "",
    ),
    (
        "unused-input",
        spec(inputs={"x": {"shape": [8]}, "extra": {"shape": [3]}}),
        "$.inputs.extra",
        "input `extra` is not used",
        "remove it",
    ),
    (
        "dead-node",
        spec(nodes={"h": dense("x"), "y": dense("h", 1), "orphan": dense("h", 2)}),
        "$.nodes.orphan",
        "node `orphan` does not reach any output",
        "",
    ),
    (
        "unused-shared",
        spec(shared={"s": {"layer": "Dense", "config": {"units": 1}}}),
        "$.shared.s",
        "shared layer `s` is never called",
        "",
    ),
    (
        "layer-two-inputs",
        spec(nodes={"h": dense("x"), "y": {"layer": "Dense", "config": {"units": 1}, "inputs": ["x", "h"]}}),
        "$.nodes.y.inputs",
        "a layer node takes exactly one input. Received: 2",
        "merge several inputs first",
    ),
    (
        "merge-one-input",
        spec(nodes={"y": {"merge": "concat", "inputs": ["x"]}}),
        "$.nodes.y.inputs",
        "merge `y` (concat) needs at least 2 inputs. Received: 1",
        "",
    ),
    (
        "subtract-three",
        spec(nodes={"y": {"merge": "subtract", "inputs": ["x", "x", "x"]}}),
        "$.nodes.y.inputs",
        "needs exactly 2 inputs. Received: 3",
        "",
    ),
    (
        "merge-string-input",
        spec(nodes={"y": {"merge": "add", "inputs": "x"}}),
        "$.nodes.y.inputs",
        "takes a list of inputs",
        "",
    ),
]


@pytest.mark.parametrize(("doc", "path", "fragment", "hint"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_graph_errors(doc: Any, path: str, fragment: str, hint: str) -> None:
    validate_schema(doc)  # the case is schema-valid: the graph stage must catch it
    with pytest.raises(GraphError) as info:
        build_graph(doc, "s.json")
    hits = [p for p in info.value.problems if p.jsonpath == path and fragment in p.message]
    assert hits, f"no problem at {path} with {fragment!r}; got:\n{info.value}"
    assert hint in hits[0].hint + hits[0].message


def test_every_dangling_reference_reported() -> None:
    doc = spec(nodes={"a": dense("q1"), "b": dense("q2"), "y": {"merge": "add", "inputs": ["a", "b"]}})
    with pytest.raises(GraphError) as info:
        build_graph(doc)
    assert [p.jsonpath for p in info.value.problems] == ["$.nodes.a.inputs", "$.nodes.b.inputs"]


def test_order_is_topological_with_ties_in_file_order() -> None:
    nodes = {
        "zeta": dense("x"),
        "alpha": dense("x"),
        "mid": {"merge": "concat", "inputs": ["zeta", "alpha"]},
        "y": dense("mid", 1),
    }
    forward = spec(nodes=nodes)
    backward = spec(nodes=dict(reversed(list(nodes.items()))))
    assert topo_order(build_graph(forward)) == ["x", "zeta", "alpha", "mid", "y"]
    # Written backwards, producers still come first; the tie between the two branches follows the file.
    assert topo_order(build_graph(backward)) == ["x", "alpha", "zeta", "mid", "y"]
    assert topo_order(build_graph(forward)) == topo_order(build_graph(forward))  # deterministic


def test_graph_shape() -> None:
    g = build_graph(spec())
    assert set(g.nodes) == {"x", "h", "y"}
    assert set(g.edges) == {("x", "h"), ("h", "y")}
    assert g.nodes["h"]["kind"] == "layer"
    assert g.graph["outputs"]["y"].source == "y"


# --- blocks: ports re-exported by name, and bounded suggestions ---------------------


def _lstm_block_spec(output_ref: str) -> dict[str, Any]:
    block = {
        "inputs": ["seq"],
        "nodes": {"lstm": {"layer": "LSTM", "config": {"units": 3, "return_state": True}, "inputs": "seq"}},
        "outputs": {"cell": output_ref},
    }
    return spec(
        inputs={"x": {"shape": [5, 2]}},
        blocks={"enc": block},
        nodes={"t": {"block": "enc", "inputs": "x"}, "y": dense("t.cell", 1)},
    )


def test_block_output_keeps_the_port_of_an_inner_node(tmp_path: Any) -> None:
    """`"cell": "lstm.2"` is the LSTM's cell state (None, 3), not its sequence output."""
    import json

    from fusec.static.check import check_spec

    path = tmp_path / "cell.json"
    path.write_text(json.dumps(_lstm_block_spec("lstm.2")))
    checked = check_spec(path)
    assert checked.graph.has_edge("t__lstm", "y")
    assert checked.info["y"].shape == (None, 1)
    refs = [r.source for r in checked.graph.nodes["y"]["refs"]]
    assert refs == ["t__lstm.2"]


def test_block_output_naming_a_missing_port_of_an_inner_instance() -> None:
    inner = {"inputs": ["x"], "nodes": {"d": dense("x")}, "outputs": {"a": "d", "b": "d"}}
    outer = {"inputs": ["x"], "nodes": {"i": {"block": "inner", "inputs": "x"}}, "outputs": {"o": "i.c"}}
    doc = spec(blocks={"inner": inner, "outer": outer}, nodes={"t": {"block": "outer", "inputs": "x"}, "y": dense("t")})
    from fusec.spec.blocks import expand_blocks

    validate_schema(doc)
    problems = expand_blocks(doc).problems
    assert [p.jsonpath for p in problems] == ["$.blocks.outer.outputs.o"]
    assert "block `inner` has no output `c`" in problems[0].message
    assert problems[0].hint == "its outputs: `a`, `b`"


def test_name_index_suggests_in_bounded_time() -> None:
    from fusec.errors import NameIndex

    index = NameIndex(f"node_{i}" for i in range(50_000))
    assert index.near("NODE_7") == ["node_7"]  # exact, case ignored
    assert index.near("node_12345x")[0] == "node_12345"  # a typo at the end
    assert index.near("mode_31337")[0] == "node_31337"  # at the start
    assert index.near("node_4O321")[0].startswith("node_4")  # in the middle: a name one edit away
    for i in range(NameIndex.MAX_FUZZY):
        index.near(f"zz{i}")
    assert index.near("node_1234x") == []  # past the fuzzy budget: no more searching
    assert index.near("Node_99") == ["node_99"]  # exact matches are always found
