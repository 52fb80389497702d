"""Repeated parallel branches: the groups a diagram folds into one "×N" box.

A wide ensemble or a multi-branch network repeats one branch many times side
by side: 64 Dense layers fed by one hub and joined by one merge, 8 identical
towers between an input and a ``weighted`` merge, 64 inputs each feeding the
same chain into one concat. ``find_repeats`` finds such groups in a checked
spec (a lenient check's record included), in time linear in the graph's size.

The rules:

- **Foldable nodes.** A node may be part of a branch when it is an input, a
  layer, a merge or a sub-model whose shape was inferred, and it is none of:
  a shared-layer call (it ties to calls elsewhere), a model output's source
  (outputs stay visible), a node a problem of ``checked.problems`` names
  (``$.nodes.ID...`` or ``$.inputs.ID``: it is drawn in red), a node
  generated from a block instance (blocks fold on their own: a branch that is
  one instance, or runs through one, is left as the blocks draw it), a
  broken placeholder, or a node on a cycle.
- **Hubs.** A node with ``min_count`` or more distinct producers or consumers
  is never part of a branch: it is taken for a group's source or sink. So a
  branch is a small sub-DAG whose nodes have fewer than ``min_count`` inputs
  and consumers each (a residual pair inside a branch is fine; a branch
  with an inner three-way split is cut there when ``min_count`` is 3, and
  the split's own identical arms may fold instead).
- **Branches.** A candidate branch is a connected set of foldable non-hub
  nodes (connected through edges among them, ignoring direction), as large
  as it can be. Every edge into it comes from outside (a *source*, which may
  feed any of its nodes, not only the first), every edge out of it goes to a
  *sink*; which source and sink nodes they are is part of its pattern.
- **The same branch.** Two candidates are the same when, node by node in the
  spec's topological order (``checked.order``), their nodes have the same
  kind, op, JSON as written (without ``inputs`` and ``doc``; a config's
  ``name`` ignored; compared as values, so key order does not matter and
  ``1`` equals ``1.0``), output shape(s) and parameter counts; the same edges
  inside (which node, which output port, which input slot); the same sources
  feeding the same slots through the same ports; and the same sinks, fed
  from the same node through the same port into the same *kind* of slot (a
  merge's list position is ignored: the branches of a concat feed it at
  different positions; a named slot, such as a gated merge's ``gate``
  against its ``experts``, must match). Inputs thus join a branch only when
  their dtype and shape (their JSON) match. Two candidates whose parallel
  parts are written in a different order do not match (conservative).
- **A group** is ``min_count`` or more candidates that are the same; they
  share their sources and sinks by construction. Groups never overlap, and
  no group's node is another group's source or sink (sources and sinks are
  hubs or unfoldable nodes).
- **Deterministic.** Branches are listed in spec order (by their first node
  in ``checked.order``), groups by their first branch, sources and sinks in
  ``checked.order``.

``Repeat.signature`` is plain text, not escaped: whoever draws it escapes it.
Cost: one pass over the nodes and references, then a pattern per candidate
only where ``min_count`` candidates share a size and boundary (about 7 ms for
the 793-node ``fanin`` spec of bench/gen_specs.py, 2 ms for an 800-node chain).
Never imports TensorFlow, Keras or the render pipeline above this module.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..spec.graph import Slot, ref_node
from ..static.check import Checked
from ..static.shapes import NodeInfo
from ..vocab.layers import LAYERS
from ..vocab.merges import MERGES
from ..vocab.rule import Rule, Shape
from .style import FALLBACK_KEYS, fmt_dims, fmt_value

#: Node kinds that may be part of a branch (``shared`` calls, ``broken`` placeholders never are).
FOLDABLE_KINDS = frozenset({"input", "layer", "merge", "model"})
#: A signature longer than this many steps keeps its first and last ones around an ellipsis.
MAX_STEPS = 6
#: Config values shown per node in a signature, each cut to this many characters.
MAX_VALUES, MAX_VALUE_CHARS = 4, 24
_IGNORED = ("inputs", "doc")  # what may differ between two nodes that are the same


@dataclass(frozen=True)
class Repeat:
    """One group of identical parallel branches (drawn folded as one "×N" box).

    Attributes:
        branches: the node ids of each branch, each in topological order;
            branches in spec order (by their first node in ``checked.order``).
        sources: the nodes outside the group that feed it, in ``checked.order``.
        sinks: the nodes outside the group that it feeds, in ``checked.order``.
        signature: a readable summary of one branch, unescaped:
            ``Dense(64, relu) → Dropout(0.5)``; parallel nodes inside a branch
            in brackets: ``Dense(8) → [Dense(4) | Dense(4)] → add``.
    """

    branches: tuple[tuple[str, ...], ...]
    sources: tuple[str, ...]
    sinks: tuple[str, ...]
    signature: str

    @property
    def count(self) -> int:
        """How many branches the group holds (the N of "×N")."""
        return len(self.branches)

    @property
    def members(self) -> tuple[str, ...]:
        """Every node of every branch, branch after branch."""
        return tuple(n for branch in self.branches for n in branch)


def find_repeats(checked: Checked, min_count: int = 3) -> list[Repeat]:
    """Find the groups of identical parallel branches of a checked spec (rules: the module docstring).

    Args:
        checked: the spec, from ``check_spec`` (``lenient=True`` too: nodes a
            problem names, and nodes without a shape, never fold).
        min_count: the fewest branches a group may have (2 or more).

    Returns:
        The groups, in spec order; the same spec always gives the same groups.

    Raises:
        ValueError: ``min_count`` is less than 2.

    Example:
        >>> [r.count for r in find_repeats(check_spec("fanin_199.json"))]  # doctest: +SKIP
        [64, 64, 64]
    """
    if min_count < 2:
        raise ValueError(f"min_count must be 2 or more, not {min_count}")
    links = _Links.of(checked)
    free = _foldable(checked, links, min_count)
    # First by size and boundary (cheap), then, only where enough candidates agree, by the full pattern.
    rough: dict[tuple[Any, ...], list[list[str]]] = {}
    for part in _components(checked.order, links, free):
        rough.setdefault((len(part), *links.boundary(part)), []).append(part)
    found = [
        _repeat(checked, links, group)
        for parts in rough.values()
        if len(parts) >= min_count
        for group in links.same(parts)
        if len(group) >= min_count
    ]
    return sorted(found, key=lambda r: links.position[r.branches[0][0]])


@dataclass
class _Links:
    """The graph read once into plain dicts and lists (no networkx views): edges, what each node is."""

    position: dict[str, int]  # node id -> its index in checked.order
    attrs: dict[str, dict[str, Any]]  # node id -> its graph attributes (kind, spec, refs...)
    info: Mapping[str, NodeInfo]
    extras: Mapping[str, tuple[Shape, ...]]
    preds: dict[str, list[str]] = field(default_factory=dict)  # distinct producers, in reference order
    succs: dict[str, list[str]] = field(default_factory=dict)  # distinct consumers, in checked.order
    feeds: dict[str, list[tuple[str, Slot, str]]] = field(default_factory=dict)  # producer -> (consumer, slot, port)

    @classmethod
    def of(cls, checked: Checked) -> _Links:
        """Read the graph of a checked spec: one pass over every node's references."""
        position = {n: i for i, n in enumerate(checked.order)}
        nodes = checked.graph.nodes
        links = cls(position, {n: nodes[n] for n in checked.order}, checked.info, checked.shapes.extras)
        succs, feeds = links.succs, links.feeds
        for nid in checked.order:
            succs.setdefault(nid, [])
            seen: dict[str, None] = {}
            for ref in links.attrs[nid].get("refs", ()):
                source, _, port = ref.source.partition(".")
                if source in position:  # else a dangling reference (a lenient check): its node has a problem
                    feeds.setdefault(source, []).append((nid, ref.slot, port))
                    if source not in seen:
                        seen[source] = None
                        succs.setdefault(source, []).append(nid)
            links.preds[nid] = list(seen)
        return links

    def boundary(self, part: Sequence[str]) -> tuple[frozenset[str], frozenset[str]]:
        """(sources, sinks) of a set of nodes: the nodes outside it that feed it, and that it feeds."""
        if len(part) == 1:  # most branches: one node
            return frozenset(self.preds[part[0]]), frozenset(self.succs[part[0]])
        inside = set(part)
        sources = frozenset(p for n in part for p in self.preds[n] if p not in inside)
        return sources, frozenset(s for n in part for s in self.succs[n] if s not in inside)

    def ordered(self, names: Iterable[str]) -> tuple[str, ...]:
        """Node ids in ``checked.order``."""
        return tuple(sorted(names, key=self.position.__getitem__))

    def pattern(self, part: Sequence[str]) -> tuple[Any, ...]:
        """What two branches must share to be the same, but their JSON: per node, its look, edges in and out."""
        local = {n: i for i, n in enumerate(part)}
        key = []
        for nid in part:
            attrs, info = self.attrs[nid], self.info[nid]
            ins = [
                (ref.slot, local[node], port) if node in local else (ref.slot, ref.source)
                for ref in attrs.get("refs", ())
                for node, _, port in (ref.source.partition("."),)
            ]
            outs = [(t, _slot_kind(slot), port) for t, slot, port in self.feeds.get(nid, ()) if t not in local]
            if len(outs) > 1:
                outs.sort()
            look = (attrs["kind"], info.op, info.shape, self.extras.get(nid, ()), info.trainable, info.non_trainable)
            key.append((look, tuple(ins), tuple(outs)))
        return tuple(key)

    def written_alike(self, a: Sequence[str], b: Sequence[str]) -> bool:
        """Whether two branches' nodes are written alike, node by node (ignoring inputs, docs, names)."""
        for x, y in zip(a, b, strict=True):
            sx, sy = self.attrs[x]["spec"], self.attrs[y]["spec"]
            if sx != sy and _as_written(sx) != _as_written(sy):  # equal as written: equal without ids too
                return False
        return True

    def same(self, parts: Sequence[list[str]]) -> list[list[list[str]]]:
        """Candidates of one size and boundary, split into sets of the same branches.

        By the hashable pattern first, then by the nodes' JSON compared as
        values with the first candidate of each set (1 and 1.0 are equal, as
        in Keras).
        """
        keyed: dict[tuple[Any, ...], list[list[list[str]]]] = {}
        for part in parts:
            sets = keyed.setdefault(self.pattern(part), [])
            for members in sets:
                if self.written_alike(members[0], part):
                    members.append(part)
                    break
            else:
                sets.append([part])
        return [members for sets in keyed.values() for members in sets]


def _blocked(checked: Checked) -> set[str]:
    """Nodes that must stay visible: model outputs' sources, and nodes (or inputs) a problem names."""
    out = {ref_node(ref.source) for ref in checked.graph.graph.get("outputs", {}).values()}
    for problem in checked.problems:
        path = problem.path
        if len(path) >= 2 and path[0] in ("nodes", "inputs"):
            out.add(str(path[1]))
    return out


def _foldable(checked: Checked, links: _Links, min_count: int) -> set[str]:
    """The nodes that may be part of a branch (see the module docstring)."""
    blocked = _blocked(checked)
    free = set()
    for nid in checked.order:
        node, attrs = links.info.get(nid), links.attrs[nid]
        if (
            node is not None
            and node.shared is None
            and attrs.get("kind") in FOLDABLE_KINDS
            and not attrs.get("broken")
            and not checked.scopes.get(nid)
            and nid not in blocked
            and len(links.preds[nid]) < min_count
            and len(links.succs[nid]) < min_count
        ):
            free.add(nid)
    return free


def _components(order: Sequence[str], links: _Links, free: set[str]) -> list[list[str]]:
    """The connected sets of foldable nodes, each in topological order, in order of their first node."""
    seen: set[str] = set()
    parts = []
    for start in order:
        if start not in free or start in seen:
            continue
        seen.add(start)
        part, stack = [], [start]
        while stack:
            nid = stack.pop()
            part.append(nid)
            for other in (*links.preds[nid], *links.succs[nid]):
                if other in free and other not in seen:
                    seen.add(other)
                    stack.append(other)
        parts.append(sorted(part, key=links.position.__getitem__) if len(part) > 1 else part)
    return parts


@functools.lru_cache(maxsize=1024)
def _slot_kind(slot: Slot) -> str:
    """A slot without its list position: ``()`` -> ``""``, ``(2,)`` -> ``[]``, ``("experts", 1)`` -> ``experts[]``."""
    return "".join("[]" if isinstance(s, int) else str(s) for s in slot)


def _as_written(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A node's JSON as written, without what may differ between identical branches (ids, names, docs)."""
    body = {k: v for k, v in spec.items() if k not in _IGNORED}
    config = body.get("config")
    if isinstance(config, Mapping) and "name" in config:
        body["config"] = {k: v for k, v in config.items() if k != "name"}
    return body


def _repeat(checked: Checked, links: _Links, parts: Sequence[Sequence[str]]) -> Repeat:
    """The group of these identical branches, with its sources, sinks and signature."""
    sources, sinks = links.boundary(parts[0])  # the same for every branch
    branches = tuple(tuple(part) for part in parts)
    return Repeat(branches, links.ordered(sources), links.ordered(sinks), signature(checked, parts[0]))


def signature(checked: Checked, branch: Sequence[str]) -> str:
    """A readable summary of one branch: its steps joined by arrows, parallel nodes in brackets.

    Args:
        checked: the checked spec.
        branch: the branch's node ids, in topological order.

    Returns:
        Plain text (not escaped), e.g. ``Dense(64, relu) → Dropout(0.5)``; a
        branch of more than ``MAX_STEPS`` steps keeps its first three and last
        two around ``…``.
    """
    inside = set(branch)
    depth: dict[str, int] = {}
    steps: list[list[str]] = []
    for nid in branch:
        depth[nid] = 1 + max((depth[p] for p in checked.graph.pred[nid] if p in inside), default=-1)
        if depth[nid] == len(steps):
            steps.append([])
        steps[depth[nid]].append(_node_text(checked, nid))
    texts = [step[0] if len(step) == 1 else "[" + " | ".join(step) + "]" for step in steps]
    if len(texts) > MAX_STEPS:
        texts = [*texts[:3], f"… {len(texts) - 5} more", *texts[-2:]]
    return " → ".join(texts)


def _values(config: Any, rule: Rule | None) -> list[str]:
    """The key config values worth showing (those that differ from Keras's defaults), as text."""
    if not isinstance(config, Mapping):
        return []
    keys: Iterable[str] = (rule.summary_keys if rule else ()) or FALLBACK_KEYS
    params = rule.param_index if rule else {}
    shown = []
    for key in keys:
        if key not in config:
            continue
        param = params.get(key)
        if param is not None and not param.required and config[key] == param.default:
            continue
        text = fmt_value(config[key])
        shown.append(text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…")
        if len(shown) == MAX_VALUES:
            break
    return shown


def _node_text(checked: Checked, nid: str) -> str:
    """One node of a signature: ``Dense(64, relu)``, ``concat``, ``input float32 (None, 16)``, ``model enc.keras``."""
    attrs, info = checked.graph.nodes[nid], checked.info[nid]
    spec = attrs["spec"]
    kind = attrs["kind"]
    if kind == "input":
        return f"input {info.op} {fmt_dims(info.shape)}"
    if kind == "model":
        text = f"model {info.op}"
    else:
        op = str(spec.get("merge" if kind == "merge" else "layer", info.op))
        rule: Rule | None = (MERGES if kind == "merge" else LAYERS).get(op)
        values = _values(spec.get("config"), rule)
        text = f"{op}({', '.join(values)})" if values else op
    return text + (" frozen" if spec.get("trainable", True) is False else "")
