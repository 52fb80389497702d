"""Which nodes and edges of the drawn diff each problem of either spec names.

A problem's path points into its own spec as written (see
``render/faults.py``): ``("nodes", id, ...)``, ``("blocks", name, "nodes",
local, ...)`` (every instance's copy), ``("inputs", name)``, ``("outputs",
name, ...)``, ``("shared", sid)``, a block instance's own entry
(``("nodes", instance, ...)``: all its nodes); a path that goes on with
``"inputs", k`` names the edge of input ``k``. Nodes of OLD are found in the
union through the matching (a removed node under its own DOM id).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import PathPart, Problem
from ..spec.graph import ref_node
from .compare import Diff
from .draw import Union
from .summary import SpecSummary

Path = tuple[PathPart, ...]


@dataclass
class Places:
    """The DOM ids a problem names: its nodes (and outputs), its edges."""

    nodes: list[str] = field(default_factory=list)
    edges: list[str] = field(default_factory=list)


class Locator:
    """Problem paths of one side (OLD or NEW) -> DOM ids of the union graph."""

    def __init__(self, diff: Diff, union: Union, old: bool) -> None:
        self.diff, self.union, self.old = diff, union, old
        self.spec: SpecSummary = diff.old if old else diff.new
        self.by_path: dict[Path, list[str]] = {}
        for nid, node in self.spec.nodes.items():
            self.by_path.setdefault(node.path, []).append(nid)
        self.into: dict[tuple[str, str], list[str]] = {}
        for dom, (src, dst, _) in union.edge_ends.items():
            self.into.setdefault((src, dst), []).append(dom)

    def dom(self, nid: str) -> str | None:
        """A node of this side's DOM id in the union."""
        if not self.old:
            return self.union.dom.get(nid)
        return self.union.source(self.diff, nid)

    def ids(self, path: Path) -> list[str]:
        """The node ids of this side a path names (its longest prefix that is a node's written path)."""
        for cut in range(len(path), 1, -1):
            if path[:cut] in self.by_path:
                return self.by_path[path[:cut]]
        nodes = self.spec.nodes
        if len(path) >= 2 and path[0] == "shared":
            return [n for n, node in nodes.items() if node.shared == path[1]]
        if len(path) >= 2 and path[0] in ("nodes", "blocks"):  # a block instance, or a block definition
            at = 0 if path[0] == "nodes" else 1
            return [n for n, node in nodes.items() if any(link[at] == path[1] for link in node.scope)]
        return []

    def edges(self, nid: str, rest: Path) -> list[str]:
        """The edges into ``nid`` that ``rest`` (the path after the node's own) names."""
        if not rest or rest[0] != "inputs":
            return []
        dst = self.dom(nid)
        slot = "" if len(rest) < 2 else str(rest[1]) if len(rest) < 3 else f"{rest[1]}[{rest[2]}]"
        out: list[str] = []
        for ref_slot, source in self.spec.nodes[nid].refs:
            if slot in ("", ref_slot) or ref_slot.startswith(f"{slot}["):
                src = self.dom(ref_node(source))
                if src is not None and dst is not None:
                    out += (e for e in self.into.get((src, dst), ()) if e not in out)
        return out

    def place(self, problem: Problem) -> Places:
        """The nodes and edges a problem names."""
        path = tuple(problem.path)
        out = Places()
        if len(path) >= 2 and path[0] == "outputs" and str(path[1]) in self.union.out_dom:
            dom = self.union.out_dom[str(path[1])]
            out.nodes.append(dom)
            out.edges = [e for e, (_, dst, _) in self.union.edge_ends.items() if dst == dom]
            return out
        for nid in self.ids(path):
            node_dom = self.dom(nid)
            if node_dom is None:
                continue
            out.nodes.append(node_dom)
            out.edges += self.edges(nid, path[len(self.spec.nodes[nid].path) :])
        return out
