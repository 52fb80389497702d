"""The graph walk: which drawn element (DOM id) shows each node, edge, block instance and ×N group.

One ``Layout`` serves the DOT text, the SVG's titles and the review page's
data, so the DOM ids agree everywhere: ``n<k>`` is the ``k``-th node of the
checker's order, ``o<k>`` an output, ``e<k>`` a reference (node inputs in
order, then outputs), ``c<k>`` the ``k``-th block instance in spec order
(``b<k>`` when it is folded into one box), ``r<k>`` the ``k``-th group of
repeated parallel branches (one box when folded, a cluster when unfolded).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..spec.graph import BROKEN, Ref, ref_node
from ..static.check import Checked
from .repeats import Repeat, find_repeats

#: Identical parallel branches fold into one ×N box from this many on. Four or fewer read well
#: side by side (a 3-expert mixture, a 4-way split); from five on the row gets wide and repetitive,
#: and the 64-branch fan-in drew 11,122 pt wide. `--unfold`, and the review page's ×N box, show all.
FOLD_AT = 5

Scope = tuple[str, ...]  # the block instance ids around a node, outermost first


@dataclass(frozen=True)
class Instance:
    """One block instance: its place in spec order and among its block's instances."""

    path: Scope
    block: str
    k: int  # 1-based among the block's instances, in spec order
    n: int  # how many instances the block has
    index: int  # c<index> as a frame, b<index> folded
    shared: bool  # the block has shared weights


@dataclass(frozen=True)
class EdgeRef:
    """One reference: an input of a node or an output's ``from``."""

    dom: str  # e<k>
    src: str  # the node the tensor comes from
    dst: str  # the node it enters, or the output's name
    ref: Ref
    output: bool = False


@dataclass
class Layout:
    """Where everything is drawn in one view (see the module docstring)."""

    checked: Checked
    dom: dict[str, str]  # node id -> n<k>
    out_dom: dict[str, str]  # output name -> o<k>
    rep: dict[str, str]  # node id -> the dom drawing it in this view (n<k>, b<k> or r<k>)
    frame: dict[str, Scope]  # node id -> the instance frame it is drawn in
    instances: dict[Scope, Instance]
    folded: dict[str, list[str]]  # b<k> / r<k> (folded) -> member node ids
    repeats: list[Repeat]  # the groups that can fold (index k: r<k>)
    repeat_scope: list[Scope]  # per group: the frame its box or cluster sits in
    unfold: bool
    calls: dict[str, int]  # shared layers drawn as shared (with weights) -> their calls
    edges: list[EdgeRef]
    order: list[str]  # node ids in spec order (inputs, then as written)
    member_of: dict[str, int] = field(default_factory=dict)  # node id -> its ×N group

    @property
    def problems(self) -> tuple[Any, ...]:
        return tuple(getattr(self.checked, "problems", ()))

    def chain(self, scope: Scope) -> tuple[str, ...]:
        """The cluster doms (outermost first) of a frame."""
        return tuple(f"c{self.instances[scope[:j]].index}" for j in range(1, len(scope) + 1))

    def node_chain(self, nid: str) -> tuple[str, ...]:
        """The clusters around a drawn node: its frames, with its ×N cluster when unfolded."""
        scope = self.frame[nid]
        group = self.member_of.get(nid)
        if group is None or not self.unfold:
            return self.chain(scope)
        cut = len(self.repeat_scope[group])
        return (*self.chain(scope[:cut]), f"r{group}", *self.chain(scope)[cut:])


def spec_order(checked: Checked) -> list[str]:
    """Node ids in the order they are written: inputs, then nodes (blocks expanded in place)."""
    written = {nid: i for i, nid in enumerate(checked.doc.get("nodes") or {})}
    late = len(written)
    pos = {nid: i for i, nid in enumerate(checked.order)}

    def key(nid: str) -> tuple[int, int, int]:
        section = (checked.graph.nodes[nid].get("path") or ("nodes",))[0]
        return (0 if section == "inputs" else 1, written.get(nid, late), pos[nid])

    return sorted(checked.order, key=key)


def _instances(checked: Checked, order: Sequence[str]) -> dict[Scope, Instance]:
    """Every block instance, numbered in spec order."""
    defs = checked.spec.doc.get("blocks", {}) if isinstance(checked.spec.doc, Mapping) else {}
    blocks: dict[Scope, str] = {}
    for nid in order:
        chain = checked.scopes.get(nid, ())
        for k in range(1, len(chain) + 1):
            blocks.setdefault(tuple(str(i) for i, _ in chain[:k]), str(chain[k - 1][1]))
    by_block: dict[str, list[Scope]] = {}
    for path, block in blocks.items():
        by_block.setdefault(block, []).append(path)
    out = {}
    for index, (path, block) in enumerate(blocks.items()):
        shared = bool((defs.get(block) or {}).get("shared_weights")) if isinstance(defs, Mapping) else False
        out[path] = Instance(path, block, by_block[block].index(path) + 1, len(by_block[block]), index, shared)
    return out


def _weighted_calls(checked: Checked) -> dict[str, int]:
    """Calls per shared layer drawn as shared: one written in ``shared``, or one with weights.

    A weightless layer of a shared-weights block (pooling, flatten...) shares
    nothing: it is drawn as a plain layer.
    """
    written = checked.spec.doc.get("shared") or {}
    calls: dict[str, int] = {}
    params: dict[str, int] = {}
    for nid in checked.order:
        info = checked.info.get(nid)
        if info is not None and info.shared is not None:
            calls[info.shared] = calls.get(info.shared, 0) + 1
            params[info.shared] = params.get(info.shared, 0) + info.params
    return {sid: n for sid, n in calls.items() if sid in written or params[sid] > 0}


def _edges(checked: Checked) -> list[EdgeRef]:
    out: list[EdgeRef] = []
    for nid in checked.order:
        for ref in checked.graph.nodes[nid]["refs"]:
            if ref_node(ref.source) in checked.graph:
                out.append(EdgeRef(f"e{len(out)}", ref_node(ref.source), nid, ref))
    for name, ref in checked.graph.graph["outputs"].items():
        if ref_node(ref.source) in checked.graph:
            out.append(EdgeRef(f"e{len(out)}", ref_node(ref.source), name, ref, output=True))
    return out


def _usable(
    repeat: Repeat, frames: Mapping[str, Scope], folded: Mapping[str, Any], order: Sequence[str]
) -> Scope | None:
    """The frame a group's box sits in, or None when it cannot be drawn as one (it would cut a frame)."""
    members = [m for branch in repeat.branches for m in branch]
    if len(repeat.branches) < 2 or any(m not in frames or m in folded for m in members):
        return None
    scopes = [frames[m] for m in members]
    cut = 0
    while all(len(s) > cut for s in scopes) and len({s[cut] for s in scopes}) == 1:
        cut += 1
    inner = {s[: cut + 1] for s in scopes if len(s) > cut}
    chosen = set(members)
    for nid in order:  # a frame below the group's must hold members only
        if nid not in chosen and frames.get(nid, ())[: cut + 1] in inner:
            return None
    return scopes[0][:cut]


def _scopes(checked: Checked, order: Sequence[str], depth: int | None) -> dict[str, tuple[Scope, Scope | None]]:
    """Per node: (the frame it is drawn in, the folded instance it is part of or None)."""
    out: dict[str, tuple[Scope, Scope | None]] = {}
    for nid in order:
        scope = tuple(str(inst) for inst, _ in checked.scopes.get(nid, ()))
        if depth is not None and len(scope) > depth:
            out[nid] = (scope[:depth], scope[: depth + 1])
        else:
            out[nid] = (scope, None)
    return out


def layout(checked: Checked, collapse: bool = False, depth: int | None = None, unfold: bool = False) -> Layout:
    """Lay out one view of a checked spec (lenient ones included: broken nodes keep their place).

    Args:
        checked: the spec.
        collapse: fold every block instance (depth 0).
        depth: fold instances nested deeper than this.
        unfold: draw every ×N group's branches, each group in a cluster.

    Returns:
        The view's layout.
    """
    order = spec_order(checked)
    instances = _instances(checked, order)
    scopes = _scopes(checked, order, 0 if collapse else depth)
    rep: dict[str, str] = {}
    folded: dict[str, list[str]] = {}
    for nid in order:
        box = scopes[nid][1]
        if box is not None:
            rep[nid] = f"b{instances[box].index}"
            folded.setdefault(rep[nid], []).append(nid)
    frames = {nid: scopes[nid][0] for nid in order}
    repeats: list[Repeat] = []
    repeat_scope: list[Scope] = []
    member_of: dict[str, int] = {}
    for repeat in find_repeats(checked, FOLD_AT):
        scope = _usable(repeat, frames, rep, order)
        if scope is None or any(m in member_of for b in repeat.branches for m in b):
            continue
        for branch in repeat.branches:
            member_of.update((m, len(repeats)) for m in branch)
        repeats.append(repeat)
        repeat_scope.append(scope)
    dom = {nid: f"n{i}" for i, nid in enumerate(checked.order)}
    for nid in order:
        if nid in member_of and not unfold:
            rep[nid] = f"r{member_of[nid]}"
            folded.setdefault(rep[nid], []).append(nid)
        rep.setdefault(nid, dom[nid])
    outputs = {name: f"o{i}" for i, name in enumerate(checked.graph.graph["outputs"])}
    calls = _weighted_calls(checked)
    edges = _edges(checked)
    return Layout(
        checked, dom, outputs, rep, frames, instances, folded, repeats, repeat_scope, unfold, calls, edges, order,
        member_of,
    )  # fmt: skip


def is_broken(checked: Checked, nid: str) -> bool:
    """Whether a node is a placeholder for an entry that failed (or its shape is unknown)."""
    return checked.graph.nodes[nid].get("kind") == BROKEN or nid not in checked.info


def raw_entry(checked: Checked, nid: str) -> Mapping[str, Any]:
    """The node's JSON object as written (a block's node from its definition), or {}."""
    value: Any = checked.spec.doc
    for part in checked.graph.nodes[nid].get("path", ()):
        if isinstance(value, Mapping) and isinstance(part, str):
            value = value.get(part)
        elif isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
            value = value[part]
        else:
            return {}
    return value if isinstance(value, Mapping) else {}


def shape_of(checked: Checked, source: str) -> tuple[int | None, ...] | None:
    """The shape a reference carries (``lstm.2``: output 2), or None when it could not be inferred."""
    if ref_node(source) not in checked.info:
        return None
    try:
        return tuple(checked.shapes.of(source))
    except (KeyError, IndexError):
        return None
