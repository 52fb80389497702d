"""A hand-made review page (DOT with the page contract's DOM ids, and its data) for the page tests.

No tests here: tests/test_page.py and tests/test_browser.py import it. The
diagram has a nested block (c0 around c1), a ×3 group (r0, unfolded into a
cluster of three nodes), two calls of a shared layer, a problem and a node
whose id tries to close the data script.
"""

from __future__ import annotations

import copy
import subprocess
from typing import Any

EVIL = "x</script><script>alert(1)</script>\u2028\u202e"

_MAIN = """digraph G {{ node [shape=box];
 n0 [id="n0" label="img"];
 subgraph cluster_c0 {{ id="c0"; label="t · tower";
   n1 [id="n1" label="conv"];
   subgraph cluster_c1 {{ id="c1"; label="t__inner · inner"; n2 [id="n2" label="pool" color=red]; }}
 }}
 {repeat}
 n4 [id="n4" label="head ×2: call 1"]; n5 [id="n5" label="head ×2: call 2"];
 n6 [id="n6" label="evil &lt;/script&gt;"];
 o0 [id="o0" label="out"];
 n0 -> n1 [id="e0"]; n1 -> n2 [id="e1"]; n2 -> n4 [id="e2" color=red]; {around}
 n4 -> n6 [id="e5"]; n5 -> n6 [id="e6"]; n6 -> o0 [id="e7"];
}}
"""
_FOLDED = 'r0 [id="r0" label="×3 branch"];'
_UNFOLDED = """subgraph cluster_r0 {{ id="r0"; label="×3 branch";
   n7 [id="n7" label="b0"]; n8 [id="n8" label="b1"]; n9 [id="n9" label="b2"]; }}"""


def svgs() -> dict[str, str]:
    """The two views, laid out by ``dot``."""
    main = _MAIN.format(repeat=_FOLDED, around='n0 -> r0 [id="e3"]; r0 -> n5 [id="e4"];')
    around = " ".join(f'n0 -> n{7 + k} [id="e{8 + k}"]; n{7 + k} -> n5 [id="e{11 + k}"];' for k in range(3))
    unfolded = _MAIN.format(repeat=_UNFOLDED.format(), around=around)
    run = lambda text: subprocess.run(["dot", "-Tsvg"], input=text.encode(), capture_output=True, check=True)  # noqa: E731
    return {"main": run(main).stdout.decode(), "unfolded": run(unfolded).stdout.decode()}


def _node(dom: str, id_: str, kind: str, op: str, inputs: list[str], **more: Any) -> dict[str, Any]:
    node: dict[str, Any] = {
        "id": id_, "label": id_.rsplit("__", 1)[-1], "kind": kind, "op": op,
        "config": {"layer": op, "config": {"units": 4}}, "path": f"$.nodes.{id_}", "line": 3,
        "shape": "(None, 4)", "inputs": [{"from": i, "dom": i, "shape": "(None, 4)"} for i in inputs],
        "params": 20, "trainable": 20, "non_trainable": 0, "scope": [], "shared": None,
        "call": 0, "calls": 0, "doc": None, "problems": [],
    }  # fmt: skip
    node.update(more)
    return node


def data() -> dict[str, Any]:
    """The page data of the diagram (the ``inputs`` entries use DOM ids as ``from``)."""
    nodes = {
        "n0": _node("n0", "img", "input", "Input", [], params=0, trainable=0),
        "n1": _node("n1", "t__conv", "layer", "Conv2D", ["n0"], scope=["t"]),
        "n2": _node("n2", "t__inner__pool", "layer", "MaxPooling2D", ["n1"], scope=["t", "t__inner"],
                    problems=["pool_size must be positive"]),
        "r0": _node("r0", "branch ×3", "repeat", "×3", ["n0"]),
        "n7": _node("n7", "branch_0", "layer", "Dense", ["n0"]),
        "n8": _node("n8", "branch_1", "layer", "Dense", ["n0"]),
        "n9": _node("n9", "branch_2", "layer", "Dense", ["n0"]),
        "n4": _node("n4", "head_a", "shared", "Dense", ["n2"], shared="head", call=1, calls=2),
        "n5": _node("n5", "head_b", "shared", "Dense", ["r0"], shared="head", call=2, calls=2),
        "n6": _node("n6", EVIL, "merge", "add", ["n4", "n5"], doc="adds <b>both</b>"),
        "o0": _node("o0", "out", "output", "output", ["n6"]),
    }  # fmt: skip
    pairs = [
        ("n0", "n1"),
        ("n1", "n2"),
        ("n2", "n4"),
        ("n0", "r0"),
        ("r0", "n5"),
        ("n4", "n6"),
        ("n5", "n6"),
        ("n6", "o0"),
    ]
    edges = {f"e{k}": {"from": a, "to": b, "label": "(None, 4)", "problems": []} for k, (a, b) in enumerate(pairs)}
    edges["e2"]["problems"] = ["shape mismatch"]
    for k in range(3):  # the ×3 group's members, in the unfolded view
        edges[f"e{8 + k}"] = {"from": "n0", "to": f"n{7 + k}", "label": "(None, 4)", "problems": []}
        edges[f"e{11 + k}"] = {"from": f"n{7 + k}", "to": "n5", "label": "(None, 4)", "problems": []}
    return {
        "name": "demo",
        "doc": "A hand-made page",
        "file": "demo.json",
        "totals": {"params": 140, "trainable": 140, "non_trainable": 0},
        "nodes_count": len(nodes),
        "nodes": nodes,
        "edges": edges,
        "groups": {
            "c0": {
                "kind": "block",
                "label": "t · tower",
                "members": ["n1", "n2"],
                "params": 40,
                "shared_weights": False,
            },
            "c1": {
                "kind": "block",
                "label": "t__inner · inner",
                "members": ["n2"],
                "params": 20,
                "shared_weights": False,
            },
            "r0": {"kind": "repeat", "label": "×3 branch", "count": 3, "members": ["n7", "n8", "n9"]},
        },
        "shared": {"head": ["n4", "n5"]},
        "problems": [
            {
                "text": "pool_size must be positive",
                "path": "$.blocks.inner.nodes.pool",
                "line": 9,
                "nodes": ["n2"],
                "edges": [],
            },
            {"text": "shape mismatch", "path": "$.nodes.head_a.inputs", "line": 12, "nodes": [], "edges": ["e2"]},
        ],
        "diff": None,
    }


def with_diff() -> dict[str, Any]:
    """The same data as a ``fusec diff`` page."""
    d = copy.deepcopy(data())
    d["diff"] = {
        "old": "a.json",
        "new": "b.json",
        "summary": {"added": 1, "removed": 0, "changed": 1, "renamed": 0, "same": 9},
        "nodes": {
            "n1": {"status": "changed", "changes": ["filters: 8 -> 16"]},
            "n6": {"status": "added", "changes": []},
        },
    }
    return d
