"""Which node of the old spec is which node of the new one: same ids, then renames.

Three kinds of evidence, strongest first; each pass runs only when the ones
before it have nothing left to find:

1. **Exact**: a node only in OLD and one only in NEW with the same kind, op,
   JSON (without ``inputs``) and output shape whose inputs match (every
   reference of the old one, mapped through the nodes matched so far, names
   the new one's reference in the same slot) or whose consumers do (the old
   one's consumers, mapped, are the new one's, and it feeds the same
   outputs). Matches spread from the nodes kept by id along edges in both
   directions, through a work list: a renamed chain is found in time linear
   in the edges it touches. Identical candidates pair in order.
2. **Renamed block instance**: when the nodes matched so far show instance
   ``a`` became ``b`` (same block; ``a`` only in OLD, ``b`` only in NEW, and
   no other candidate), every remaining ``a__X`` pairs with ``b__X``
   (changed or not). Once nothing else is found, an instance only in OLD and
   one only in NEW of the same block, inside the same (matched) instance, pair
   too when each is the only one of its kind.
3. **Renamed and changed**: a node only in OLD and one only in NEW of the same
   kind and op whose inputs AND consumers all map to each other pair when
   each is the other's only candidate (``fc`` -> ``fc2`` with ``units``
   changed): one sweep over the nodes left, grouped by that key, so linear
   time per sweep. Graph inputs never pair this way (the interface lists them).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..spec.graph import ref_node
from .summary import NodeSummary, SpecSummary

Refs = tuple[tuple[str, str], ...]


@dataclass
class Match:
    """The matching: old id -> new id per node, and the block instances renamed.

    Attributes:
        nodes: one to one; ids in both map to themselves, renames map old to new.
        instances: old instance id -> new instance id, for every instance renamed
            (nested instances of a renamed one included).
    """

    nodes: dict[str, str]
    instances: dict[str, str] = field(default_factory=dict)


def _instances(spec: SpecSummary) -> tuple[dict[str, str], dict[str, str | None], dict[str, list[str]]]:
    """Per instance id: its block, the instance around it, the nodes directly inside it."""
    block: dict[str, str] = {}
    parent: dict[str, str | None] = {}
    members: dict[str, list[str]] = {}
    for nid, node in spec.nodes.items():
        outer: str | None = None
        for inst, name in node.scope:
            block.setdefault(inst, name)
            parent.setdefault(inst, outer)
            outer = inst
        if outer is not None:
            members.setdefault(outer, []).append(nid)
    return block, parent, members


class _Matcher:
    """The match so far, the work list of pairs whose neighbours are still to look at, the fuzzy queue."""

    def __init__(self, old: SpecSummary, new: SpecSummary) -> None:
        self.old, self.new = old, new
        self.fwd = {nid: nid for nid in old.nodes if nid in new.nodes}
        self.back = {nid: nid for nid in self.fwd}
        lone_old = {n: old.nodes[n].signature for n in old.nodes if n not in self.fwd}
        lone_new = {n: new.nodes[n].signature for n in new.nodes if n not in self.back}
        both = set(lone_old.values()) & set(lone_new.values())
        self.sig_old = {n: s for n, s in lone_old.items() if s in both}
        self.sig_new = {n: s for n, s in lone_new.items() if s in both}
        self.work: deque[tuple[str, str]] = deque(self.fwd.items())
        self.old_inst, self.old_parent, self.old_members = _instances(old)
        self.new_inst, self.new_parent, _ = _instances(new)
        self.votes: dict[str, set[str]] = {}
        self.inst: dict[str, str] = {}
        self.fallback_done = False

    def pair(self, o: str, n: str) -> None:
        self.fwd[o], self.back[n] = n, o
        self.sig_old.pop(o, None)
        self.sig_new.pop(n, None)
        self.work.append((o, n))
        before, after = self.old.nodes[o].scope, self.new.nodes[n].scope
        if o != n and len(before) == len(after):
            for (a, block_a), (b, block_b) in zip(before, after, strict=True):
                if a != b and block_a == block_b and a not in self.new_inst and b not in self.old_inst:
                    self.votes.setdefault(a, set()).add(b)

    def mapped(self, source: str) -> str | None:
        """An old reference in the new spec's names (``a.1`` -> ``b.1``), or None while ``a`` is unmatched."""
        node, dot, port = source.partition(".")
        target = self.fwd.get(node)
        return None if target is None else f"{target}{dot}{port}"

    def mapped_refs(self, node: NodeSummary) -> Refs | None:
        """An old node's references in new names, or None while one of them is unmatched."""
        out = []
        for slot, source in node.refs:
            name = self.mapped(source)
            if name is None:
                return None
            out.append((slot, name))
        return tuple(out)

    def input_key(self, node: NodeSummary, old: bool) -> tuple[object, ...] | None:
        """(signature, references in new names): equal keys mean matching inputs."""
        if not node.refs:
            return None
        refs = self.mapped_refs(node) if old else node.refs
        if refs is None:
            return None
        sig = self.sig_old[node.id] if old else self.sig_new[node.id]
        return (sig, refs)

    def consumers_match(self, o: str, n: str) -> bool:
        mine = self.old.consumers.get(o, [])
        theirs = self.new.consumers.get(n, [])
        if not mine or len(set(mine)) != len(set(theirs)):
            return False
        mapped = {c if c.startswith("@") else self.fwd.get(c) for c in mine}
        return mapped == set(theirs)

    def forward(self, o: str, n: str) -> None:
        """Unmatched consumers of a matched pair whose inputs now match."""
        olds = [c for c in dict.fromkeys(self.old.consumers.get(o, ())) if c in self.sig_old]
        news = [c for c in dict.fromkeys(self.new.consumers.get(n, ())) if c in self.sig_new]
        if not olds or not news:
            return
        groups: dict[tuple[object, ...], tuple[list[str], list[str]]] = {}
        for c in olds:
            key = self.input_key(self.old.nodes[c], True)
            if key is not None:
                groups.setdefault(key, ([], []))[0].append(c)
        for c in news:
            key = self.input_key(self.new.nodes[c], False)
            if key is not None and key in groups:
                groups[key][1].append(c)
        for a, b in groups.values():
            if len(a) == len(b):
                for x, y in zip(a, b, strict=True):
                    self.pair(x, y)

    def backward(self, olds: Sequence[tuple[str, str]], news: Sequence[tuple[str, str]]) -> None:
        """Unmatched producers in the same slots of a matched pair whose consumers now match."""
        for (slot_o, src_o), (slot_n, src_n) in zip(olds, news, strict=False):
            p_o, p_n = ref_node(src_o), ref_node(src_n)
            if slot_o != slot_n or src_o[len(p_o) :] != src_n[len(p_n) :]:
                continue
            sig = self.sig_old.get(p_o)
            if sig is not None and sig == self.sig_new.get(p_n) and self.consumers_match(p_o, p_n):
                self.pair(p_o, p_n)

    def exact(self) -> None:
        """Spread exact matches along the edges until nothing changes."""
        while self.work:
            o, n = self.work.popleft()
            if self.sig_old:
                self.forward(o, n)
                self.backward(self.old.nodes[o].refs, self.new.nodes[n].refs)

    # ---- renamed block instances ----

    def accept(self, a: str, b: str) -> int:
        """Instance ``a`` is ``b`` now: pair its remaining nodes by local name, its nested instances too."""
        self.inst[a] = b
        found = 0
        for o in self.old_members.get(a, ()):
            n = b + o[len(a) :] if o.startswith(a + "__") else None
            if o not in self.fwd and n is not None and n in self.new.nodes and n not in self.back:
                self.pair(o, n)
                found += 1
        for inner, outer in self.old_parent.items():
            if outer == a and inner.startswith(a + "__") and inner not in self.inst:
                moved = b + inner[len(a) :]
                if moved in self.new_inst and moved not in self.old_inst:
                    found += self.accept(inner, moved) + 1
        return found

    def by_votes(self) -> bool:
        """Instances the matched nodes show renamed (each the other's only candidate)."""
        taken: dict[str, int] = {}
        for bs in self.votes.values():
            for b in bs:
                taken[b] = taken.get(b, 0) + 1
        found = 0
        for a, bs in list(self.votes.items()):
            b = next(iter(bs))
            if a not in self.inst and len(bs) == 1 and taken[b] == 1 and b not in self.inst.values():
                found += self.accept(a, b) + 1
        return found > 0

    def by_block(self) -> bool:
        """An instance only in OLD and one only in NEW, of one block, in the same instance: the only such pair."""
        if self.fallback_done:
            return False
        taken = set(self.inst.values())
        groups: dict[tuple[str, str | None], tuple[list[str], list[str]]] = {}
        for a, block in self.old_inst.items():
            if a not in self.new_inst and a not in self.inst:
                outer = self.old_parent[a]
                groups.setdefault((block, self.inst.get(outer, outer) if outer else None), ([], []))[0].append(a)
        for b, block in self.new_inst.items():
            key = (block, self.new_parent[b])
            if b not in self.old_inst and b not in taken and key in groups:
                groups[key][1].append(b)
        found = 0
        for _, (olds, news) in sorted(groups.items(), key=lambda kv: kv[0][1] or ""):
            if len(olds) == len(news) == 1 and olds[0] not in self.inst:
                found += self.accept(olds[0], news[0]) + 1
        self.fallback_done = not found  # an outer pair may make inner ones comparable: look again
        return found > 0

    # ---- renamed and changed ----

    def mapped_consumers(self, o: str) -> frozenset[str] | None:
        """An old node's consumers in new names (``@name`` for an output), or None while one is unmatched."""
        out = set()
        for c in self.old.consumers.get(o, ()):
            name = c if c.startswith("@") else self.fwd.get(c)
            if name is None:
                return None
            out.add(name)
        return frozenset(out) if out else None

    def by_neighbours(self) -> bool:
        """Pair each lone node with the one lone node of its kind and op whose inputs and consumers map to its own.

        One sweep over the nodes left; a key shared by more than one node on
        either side pairs nothing (unique candidates only).
        """
        olds: dict[tuple[object, ...], list[str]] = {}
        for o, node in self.old.nodes.items():
            if o in self.fwd or node.kind == "input" or not node.refs:
                continue
            refs = self.mapped_refs(node)
            cons = self.mapped_consumers(o) if refs is not None else None
            if cons is not None:
                olds.setdefault((node.kind, node.op, refs, cons), []).append(o)
        if not olds:
            return False
        news: dict[tuple[object, ...], list[str]] = {}
        for n, node in self.new.nodes.items():
            if n not in self.back:
                mine: tuple[object, ...] = (node.kind, node.op, node.refs, frozenset(self.new.consumers.get(n, ())))
                if mine in olds:
                    news.setdefault(mine, []).append(n)
        found = 0
        for key, ns in news.items():
            if len(ns) == 1 and len(olds[key]) == 1:
                self.pair(olds[key][0], ns[0])
                found += 1
        return found > 0

    def run(self) -> Match:
        outs = [(name, src) for name, src in self.old.sources.items() if name in self.new.sources]
        self.backward(outs, [(name, self.new.sources[name]) for name, _ in outs])
        while True:
            self.exact()
            if len(self.fwd) == len(self.old.nodes) or len(self.back) == len(self.new.nodes):
                break
            if not (self.by_votes() or self.by_neighbours() or self.by_block()):
                break
        self.by_votes()  # the instances renamed whole (every node matched already)
        return Match(self.fwd, self.inst)


def match(old: SpecSummary, new: SpecSummary) -> Match:
    """Old id -> new id for every node present in both specs, under its own id or renamed, and the instances renamed.

    Args:
        old: the old spec's summary.
        new: the new spec's summary.

    Returns:
        The matching, one to one. Deterministic for the same two specs.
    """
    return _Matcher(old, new).run()


def match_nodes(old: SpecSummary, new: SpecSummary) -> dict[str, str]:
    """Old id -> new id for every node present in both specs (``match(old, new).nodes``)."""
    return match(old, new).nodes
