"""The data of the HTML diff page: the page contract (docs/render.md) plus its ``diff`` section.

Every node of the union graph (``draw.Union``) is described as the review
page expects (config as written, JSON path, its line in NEW, shape, inputs,
parameters, its block instances, problems); ``groups`` holds the
block-instance frames (``c<k>``, which the page folds), ``problems`` both
specs' errors tied to the nodes and edges they name (OLD's marked as such),
``diff`` each node's status and changes. All plain JSON; the page escapes it
when embedding (``render.html``).
"""

from __future__ import annotations

from typing import Any

from ..errors import Problem, json_path
from ..render import run_dot
from ..render.style import fmt_dims
from ..spec.graph import ref_node
from .compare import Diff, NodeDiff
from .draw import Union, set_titles, to_dot
from .frames import members
from .places import Locator
from .report import counts_line

_KINDS = {"input", "layer", "shared", "merge", "model", "output", "broken"}


def _shape(shape: Any) -> str | None:
    return None if shape is None else fmt_dims(shape)


def _node(diff: Diff, union: Union, n: NodeDiff, calls: dict[str | None, int]) -> dict[str, Any]:
    node = n.node
    config = {k: v for k, v in node.body.items() if k != "shared_layer"}
    if node.inputs is not None:
        config["inputs"] = node.inputs
    doc = node.body.get("doc")
    removed = n.status == "removed"
    return {
        "id": node.id,
        "label": node.id if n.status != "renamed" else f"{n.old_id} → {node.id}",
        "kind": node.kind if node.kind in _KINDS else "layer",
        "op": node.op,
        "config": config,
        "path": json_path(node.path),
        "line": None if removed else node.line,  # a line of NEW only
        "shape": _shape(node.shape),
        "inputs": [
            {"from": src, "dom": union.source(diff, src) if removed else union.dom.get(ref_node(src)), "shape": None}
            for _, src in node.refs
        ],
        "params": node.params,
        "trainable": node.trainable,
        "non_trainable": node.non_trainable,
        "scope": [inst for inst, _ in node.scope],
        "shared": node.shared,
        "call": node.call,
        "calls": calls.get(node.shared, 0) if node.shared else 0,
        "doc": doc if isinstance(doc, str) else None,
        "problems": [],
    }


def _output(diff: Diff, name: str) -> dict[str, Any]:
    side = diff.new if name in diff.new.outputs else diff.old
    return {
        "id": name, "label": name, "kind": "output", "op": "output",
        "config": side.outputs.get(name), "path": json_path(("outputs", name)), "line": None,
        "shape": _shape(side.output_shapes.get(name)), "inputs": [], "params": 0, "trainable": 0,
        "non_trainable": 0, "scope": [], "shared": None, "call": 0, "calls": 0, "doc": None, "problems": [],
    }  # fmt: skip


def _groups(diff: Diff, union: Union) -> dict[str, Any]:
    """The block-instance frames, as the page folds them."""
    params = {f"n{k}": n.node.params for k, n in enumerate(diff.nodes) if n.status != "removed"}
    out = {}
    for key, frame in union.frames.items():
        inside = members(union.frames, key)
        out[frame.dom] = {
            "kind": "block",
            "label": frame.label,
            "members": inside,
            "params": sum(params.get(m, 0) for m in inside),
            "shared_weights": frame.block in (diff.old if frame.status == "removed" else diff.new).shared_blocks,
        }
    return out


def _problems(diff: Diff, union: Union, nodes: dict[str, Any], edges: dict[str, Any]) -> list[dict[str, Any]]:
    """Both specs' errors, each tied to what it names; the node and edge entries get its first line."""
    out = []
    sides: list[tuple[bool, tuple[Problem, ...]]] = [(True, diff.old.problems), (False, diff.new.problems)]
    for old, problems in sides:
        if not problems:
            continue
        locator = Locator(diff, union, old)
        for p in problems:
            places = locator.place(p)
            line = p.span.line if p.span else None
            first = p.message.strip().split("\n", 1)[0]
            if old:  # the page's line numbers are NEW's: say where in OLD
                where = f"{diff.old.file}:{line}" if line else diff.old.file
                text, line, first = f"OLD {where}: {p.text}", None, f"OLD: {first}"
            else:
                text = p.text
            for dom in places.nodes:
                nodes[dom]["problems"].append(first)
            for dom in places.edges:
                edges[dom]["problems"].append(first)
            out.append({"text": text, "path": p.jsonpath, "line": line, "nodes": places.nodes, "edges": places.edges})
    return out


def page_data(diff: Diff, union: Union) -> dict[str, Any]:
    """The review page's data for a drawn diff (``union`` from ``draw.to_dot``)."""
    calls: dict[str | None, int] = {}
    shared: dict[str, list[str]] = {}
    for k, n in enumerate(diff.nodes):
        if n.node.shared and n.status != "removed":
            calls[n.node.shared] = calls.get(n.node.shared, 0) + 1
            shared.setdefault(n.node.shared, []).append(f"n{k}")
    nodes: dict[str, Any] = {}
    statuses: dict[str, Any] = {}
    for k, n in enumerate(diff.nodes):
        nodes[f"n{k}"] = _node(diff, union, n, calls)
        statuses[f"n{k}"] = {"status": n.status, "changes": [c.text for c in n.changes]}
    changed_outputs = {i.name: i for i in diff.interface if i.what == "output"}
    for name, dom in union.out_dom.items():
        nodes[dom] = _output(diff, name)
        item = changed_outputs.get(name)
        statuses[dom] = {
            "status": item.status if item else "same",
            "changes": [c.text for c in item.changes] if item else [],
        }
    edges: dict[str, Any] = {
        dom: {"from": a, "to": b, "label": None if status == "same" else status, "problems": []}
        for dom, (a, b, status) in union.edge_ends.items()
    }
    new = diff.new
    return {
        "name": new.name,
        "doc": f"diff {diff.old.file} → {new.file}: {counts_line(diff)}",
        "file": new.file,
        "totals": {"params": new.params, "trainable": new.trainable, "non_trainable": new.non_trainable},
        "nodes_count": len(diff.nodes),
        "nodes": nodes,
        "edges": edges,
        "groups": _groups(diff, union),
        "shared": {sid: doms for sid, doms in shared.items() if len(doms) > 1},
        "problems": _problems(diff, union, nodes, edges),
        "diff": {"old": diff.old.file, "new": new.file, "summary": dict(diff.counts), "nodes": statuses},
    }


def diff_page(diff: Diff, rankdir: str = "TB", timeout: float = 30.0) -> bytes:
    """The HTML review page of a diff: the union graph drawn, with the page data and its ``diff`` section.

    Raises:
        FusecError: Graphviz is missing, failed or ran past ``timeout``.
    """
    from ..render.html import page

    text, titles, union = to_dot(diff, rankdir)
    svg = set_titles(run_dot(text.encode("utf-8"), "svg", timeout), titles)
    return page({"main": svg.decode("utf-8")}, page_data(diff, union))
