"""Folding a flat spec's repeated sub-graphs into blocks (``fusec import --blocks``).

A flat spec (one node per Keras layer, as ``fusec import`` writes it) is cut into single-entry
single-exit segments at its cut points: the nodes every input-to-output path passes through (ResNet's
block outputs, DenseNet's concatenations). Segments with the same structure (layer kinds, wiring by
local index, config keys) form a group; a config value that differs between members becomes a block
parameter (positions whose values agree in every member share one), values equal everywhere stay
literal. A group of two or more members becomes a block; consecutive members with equal parameters,
each fed by the one before, become one instance with ``repeat``.

Keras's names help only where they are regular (instance ``conv2_block1``, node
``1_conv`` -> ``n1_conv``; runs of a chain joined by their common prefix); the folded
spec is expanded and compared with the original, which comes back unfolded on any difference.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .blocks import expand_blocks
from .ports import SEP
from .refs import flat_refs, ref_node
from .schema.names import is_id

ENTRY = "x"  # the folded blocks' input name
EXIT = "y"  # and output name


@dataclass
class _Segment:
    """A single-entry single-exit run of nodes: what feeds it, its nodes (exit last), and its structure."""

    entry: str  # the reference its nodes use for what feeds it (an id, perhaps with a port)
    ids: list[str]  # canonical order: depth-first from the exit along inputs, children first
    signature: str = ""
    leaves: list[tuple[int, tuple[str, ...], Any]] = field(default_factory=list)  # (node index, config path, value)

    exit = property(lambda self: self.ids[-1])  # the node whose output leaves the segment


def fold_blocks(doc: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Fold the repeated sub-graphs of a flat spec into blocks.

    Args:
        doc: a spec without blocks (a doc with blocks comes back unchanged).

    Returns:
        The folded spec, and for every node that moved, its old id -> its id
        after expansion (``conv2_block1_1_conv`` -> ``conv2_block1__n1_conv``);
        weights keyed by node id are re-keyed with it.
    """
    nodes = doc.get("nodes", {})
    if "blocks" in doc or any("block" in n for n in nodes.values()):
        return dict(doc), {}
    order = _topo_order(doc)
    if order is None:
        return dict(doc), {}
    pinned = {ref_node(o["from"]) for o in doc.get("outputs", {}).values() if isinstance(o.get("from"), str)}
    groups: dict[str, list[_Segment]] = {}
    for seg in _segments(doc, order, pinned):
        groups.setdefault(seg.signature, []).append(seg)
    folder = _Folder(doc)
    for members in groups.values():
        if len(members) >= 2:
            folder.fold_group(members)
    if not folder.instances:
        return dict(doc), {}
    folded = folder.result()
    if not _expands_to(folded, doc, folder.moved):
        return dict(doc), {}
    return folded, folder.moved


def _consumers(doc: Mapping[str, Any]) -> dict[str, list[str]]:
    """For each node or input id, the distinct nodes that read it, in file order."""
    out: dict[str, list[str]] = {}
    for nid, node in doc["nodes"].items():
        for src in dict.fromkeys(ref_node(r) for r in flat_refs(node.get("inputs"))):
            out.setdefault(src, []).append(nid)
    return out


def _topo_order(doc: Mapping[str, Any]) -> list[str] | None:
    """The nodes in an order where each comes after what feeds it (file order where free); None on a cycle."""
    nodes = doc["nodes"]
    waiting = {nid: len({ref_node(r) for r in flat_refs(n.get("inputs"))} & set(nodes)) for nid, n in nodes.items()}
    readers = _consumers(doc)
    ready = [nid for nid, count in waiting.items() if count == 0]
    order: list[str] = []
    while ready:
        nid = ready.pop(0)
        order.append(nid)
        for reader in readers.get(nid, []):
            waiting[reader] -= 1
            if waiting[reader] == 0:
                ready.append(reader)
    return order if len(order) == len(nodes) else None


def _segments(doc: Mapping[str, Any], order: list[str], pinned: set[str]) -> Iterator[_Segment]:
    """The single-entry single-exit segments between cut points, with their structure."""
    for entry, run in _coalesced(_cuts(doc, order)):
        if entry is not None and len(run) >= 2 and not (pinned & set(run[:-1])):
            seg = _segment(doc, entry, run)
            if seg is not None:
                yield seg


def _cuts(doc: Mapping[str, Any], order: list[str]) -> Iterator[tuple[str | None, list[str]]]:
    """The runs of nodes between consecutive cut points: (what feeds the run, when one thing does; its nodes)."""
    readers = _consumers(doc)
    left = {src: len(r) for src, r in readers.items()}
    live = {i for i in doc["inputs"] if left.get(i)}
    cut: str | None = next(iter(live)) if len(live) == 1 else None
    run: list[str] = []
    for nid in order:
        for src in dict.fromkeys(ref_node(r) for r in flat_refs(doc["nodes"][nid].get("inputs"))):
            left[src] -= 1
            if left[src] == 0:
                live.discard(src)
        if left.get(nid):
            live.add(nid)
        run.append(nid)
        if live == {nid}:
            yield cut, run
            cut, run = nid, []
    if run:
        yield None, run


def _coalesced(runs: Iterator[tuple[str | None, list[str]]]) -> Iterator[tuple[str | None, list[str]]]:
    """Consecutive runs joined where Keras's names say they are one unit (a cut point joins its two sides).

    A chain is a run per node (``conv2_block1_add``, ``conv2_block1_out``): a run whose ids all start with
    the previous run's common prefix (``conv2_block1_``) joins it.
    """
    held: tuple[str | None, list[str]] | None = None
    for entry, run in runs:
        if held is not None:
            head = _common_prefix(held[1])
            if head and all(nid.startswith(head) for nid in run):
                held = (held[0], held[1] + run)
                continue
            yield held
        held = (entry, run)
    if held is not None:
        yield held


def _segment(doc: Mapping[str, Any], entry: str, run: list[str]) -> _Segment | None:
    """The segment of ``run`` (fed by ``entry``) in canonical order with its signature; None if irregular."""
    inside = set(run)
    order: list[str] = []
    seen: set[str] = set()
    entry_refs: set[str] = set()

    def visit(nid: str) -> None:  # recursion is bounded: a segment has at most 256 nodes
        seen.add(nid)
        for ref in flat_refs(doc["nodes"][nid].get("inputs")):
            src = ref_node(ref)
            if src in inside and src not in seen:
                visit(src)
            elif src == entry:
                entry_refs.add(ref)
        order.append(nid)

    if len(run) > 256:
        return None
    visit(run[-1])
    if len(order) != len(run) or len(entry_refs) != 1:
        return None
    seg = _Segment(next(iter(entry_refs)), order)
    index = {nid: i for i, nid in enumerate(order)}
    parts = []
    for i, nid in enumerate(order):
        node = doc["nodes"][nid]
        wiring = _map_refs(
            node.get("inputs"), lambda r: "$in" if r == seg.entry else f"${index[ref_node(r)]}{r[len(ref_node(r)) :]}"
        )
        rest = {k: v for k, v in node.items() if k not in ("inputs", "config")}
        parts.append([rest, wiring, _skeleton(node.get("config"))])
        seg.leaves += [(i, path, value) for path, value in _leaves(node.get("config"), ())]
    seg.signature = json.dumps(parts, sort_keys=True)
    return seg


def _map_refs(inputs: Any, fn: Any) -> Any:
    """``inputs`` (an id, a list, or named inputs) with each reference replaced by ``fn(ref)``."""
    if isinstance(inputs, str):
        return fn(inputs)
    if isinstance(inputs, list):
        return [fn(r) for r in inputs]
    if isinstance(inputs, dict):
        return {k: _map_refs(v, fn) for k, v in inputs.items()}
    return inputs


def _skeleton(config: Any) -> Any:
    """A config's structure: its keys (nested objects followed), each other value a wildcard."""
    if isinstance(config, dict):
        return {k: _skeleton(v) for k, v in config.items()}
    return "*"


def _leaves(config: Any, at: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every value of a config below its objects (a list is one value): (path, value)."""
    if isinstance(config, dict):
        for k, v in config.items():
            yield from _leaves(v, (*at, k))
    elif at:
        yield at, config


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _common_prefix(ids: list[str]) -> str:
    """The common ``_``-ended prefix of some ids (``conv2_block1_`` of ``conv2_block1_1_conv``, ...)."""
    first, last = min(ids), max(ids)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    head = first[:n]
    return head[: head.rfind("_") + 1] if "_" in head else ""


class _Folder:
    """Builds the folded spec: block definitions, instances, and the old-to-new id map."""

    def __init__(self, doc: Mapping[str, Any]) -> None:
        self.doc = doc
        self.blocks: dict[str, dict[str, Any]] = {}
        self.instances: dict[str, tuple[str, dict[str, Any]]] = {}  # first member node -> (instance id, node)
        self.folded: set[str] = set()  # every node now inside an instance
        self.exits: dict[str, str] = {}  # the exit of an instance's last copy -> the instance id
        self.moved: dict[str, str] = {}
        self.taken = set(doc["nodes"]) | set(doc["inputs"]) | set(doc.get("shared", {}))
        self.readers = _consumers(doc)

    def fold_group(self, members: list[_Segment]) -> None:
        """Make a group of equal segments one block and its instances (when that saves lines)."""
        if any(set(m.ids) & self.folded for m in members):
            return
        params, values = _params(members)
        runs = self._runs(members, values)
        size = len(members[0].ids)
        if size + 2 + len(runs) >= size * len(members):
            return
        name = self._name(_block_name(members[0]), "block")
        locals_ = _local_ids(members)
        self.blocks[name] = _definition(self.doc, members[0], locals_, params)
        for run in runs:
            self._instance(name, run, values[members.index(run[0])], locals_, list(dict.fromkeys(params.values())))

    def _runs(self, members: list[_Segment], values: list[tuple[Any, ...]]) -> list[list[_Segment]]:
        """Consecutive members with equal parameters, each fed only by the one before: one ``repeat`` each."""
        runs: list[list[_Segment]] = []
        for m, v in zip(members, values, strict=True):
            if runs:
                prev = runs[-1][-1]
                if (
                    m.entry == prev.exit
                    and values[members.index(prev)] == v
                    and set(self.readers[prev.exit]) <= set(m.ids)
                ):
                    runs[-1].append(m)
                    continue
            runs.append([m])
        return runs

    def _name(self, want: str, fallback: str) -> str:
        """A free id: ``want`` (or ``fallback``) made valid, with ``_2``, ``_3``... when taken."""
        base = want if is_id(want) else fallback
        name, k = base, 1
        while name in self.taken or name in self.blocks:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name

    def _instance(
        self, block: str, run: list[_Segment], values: tuple[Any, ...], locals_: list[str], names: list[str]
    ) -> None:
        """One instance (with ``repeat`` for a run of several copies) standing for ``run``'s nodes."""
        every = [nid for m in run for nid in m.ids]
        inst = self._name(_common_prefix(every).rstrip("_"), f"{block}_{len(self.instances) + 1}")
        node: dict[str, Any] = {"block": block}
        if names:
            node["params"] = dict(zip(names, values, strict=True))
        if len(run) > 1:
            node["repeat"] = len(run)
        node["inputs"] = run[0].entry
        for k, m in enumerate(run, 1):
            head = f"{inst}{SEP}" if len(run) == 1 else f"{inst}{SEP}{k}{SEP}"
            for nid, local in zip(m.ids, locals_, strict=True):
                self.moved[nid] = f"{head}{local}"
                self.taken.add(self.moved[nid])
        first = next(nid for nid in self.doc["nodes"] if nid in set(every))
        self.instances[first] = (inst, node)
        self.folded.update(every)
        self.exits[run[-1].exit] = inst

    def result(self) -> dict[str, Any]:
        """The folded spec: blocks before the nodes, each instance where its first node stood."""

        def remap(ref: str) -> str:
            return self.exits.get(ref, ref)

        nodes: dict[str, Any] = {}
        for nid, node in self.doc["nodes"].items():
            if nid in self.instances:
                inst, inst_node = self.instances[nid]
                nodes[inst] = {**inst_node, "inputs": remap(inst_node["inputs"])}
            elif nid not in self.folded:
                nodes[nid] = {**node, "inputs": _map_refs(node["inputs"], remap)}
        out: dict[str, Any] = {}
        for key, value in self.doc.items():
            if key == "nodes":
                out["blocks"] = self.blocks
                out["nodes"] = nodes
            elif key == "outputs":
                out[key] = {k: {**o, "from": remap(o["from"])} for k, o in value.items()}
            else:
                out[key] = copy.deepcopy(value)
        return out


def _params(members: list[_Segment]) -> tuple[dict[tuple[int, tuple[str, ...]], str], list[tuple[Any, ...]]]:
    """Which config positions become parameters (by name), and each member's parameter values."""
    by_position: dict[tuple[int, tuple[str, ...]], list[Any]] = {}
    for m in members:
        for i, path, value in m.leaves:
            by_position.setdefault((i, path), []).append(value)
    names: dict[str, str] = {}  # the members' values (canonical) -> parameter name
    where: dict[tuple[int, tuple[str, ...]], str] = {}
    for pos, vals in by_position.items():
        canon = _canon(vals)
        if len({_canon(v) for v in vals}) == 1:
            continue
        if canon not in names:
            base = re.sub(r"[^A-Za-z0-9_]", "_", pos[1][-1])
            base = base if is_id(base) else "p"
            name, k = base, 1
            while name in names.values():
                k += 1
                name = f"{base}_{k}"
            names[canon] = name
        where[pos] = names[canon]
    first = {name: pos for pos, name in reversed(list(where.items()))}  # one position per parameter
    values = [tuple(by_position[first[n]][j] for n in names.values()) for j in range(len(members))]
    return where, values


def _local_ids(members: list[_Segment]) -> list[str]:
    """The block's node ids: Keras's names less the instance prefix where they agree, else ``n0``, ``n1``..."""
    tails = []
    for m in members:
        head = _common_prefix(m.ids)
        tails.append([nid[len(head) :] for nid in m.ids])
    if all(t == tails[0] for t in tails):
        out = [t if is_id(t) else f"n{t}" for t in tails[0]]
        if all(is_id(t) for t in out) and len(set(out)) == len(out) and ENTRY not in out:
            return out
    return [f"n{i}" for i in range(len(members[0].ids))]


def _block_name(seg: _Segment) -> str:
    """``conv2_block1_`` -> ``conv_block``: the instance prefix without its numbers."""
    head = _common_prefix(seg.ids).rstrip("_")
    return re.sub(r"_+", "_", re.sub(r"[0-9]+", "", head)).strip("_")


def _definition(
    doc: Mapping[str, Any], seg: _Segment, locals_: list[str], params: Mapping[tuple[int, tuple[str, ...]], str]
) -> dict[str, Any]:
    """The block for a group, written from its first member: local wiring, ``$param`` where members differ."""
    local = dict(zip(seg.ids, locals_, strict=True))

    def rename(ref: str) -> str:
        if ref == seg.entry:
            return ENTRY
        src, dot, port = ref.partition(".")
        return f"{local[src]}{dot}{port}"

    nodes = {}
    for i, nid in enumerate(seg.ids):
        node = copy.deepcopy(doc["nodes"][nid])
        node["inputs"] = _map_refs(node["inputs"], rename)
        for (j, path), name in params.items():
            if j == i:
                target = node["config"]
                for part in path[:-1]:
                    target = target[part]
                target[path[-1]] = {"$param": name}
        nodes[locals_[i]] = node
    block: dict[str, Any] = {"inputs": [ENTRY], "outputs": {EXIT: locals_[-1]}}
    names = list(dict.fromkeys(params.values()))
    if names:
        block["params"] = {n: {} for n in names}
    block["nodes"] = nodes
    return block


def _expands_to(folded: Mapping[str, Any], doc: Mapping[str, Any], moved: Mapping[str, str]) -> bool:
    """Whether the folded spec expands to exactly the original graph: the same nodes, configs and wiring."""
    flat = expand_blocks(folded)
    if flat.problems:
        return False

    def new(ref: str) -> str:
        src, dot, port = ref.partition(".")
        return f"{moved.get(src, src)}{dot}{port}"

    want = {moved.get(nid, nid): {**n, "inputs": _map_refs(n["inputs"], new)} for nid, n in doc["nodes"].items()}
    outputs = {k: {**o, "from": new(o["from"])} for k, o in doc["outputs"].items()}
    return _canon(flat.doc["nodes"]) == _canon(want) and _canon(flat.doc["outputs"]) == _canon(outputs)


def write_spec_text(doc: Mapping[str, Any]) -> str:
    """A spec as JSON text, one input, node, shared layer and output per line (a block's nodes too)."""

    def one(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False)

    def section(entries: Mapping[str, Any], indent: str, render: Any = one) -> str:
        if not entries:
            return "{}"
        lines = [f"{indent}  {one(k)}: {render(v)}" for k, v in entries.items()]
        return "{\n" + ",\n".join(lines) + f"\n{indent}}}"

    def block(value: Mapping[str, Any]) -> str:
        head = ", ".join(f"{one(k)}: {one(v)}" for k, v in value.items() if k != "nodes")
        return "{" + head + ', "nodes": ' + section(value.get("nodes", {}), "    ") + "}"

    parts = []
    for key, value in doc.items():
        if key == "blocks" and isinstance(value, dict):
            parts.append(f'  "blocks": {section(value, "  ", block)}')
        elif key in ("inputs", "shared", "nodes", "outputs") and isinstance(value, dict):
            parts.append(f"  {one(key)}: {section(value, '  ')}")
        else:
            parts.append(f"  {one(key)}: {one(value)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"
