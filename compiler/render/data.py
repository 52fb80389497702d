"""The review page's data: everything about every node, edge, frame and ×N group, by DOM id.

Plain JSON (str, int, bool, None, lists, dicts) in the shape the page
contract fixes (``docs/render.md``); DOM ids are those of the SVG views
(``plan.py``), so a click on ``<g id="n3">`` finds ``data["nodes"]["n3"]``.
Every spec node is listed (folded ones too: the page unfolds them), with its
outputs, the folded boxes and the ×N groups of the main view.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import PathPart, json_path
from ..spec.graph import ref_node
from ..static.check import Checked
from .diagram import View, view
from .dot import local
from .plan import Layout, is_broken, raw_entry, shape_of
from .style import fmt_dims


def page_data(
    checked: Checked,
    unfold: bool = False,
    collapse: bool = False,
    depth: int | None = None,
    main: View | None = None,
) -> dict[str, Any]:
    """The page contract's ``data`` of a checked spec (a lenient check's too).

    Args:
        checked: the spec.
        unfold: describe the view with every ×N group unfolded.
        collapse: describe the view with every block instance folded.
        depth: fold block instances nested deeper than this.
        main: the view already drawn with these options (saves drawing it again).

    Returns:
        A JSON-ready dict: name, doc, file, totals, nodes_count, nodes,
        edges, groups, shared, shared_layers, problems, diff (None).
    """
    drawn = main if main is not None else view(checked, collapse=collapse, depth=depth, unfold=unfold)
    lay = drawn.layout
    lines = _lines(checked, lay)
    nodes = {lay.dom[nid]: _node(lay, drawn, nid, lines) for nid in checked.order}
    nodes.update(_outputs(lay, drawn))
    nodes.update(_boxes(lay))
    t = checked.totals
    doc = checked.doc.get("doc") if isinstance(checked.doc, Mapping) else None
    return {
        "name": checked.name,
        "doc": doc if isinstance(doc, str) else None,
        "file": str(checked.spec.path),
        "totals": {"params": t.params, "trainable": t.trainable, "non_trainable": t.non_trainable},
        "nodes_count": len(checked.order),
        "nodes": nodes,
        "edges": _edges(lay, drawn),
        "groups": _groups(lay),
        "shared": _shared(lay),
        "shared_layers": _shared_layers(lay),
        "problems": [
            {
                "text": f.problem.text,
                "path": f.problem.jsonpath,
                "line": f.problem.span.line if f.problem.span else None,
                "nodes": [lay.dom[n] for n in f.nodes] + f.outputs,
                "edges": f.edges,
            }
            for f in drawn.faults.items
        ],
        "diff": None,
    }


def _lines(checked: Checked, lay: Layout) -> dict[tuple[PathPart, ...], int]:
    """The line each node's entry starts on (one scan of the file, only along those paths)."""
    return checked.spec.key_lines(tuple(checked.graph.nodes[n].get("path", ())) for n in lay.order)


def _kind(lay: Layout, nid: str) -> str:
    c = lay.checked
    if is_broken(c, nid):
        return "broken"
    info = c.info[nid]
    if info.kind == "shared" and info.shared not in lay.calls:
        return "layer"
    return info.kind


def _node(lay: Layout, drawn: View, nid: str, lines: Mapping[tuple[PathPart, ...], int]) -> dict[str, Any]:
    c = lay.checked
    attrs = c.graph.nodes[nid]
    info = c.info.get(nid)
    spec = attrs["spec"]
    broken = is_broken(c, nid)
    config = dict(raw_entry(c, nid)) if broken or not isinstance(spec, Mapping) else dict(spec)
    config.pop("broken", None) if broken else None
    scope = [str(i) for i, _ in c.scopes.get(nid, ())]
    sid = info.shared if info is not None else None
    path = tuple(attrs.get("path", ()))
    doc = spec.get("doc") if isinstance(spec, Mapping) else None
    return {
        "id": nid,
        "label": local(nid, tuple(scope)),
        "kind": _kind(lay, nid),
        "op": info.op if info is not None else str(config.get("layer") or config.get("merge") or ""),
        "config": config,
        "path": json_path(path),
        "line": lines.get(path),
        "shape": fmt_dims(info.shape) if info is not None else None,
        "inputs": [_input(lay, ref.source) for ref in attrs["refs"]],
        "params": info.params if info is not None else 0,
        "trainable": info.trainable if info is not None else 0,
        "non_trainable": info.non_trainable if info is not None else 0,
        "scope": scope,
        "shared": sid if sid in lay.calls else None,
        "call": info.call if info is not None and sid in lay.calls else 0,
        "calls": lay.calls.get(sid, 0) if sid is not None else 0,
        "doc": doc if isinstance(doc, str) else None,
        "problems": list(drawn.faults.nodes.get(nid, [])),
    }


def _input(lay: Layout, source: str) -> dict[str, Any]:
    c = lay.checked
    dims = shape_of(c, source)
    return {"from": source, "dom": lay.dom.get(ref_node(source)), "shape": fmt_dims(dims) if dims is not None else None}


def _outputs(lay: Layout, drawn: View) -> dict[str, dict[str, Any]]:
    c = lay.checked
    written = c.doc.get("outputs") or {}
    out = {}
    for name, dom in lay.out_dom.items():
        ref = c.graph.graph["outputs"][name]
        entry = written.get(name) if isinstance(written, Mapping) else None
        source = _input(lay, ref.source)
        out[dom] = {
            "id": name, "label": name, "kind": "output", "op": "output",
            "config": dict(entry) if isinstance(entry, Mapping) else {},
            "path": json_path(("outputs", name)), "line": None, "shape": source["shape"], "inputs": [source],
            "params": 0, "trainable": 0, "non_trainable": 0, "scope": [], "shared": None, "call": 0, "calls": 0,
            "doc": entry.get("doc") if isinstance(entry, Mapping) and isinstance(entry.get("doc"), str) else None,
            "problems": list(drawn.faults.outputs.get(dom, [])),
        }  # fmt: skip
    return out


def _box_entry(dom: str, label: str, kind: str, op: str, members: list[str], lay: Layout) -> dict[str, Any]:
    info = lay.checked.info
    params = [info[m] for m in members if m in info]
    return {
        "id": label, "label": label, "kind": kind, "op": op, "config": {}, "path": "", "line": None,
        "shape": None, "inputs": [], "params": sum(i.params for i in params),
        "trainable": sum(i.trainable for i in params), "non_trainable": sum(i.non_trainable for i in params),
        "scope": [], "shared": None, "call": 0, "calls": 0, "doc": None, "problems": [],
    }  # fmt: skip


def _boxes(lay: Layout) -> dict[str, dict[str, Any]]:
    """The folded boxes of this view: block instances (b<k>) and ×N groups (r<k>)."""
    out = {}
    for path, inst in lay.instances.items():
        dom = f"b{inst.index}"
        if dom in lay.folded:
            out[dom] = _box_entry(dom, path[-1], "block", inst.block, lay.folded[dom], lay)
            out[dom]["scope"] = list(path[:-1])
    for k, repeat in enumerate(lay.repeats):
        if f"r{k}" in lay.folded:
            out[f"r{k}"] = _box_entry(
                f"r{k}", f"×{repeat.count}", "repeat", repeat.signature, list(repeat.members), lay
            )
    return out


def _edges(lay: Layout, drawn: View) -> dict[str, dict[str, Any]]:
    """Every reference, between the nodes it joins (as in the unfolded, expanded view)."""
    out = {}
    for e in lay.edges:
        slot = e.ref.slot
        label = None
        if slot and isinstance(slot[0], str):
            label = str(slot[0]) + (f"[{slot[1]}]" if len(slot) > 1 else "")
        elif slot:
            label = f"#{int(slot[0]) + 1}"
        if "." in e.ref.source:
            label = f"{label or ''} .{e.ref.source.partition('.')[2]}".strip()
        out[e.dom] = {
            "from": lay.dom[e.src],
            "to": lay.out_dom[e.dst] if e.output else lay.dom[e.dst],
            "label": label,
            "problems": list(drawn.faults.edges.get(e.dom, [])),
        }
    return out


def _groups(lay: Layout) -> dict[str, dict[str, Any]]:
    c = lay.checked
    out: dict[str, dict[str, Any]] = {}
    for path, inst in lay.instances.items():
        members = [n for n in lay.order if tuple(str(i) for i, _ in c.scopes.get(n, ()))[: len(path)] == path]
        out[f"c{inst.index}"] = {
            "kind": "block",
            "label": f"{path[-1]} · {inst.block}",
            "members": [lay.dom[m] for m in members],
            "params": sum(c.info[m].params for m in members if m in c.info),
            "shared_weights": inst.shared,
        }
    for k, repeat in enumerate(lay.repeats):
        out[f"r{k}"] = {
            "kind": "repeat",
            "label": f"×{repeat.count}",
            "count": repeat.count,
            "members": [lay.dom[m] for m in repeat.members],
        }
    return out


def _shared(lay: Layout) -> dict[str, list[str]]:
    c = lay.checked
    out: dict[str, list[str]] = {}
    for nid in c.order:
        info = c.info.get(nid)
        if info is not None and info.shared in lay.calls:
            out.setdefault(str(info.shared), []).append(lay.dom[nid])
    return out


def _shared_layers(lay: Layout) -> dict[str, dict[str, Any]]:
    """Each shared layer called in the drawing: its definition as written, where, its weights and calls."""
    c = lay.checked
    defs = c.graph.graph.get("shared") or {}
    origins = c.graph.graph.get("shared_origins") or {}
    calls = _shared(lay)
    out: dict[str, dict[str, Any]] = {}
    for sid, doms in calls.items():
        entry = defs.get(sid)
        first = next((n for n in c.order if (i := c.info.get(n)) is not None and i.shared == sid), None)
        out[sid] = {
            "config": dict(entry) if isinstance(entry, Mapping) else {},
            "path": json_path(tuple(origins.get(sid, ("shared", sid)))),
            "params": c.info[first].params if first is not None else 0,
            "calls": doms,
        }
    return out
