"""Broken specs drawn: which nodes and edges each problem of a lenient check names.

A problem's path points into the document as written: ``("nodes", id, ...)``,
``("blocks", name, "nodes", local, ...)`` (every instance's copy of that
node), ``("inputs", name)``, ``("outputs", name, ...)``, ``("shared", sid)``;
a path that goes on with ``"inputs", k`` names the edge of input ``k``. A
problem whose path names nothing drawn (the whole file, ``training``) is
listed in the title only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import PathPart, Problem
from .plan import Layout

#: How many problems the title lists before "and N more".
TITLE_PROBLEMS = 3
#: Characters of a problem's first line shown in a node or edge label.
LABEL_CHARS = 60


@dataclass
class Fault:
    """One problem and what it names: node ids, output doms and edge doms."""

    problem: Problem
    nodes: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    edges: list[str] = field(default_factory=list)


@dataclass
class Faults:
    """Every problem of a lenient check, mapped onto the drawing."""

    items: list[Fault] = field(default_factory=list)
    nodes: dict[str, list[str]] = field(default_factory=dict)  # node id -> messages
    outputs: dict[str, list[str]] = field(default_factory=dict)  # o<k> -> messages
    edges: dict[str, list[str]] = field(default_factory=dict)  # e<k> -> messages
    #: edges named only with all of a node's inputs (a merge's shapes): drawn red, message on the node
    quiet: set[str] = field(default_factory=set)


def first_line(problem: Problem) -> str:
    """A problem's message, first line only (unescaped)."""
    return problem.message.strip().split("\n", 1)[0]


def _nodes_at(lay: Layout, path: tuple[PathPart, ...]) -> list[str]:
    """The graph nodes a path names (its longest prefix that is a node's written path)."""
    g = lay.checked.graph
    by_path: dict[tuple[PathPart, ...], list[str]] = {}
    for nid in lay.order:
        by_path.setdefault(tuple(g.nodes[nid].get("path", ())), []).append(nid)
    for cut in range(len(path), 1, -1):
        if path[:cut] in by_path:
            return by_path[path[:cut]]
    if len(path) >= 2 and path[0] == "shared":
        return [n for n in lay.order if g.nodes[n]["spec"].get("shared") == path[1]]
    if len(path) >= 2 and path[0] in ("nodes", "blocks"):  # a block instance, or a block definition
        at = 0 if path[0] == "nodes" else 1
        return [n for n in lay.order if any(link[at] == path[1] for link in lay.checked.scopes.get(n, ()))]
    return []


def _one(lay: Layout, problem: Problem) -> Fault:
    path = tuple(problem.path)
    fault = Fault(problem)
    if len(path) >= 2 and path[0] == "outputs" and path[1] in lay.out_dom:
        fault.outputs.append(lay.out_dom[str(path[1])])
        fault.edges += [e.dom for e in lay.edges if e.output and e.dst == path[1]]
        return fault
    fault.nodes = _nodes_at(lay, path)
    g = lay.checked.graph
    for nid in fault.nodes:
        base = tuple(g.nodes[nid].get("path", ()))
        if len(path) > len(base) and path[len(base)] == "inputs":
            for e in lay.edges:
                if not e.output and e.dst == nid and _overlap(tuple(e.ref.path), path):
                    fault.edges.append(e.dom)
    return fault


def _overlap(a: tuple[PathPart, ...], b: tuple[PathPart, ...]) -> bool:
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def find_faults(lay: Layout, problems: Sequence[Problem]) -> Faults:
    """Map every problem onto the nodes, outputs and edges it names."""
    out = Faults()
    paths = {e.dom: len(e.ref.path) for e in lay.edges}
    loud: set[str] = set()
    for problem in problems:
        fault = _one(lay, problem)
        out.items.append(fault)
        text = first_line(problem)
        for nid in fault.nodes:
            out.nodes.setdefault(nid, []).append(text)
        for dom in fault.outputs:
            out.outputs.setdefault(dom, []).append(text)
        for dom in fault.edges:
            out.edges.setdefault(dom, []).append(text)
            if len(problem.path) >= paths[dom]:  # it names this input, not all of them
                loud.add(dom)
    out.quiet = set(out.edges) - loud
    return out
