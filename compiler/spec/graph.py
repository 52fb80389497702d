"""Graph stage: a schema-valid spec becomes a networkx DiGraph.

Nodes are the spec's inputs and nodes (shared layers are weights, not steps:
each call of one is a node). Edges run from producer to consumer. This stage
checks what the schema cannot: ids unique across sections, references that
resolve, the right number of inputs per node, no cycles, and a graph in which
every input is used and every node reaches an output.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import networkx as nx

from ..errors import GraphError, NameIndex, PathPart, Problem, did_you_mean, quote_names
from ..vocab.layers import LAYERS
from ..vocab.merges import MERGES, MergeRule
from ..vocab.rule import LayerRule

Slot = tuple[str | int, ...]


@dataclass(frozen=True)
class Ref:
    """One reference from a node to the node (or input) that feeds it.

    Attributes:
        slot: where it stands in ``inputs``: () for a single id, (i,) in a
            list, (name,) or (name, i) in an object of named inputs.
        source: the referenced id.
        path: the JSON path of the reference.
    """

    slot: Slot
    source: str
    path: tuple[PathPart, ...]


def iter_refs(inputs: Any, base: tuple[PathPart, ...]) -> Iterator[Ref]:
    """Every reference in a node's ``inputs`` value, in order."""
    if isinstance(inputs, str):
        yield Ref((), inputs, base)
    elif isinstance(inputs, list):
        for i, ref in enumerate(inputs):
            yield Ref((i,), ref, (*base, i))
    elif isinstance(inputs, dict):
        for name, value in inputs.items():
            if isinstance(value, str):
                yield Ref((name,), value, (*base, name))
            else:
                for i, ref in enumerate(value):
                    yield Ref((name, i), ref, (*base, name, i))


def flat_refs(inputs: Any) -> list[str]:
    """Every id in an ``inputs`` value of any form, in order; anything else in it is skipped.

    For placeholders of nodes that failed the schema: their edges still count.
    """
    if isinstance(inputs, str):
        return [inputs]
    if isinstance(inputs, list):
        return [r for r in inputs if isinstance(r, str)]
    if isinstance(inputs, dict):
        return [r for v in inputs.values() for r in flat_refs(v)]
    return []


def ref_node(source: str) -> str:
    """The node a reference points at: ``enc`` for ``enc.1`` (output 1 of ``enc``)."""
    return source.partition(".")[0]


#: The kind of a placeholder for a node (or input, or block instance) whose own
#: definition failed the schema: kept so references to it resolve and other
#: nodes are still checked, skipped by the shapes stage (see check.py).
BROKEN = "broken"


def node_kind(node: Mapping[str, Any]) -> str:
    """``layer``, ``merge``, ``shared``, ``model``, ``broken`` (or ``block``, before expansion) for a spec node."""
    for kind in (BROKEN, "layer", "merge", "shared", "model", "block"):
        if kind in node:
            return kind
    raise ValueError("schema-valid nodes have a kind")


def _layer_slot_problems(nid: str, rule: LayerRule, inputs: Any, path: tuple[PathPart, ...]) -> list[Problem]:
    """A layer with named inputs takes one id (all required slots) or an object of slots."""
    if isinstance(inputs, str):
        return []
    names = quote_names(list(rule.slots))
    if not isinstance(inputs, dict):
        return [
            Problem(
                path,
                f"node `{nid}` ({rule.name}) takes named inputs {names}, or one id for all of "
                f"{quote_names(list(rule.required_slots))}",
                'write {"query": ID, "value": ID}',
                "arity",
            )
        ]
    problems = []
    for slot, value in inputs.items():
        if slot not in rule.slots:
            near = did_you_mean(slot, rule.slots)
            hint = f"did you mean `{near[0]}`?" if near else f"its inputs: {names}"
            problems.append(Problem((*path, slot), f"{rule.name} has no input `{slot}`", hint, "arity"))
        elif not isinstance(value, str):
            problems.append(Problem((*path, slot), f"input `{slot}` takes one id", "", "arity"))
    for slot in rule.required_slots:
        if slot not in inputs:
            problems.append(Problem(path, f"node `{nid}` ({rule.name}) needs input `{slot}`", "", "arity"))
    return problems


def _arity_problems(
    nid: str,
    node: Mapping[str, Any],
    refs: list[Ref],
    base: tuple[PathPart, ...],
    shared: Mapping[str, Any] | None = None,
) -> list[Problem]:
    kind = node_kind(node)
    path: tuple[PathPart, ...] = (*base, "inputs")
    inputs = node["inputs"]
    if kind in ("model", BROKEN):
        return []  # named inputs are matched against the sub-model's own in the shapes stage
    layer_name = node.get("layer") or (shared or {}).get(node.get("shared", ""), {}).get("layer")
    if layer_name in LAYERS and LAYERS[layer_name].slots:
        return _layer_slot_problems(nid, LAYERS[layer_name], inputs, path)
    if kind == "merge":
        rule = MERGES[node["merge"]]
        lo, hi = rule.arity
        if rule.slots is not None:
            return _slot_problems(nid, rule, inputs, path)
        if not isinstance(inputs, list):
            return [Problem(path, f"merge `{nid}` ({rule.name}) takes a list of inputs", 'write ["a", "b", ...]')]
        if len(refs) < lo or (hi is not None and len(refs) > hi):
            return [
                Problem(
                    path,
                    f"merge `{nid}` ({rule.name}) needs {_want(lo, hi)} inputs. Received: {len(refs)}",
                    "",
                    "arity",
                )
            ]
        return []
    if isinstance(inputs, dict) or len(refs) != 1:
        what = kind if kind == "layer" else "shared-layer call"
        return [
            Problem(
                path,
                f"a {what} node takes exactly one input. Received: {len(refs)}",
                "merge several inputs first (concat, add, ...), then feed the merge's id",
                "arity",
            )
        ]
    return []


def _want(lo: int, hi: int | None) -> str:
    return f"exactly {lo}" if lo == hi else f"at least {lo}" if hi is None else f"{lo} to {hi}"


def _slot_problems(nid: str, rule: MergeRule, inputs: Any, path: tuple[PathPart, ...]) -> list[Problem]:
    """Named inputs of a merge with slots: every slot given, each an id or a list as declared."""
    slots = rule.slots or {}
    subject = f"merge `{nid}` ({rule.name})"
    example = ", ".join(f'"{s}": ' + ('["a", "b", ...]' if k == "list" else '"c"') for s, k in slots.items())
    if not isinstance(inputs, dict):
        return [Problem(path, f"{subject} takes named inputs {quote_names(list(slots))}", f"write {{{example}}}")]
    problems = []
    for name in inputs:
        if name not in slots:
            near = did_you_mean(name, list(slots))
            hint = f"did you mean `{near[0]}`?" if near else f"valid: {quote_names(list(slots))}"
            problems.append(Problem((*path, name), f"{subject} has no input named `{name}`", hint, "arity"))
    for name, kind in slots.items():
        if name not in inputs:
            problems.append(Problem(path, f"{subject} is missing the input `{name}`", f"write {{{example}}}"))
            continue
        value = inputs[name]
        if kind == "one" and not isinstance(value, str):
            problems.append(
                Problem(
                    (*path, name),
                    f"{subject} takes one id as `{name}`. Received: a list of {len(value)}",
                    "",
                    "arity",
                )
            )
        elif kind == "list" and not isinstance(value, list):
            problems.append(
                Problem((*path, name), f"{subject} takes a list of ids as `{name}`", f'write ["{value}", ...]')
            )
        elif kind == "list":
            lo, hi = rule.arity
            if len(value) < lo or (hi is not None and len(value) > hi):
                problems.append(
                    Problem(
                        (*path, name),
                        f"{subject} needs {_want(lo, hi)} {name}. Received: {len(value)}",
                        "",
                        "arity",
                    )
                )
    return problems


def build_graph(
    doc: Mapping[str, Any],
    file: str | None = None,
    origins: Mapping[str, tuple[PathPart, ...]] | None = None,
    shared_origins: Mapping[str, tuple[PathPart, ...]] | None = None,
) -> nx.DiGraph:
    """Turn a schema-valid spec document into a checked dependency graph.

    ``graph_problems`` without the raising: see there.

    Raises:
        GraphError: with every problem ``graph_problems`` found.
    """
    g, problems = graph_problems(doc, origins, shared_origins)
    if problems:
        raise GraphError(problems, file=file)
    return g


def graph_problems(
    doc: Mapping[str, Any],
    origins: Mapping[str, tuple[PathPart, ...]] | None = None,
    shared_origins: Mapping[str, tuple[PathPart, ...]] | None = None,
    reach: bool = True,
) -> tuple[nx.DiGraph, list[Problem]]:
    """Build the dependency graph of a spec document and every problem in it.

    Args:
        doc: the spec, already validated against the schema (nodes that
            failed it replaced by ``broken`` placeholders).
        origins: for nodes generated from blocks, the JSON path of their
            definition (errors point there); others are at ``$.nodes.ID``.
        shared_origins: the same for generated shared layers.
        reach: also report unused inputs, dead nodes and uncalled shared
            layers (only when nothing else is wrong: a broken node would make
            its producers look dead).

    Returns:
        A DiGraph whose nodes are input and node ids, with attributes
        ``kind`` (input/layer/merge/shared/model/broken), ``spec`` (the JSON
        object), ``refs`` (list of Ref, in order), ``path`` and ``broken``
        (True when the node must not be given a shape: its definition or its
        input count is wrong); graph attributes ``outputs`` ({name: Ref}) and
        ``shared`` ({id: spec}). And every duplicate id, dangling reference,
        wrong input count, cycle, output name clash, unused input or dead node.
    """
    inputs: Mapping[str, Any] = doc["inputs"]
    nodes: Mapping[str, Any] = doc["nodes"]
    shared: Mapping[str, Any] = doc.get("shared", {})
    problems: list[Problem] = []

    owner: dict[str, str] = {}
    for section, ids in (("inputs", inputs), ("shared", shared), ("nodes", nodes)):
        for nid in ids:
            if nid in owner:
                problems.append(
                    Problem(
                        (section, nid),
                        f"id `{nid}` is used in both `{owner[nid]}` and `{section}`",
                        "ids are unique across inputs, shared layers and nodes; rename one",
                        "duplicate",
                    )
                )
            else:
                owner[nid] = section

    origins = origins or {}
    g = nx.DiGraph(
        outputs={},
        shared=dict(shared),
        shared_origins=dict(shared_origins or {}),
        name=doc.get("name", "model"),
    )
    for iid, spec in inputs.items():
        kind = BROKEN if BROKEN in spec else "input"
        g.add_node(iid, kind=kind, spec=spec, refs=[], path=("inputs", iid), broken=kind == BROKEN)
    for nid, spec in nodes.items():
        if owner.get(nid) != "nodes":
            continue
        base = origins.get(nid, ("nodes", nid))
        refs = list(iter_refs(spec["inputs"], (*base, "inputs")))
        arity = _arity_problems(nid, spec, refs, base, shared)
        kind = node_kind(spec)
        g.add_node(nid, kind=kind, spec=spec, refs=refs, path=base, broken=kind == BROKEN or bool(arity))
        problems.extend(arity)

    producers = NameIndex(g.nodes)
    shared_names = NameIndex(shared)
    used_shared: set[str] = set()
    for nid, spec in nodes.items():
        if owner.get(nid) != "nodes":
            continue
        if "shared" in spec:
            sid = spec["shared"]
            if sid in shared:
                used_shared.add(sid)
            else:
                problems.append(_dangling((*g.nodes[nid]["path"], "shared"), sid, shared_names, "shared layer"))
        for ref in g.nodes[nid]["refs"]:
            source = ref_node(ref.source)
            if source in g:
                g.add_edge(source, nid)
            elif ref.source in shared:
                problems.append(
                    Problem(
                        ref.path,
                        f"`{ref.source}` is a shared layer, not a node",
                        f'call it with a node {{"shared": "{ref.source}", "inputs": ...}} and reference that node',
                        "reference",
                    )
                )
            else:
                problems.append(_dangling(ref.path, ref.source, producers, "node or input"))

    for name, out in doc["outputs"].items():
        if not isinstance(out.get("from"), str):
            continue  # a broken output: the schema stage reported it
        ref = Ref((), out["from"], ("outputs", name, "from"))
        g.graph["outputs"][name] = ref
        if ref_node(ref.source) not in g:
            if ref.source in shared:
                problems.append(
                    Problem(
                        ref.path,
                        f"output `{name}` comes from `{ref.source}`, a shared layer, not a node",
                        _callers(nodes, ref.source),
                        "reference",
                    )
                )
            else:
                problems.append(_dangling(ref.path, ref.source, producers, "node or input"))
        problems.extend(_output_name_problems(name, ref, owner))

    problems.extend(_cycle_problems(g))
    if reach and not problems:
        problems.extend(_reach_problems(g, shared, used_shared))
    return g, problems


def _callers(nodes: Mapping[str, Any], sid: str) -> str:
    """The fix for an output that names a shared layer: one of the nodes that call it."""
    calls = [nid for nid, spec in nodes.items() if spec.get("shared") == sid]
    if calls:
        return f"a shared layer has one output per call: name one of the nodes calling it, {quote_names(calls, 6)}"
    return f'call it from a node {{"shared": "{sid}", "inputs": ...}} and name that node'


def _output_name_problems(name: str, ref: Ref, owner: Mapping[str, str]) -> list[Problem]:
    """An output's name becomes the name of the Keras layer that yields it, so it may not be another's id."""
    if name not in owner or ref.source == name or ref.source == f"{name}.0":  # `y.0` is `y`: its only output
        return []
    what = {"inputs": "input", "shared": "shared layer", "nodes": "node"}[owner[name]]
    return [
        Problem(
            ("outputs", name),
            f"output `{name}` has the id of {what} `{name}` but comes from `{ref.source}`: "
            "the model names each output's layer after the output, so the two would clash",
            f"rename the output, or the {what}",
            "duplicate",
        )
    ]


def _dangling(path: tuple[PathPart, ...], name: str, valid: NameIndex, what: str) -> Problem:
    near = valid.near(name)
    if near:
        hint = f"did you mean `{near[0]}`?"
    elif valid.names:
        hint = f"valid: {quote_names(valid.names)}"
    else:
        hint = f"define the {what} first"
    return Problem(path, f"no {what} named `{name}`", hint, "reference")


def _shortest_cycle(g: nx.DiGraph, scc: set[str], start: str) -> list[str]:
    """The shortest cycle through ``start`` inside its strongly connected component, ``start`` at both ends.

    A breadth-first walk over plain adjacency (a networkx subgraph view
    filters every lookup: 0.3 s for one cycle of 8,000 nodes).
    """
    parent: dict[str, str | None] = {start: None}
    queue = collections.deque([start])
    while queue:
        u = queue.popleft()
        for v in g.successors(u):
            if v == start:
                path = [u]
                while (up := parent[path[-1]]) is not None:
                    path.append(up)
                return [*reversed(path), start]
            if v in scc and v not in parent:
                parent[v] = u
                queue.append(v)
    raise ValueError(f"{start} is on no cycle")  # an SCC of two or more nodes, or a self-loop, always has one


def _cycle_problems(g: nx.DiGraph) -> list[Problem]:
    problems = []
    for scc in sorted(nx.strongly_connected_components(g), key=min):
        if len(scc) == 1:
            (n,) = scc
            if not g.has_edge(n, n):
                continue
        names = _shortest_cycle(g, scc, min(scc))
        closing = (names[-2], names[-1])
        ref = next(r for r in g.nodes[closing[1]]["refs"] if ref_node(r.source) == closing[0])
        problems.append(
            Problem(
                ref.path,
                f"cycle: {' -> '.join(names)}",
                "a spec is a directed acyclic graph; break the loop",
                "cycle",
            )
        )
    return problems


def _reach_problems(g: nx.DiGraph, shared: Mapping[str, Any], used_shared: set[str]) -> list[Problem]:
    sinks = sorted({ref_node(ref.source) for ref in g.graph["outputs"].values()})
    live: set[str] = set().union(*nx.bfs_layers(g.reverse(copy=False), sinks))  # not ancestors() per output: O(n^2)
    problems = []
    for n in sorted(g.nodes):
        if n in live:
            continue
        if g.nodes[n]["kind"] == "input":
            problems.append(
                Problem(
                    g.nodes[n]["path"],
                    f"input `{n}` is not used by any node that reaches an output",
                    "feed it to a node, or remove it",
                    "unused",
                )
            )
        else:
            problems.append(
                Problem(
                    g.nodes[n]["path"],
                    f"node `{n}` does not reach any output",
                    "feed it into the graph or name it in `outputs`, or remove it",
                    "unused",
                )
            )
    for sid in sorted(set(shared) - used_shared):
        problems.append(
            Problem(
                ("shared", sid),
                f"shared layer `{sid}` is never called",
                "call it from a node, or remove it",
                "unused",
            )
        )
    return problems


def topo_order(g: nx.DiGraph) -> list[str]:
    """Deterministic topological order: producers first, ties broken by the spec's order.

    Among nodes that could come next, the one written first wins (inputs
    before nodes, each section in file order; block-generated nodes where
    their instance stands), so summaries and diagrams read like the file.
    """
    position = {n: i for i, n in enumerate(g.nodes)}
    return list(nx.lexicographical_topological_sort(g, key=position.__getitem__))
