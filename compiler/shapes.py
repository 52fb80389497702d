"""Shapes stage: static output shapes and parameter counts, in pure Python.

Walks the graph in topological order and applies each node's layer or merge
rule to the shapes of its inputs. A shared layer's weights are counted once,
at its first call; later calls must fit the same weights. A node whose inputs
failed is skipped, so one mistake is reported once, not once per descendant.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx

from .errors import PathPart, Problem, RuleError, ShapeError
from .graph import BROKEN, Ref, topo_order
from .layers import LAYERS
from .merges import MERGES, MergeRule, NamedSources, SlotError, Sources
from .rules import LayerRule, Out, Shape, fmt_shape
from .submodel import ModelContext, infer_model_node

DEFAULT_MAX_PARAMS = 500_000_000  # 2 GB of float32 weights


@dataclass(frozen=True)
class NodeInfo:
    """What the checker knows about one node.

    Attributes:
        kind: input, layer, merge or shared.
        op: the layer type, merge mode, or (for inputs) the dtype.
        shape: output shape, batch axis (None) first.
        trainable: trainable parameters this node adds (0 for a repeat call).
        non_trainable: non-trainable parameters this node adds.
        shared: the shared layer's id for a shared call, else None.
        call: 1-based index of this call among the shared layer's calls.
    """

    kind: str
    op: str
    shape: Shape
    trainable: int = 0
    non_trainable: int = 0
    shared: str | None = None
    call: int = 0

    @property
    def params(self) -> int:
        return self.trainable + self.non_trainable


@dataclass(frozen=True)
class Totals:
    trainable: int
    non_trainable: int

    @property
    def params(self) -> int:
        return self.trainable + self.non_trainable


def _freeze(out: Out, trainable: bool) -> Out:
    if trainable:
        return out
    return Out(out.shape, 0, out.trainable + out.non_trainable, out.extra)  # keep an RNN's states


def _rule_problem(
    exc: RuleError, base: tuple[PathPart, ...], subject: str, config_base: tuple[PathPart, ...]
) -> Problem:
    if isinstance(exc, SlotError):
        path: tuple[PathPart, ...] = (*base, "inputs", exc.slot)
    else:
        path = (*config_base, "config", exc.key) if exc.key else (*base, "inputs")
    return Problem(path, f"{subject} {exc.message}", exc.hint, "shape")


def _grouped(rule: MergeRule, refs: Sequence[Ref], sources: Sources) -> Sources | NamedSources:
    """A merge rule's sources: as listed, or by slot name for a merge with named inputs."""
    if rule.slots is None:
        return sources
    named: dict[str, list[tuple[str, Shape]]] = {name: [] for name in rule.slots}
    for ref, src in zip(refs, sources, strict=True):
        named[str(ref.slot[0])].append(src)
    return named


def output_shape(info: Mapping[str, NodeInfo], g: nx.DiGraph, source: str) -> Shape:
    """The shape of a reference: a node id, or ``id.N`` for output N of a multi-output node."""
    if source in info:
        return info[source].shape
    node, _, port = source.partition(".")
    outs = (info[node].shape, *g.graph["extras"].get(node, ()))
    return outs[int(port)]


def _port_problem(g: nx.DiGraph, info: Mapping[str, NodeInfo], ref: Ref) -> Problem | None:
    node, dot, port = ref.source.partition(".")
    if not dot:
        return None
    n = 1 + len(g.graph["extras"].get(node, ()))
    if port.isdigit() and int(port) < n:
        return None
    if n == 1:
        return Problem(ref.path, f"node `{node}` has one output", f"write `{node}`", "reference")
    return Problem(
        ref.path,
        f"node `{node}` has {n} outputs; `{ref.source}` is not one of them",
        f"use `{node}.0` (or `{node}`) to `{node}.{n - 1}`",
        "reference",
    )


def _layer_input(rule: LayerRule, refs: Sequence[Ref], shape_of: Any) -> Any:
    """The shape a layer is called on, or {slot: shape} for a layer with named inputs."""
    if not rule.slots:
        return shape_of(refs[0].source)
    if len(refs) == 1 and refs[0].slot == ():
        return {slot: shape_of(refs[0].source) for slot in rule.required_slots}
    return {str(r.slot[0]): shape_of(r.source) for r in refs}


def _fmt_input(shape: Any) -> str:
    if isinstance(shape, dict):
        return ", ".join(f"{slot} {fmt_shape(s)}" for slot, s in shape.items())
    return fmt_shape(shape)


def infer_shapes(
    g: nx.DiGraph,
    file: str | None = None,
    max_params: int = DEFAULT_MAX_PARAMS,
    models: ModelContext | None = None,
    info: dict[str, NodeInfo] | None = None,
) -> dict[str, NodeInfo]:
    """Compute every node's output shape and parameter counts.

    Args:
        g: a graph from ``build_graph``.
        file: the spec's file name for messages.
        max_params: refuse models with more parameters than this.
        models: how to resolve ``model`` nodes (paths, allowed folders);
            the resolved sub-models are left in ``g.graph["submodels"]``.
        info: a dict to fill; when a ShapeError is raised it still holds
            every node that could be given a shape (for later checks).

    Returns:
        NodeInfo per node id, in topological order.

    Raises:
        ShapeError: with every shape mismatch, out-of-range config and
            shared-layer misuse found, or a model over ``max_params``.
    """
    shared: Mapping[str, Any] = g.graph["shared"]
    info = {} if info is None else info
    problems: list[Problem] = []
    shared_weights: dict[str, tuple[int, int, str, Any]] = {}
    shared_calls: dict[str, int] = {}
    g.graph["submodels"] = {}
    g.graph["extras"] = {}

    def shape_of(source: str) -> Shape:
        return output_shape(info, g, source)

    for nid in topo_order(g):
        attrs = g.nodes[nid]
        spec, kind, path = attrs["spec"], attrs["kind"], attrs["path"]
        if attrs.get("broken") or (kind == "shared" and BROKEN in shared.get(spec["shared"], {BROKEN: True})):
            continue  # its own definition is wrong and already reported: no shape to give it
        if kind == "input":
            info[nid] = NodeInfo("input", spec.get("dtype", "float32"), (None, *spec["shape"]))
            continue
        refs = attrs["refs"]
        if any(r.source.partition(".")[0] not in info for r in refs):
            continue  # an upstream node failed; its problem is already reported
        bad_ports = [p for p in (_port_problem(g, info, r) for r in refs) if p]
        if bad_ports:
            problems.extend(bad_ports)
            continue
        try:
            if kind == "merge":
                rule = MERGES[spec["merge"]]
                subject = f"merge `{nid}` ({rule.name})"
                sources = [(r.source, shape_of(r.source)) for r in refs]
                out = rule.infer(_grouped(rule, refs, sources), rule.resolve(spec.get("config", {})))
                info[nid] = NodeInfo("merge", rule.name, out.shape, out.trainable, out.non_trainable)
                continue
            if kind == "model":
                subject = f"node `{nid}` (model):"
                ctx = models or ModelContext(Path(file).parent if file else Path.cwd(), max_params=max_params)
                shapes = {r.source: shape_of(r.source) for r in refs}
                sub, chosen, mapping = infer_model_node(spec, refs, shapes, ctx)
                g.graph["submodels"][nid] = (sub, chosen, mapping, ctx)
                out = _freeze(Out(sub.outputs[chosen], sub.trainable, sub.non_trainable), spec.get("trainable", True))
                info[nid] = NodeInfo("model", sub.path.name, out.shape, out.trainable, out.non_trainable)
                continue
            if kind == "layer":
                lrule = LAYERS[spec["layer"]]
                subject = f"node `{nid}` ({lrule.name}):"
                in_shape = _layer_input(lrule, refs, shape_of)
                out = _freeze(lrule.infer(in_shape, lrule.resolve(spec.get("config", {}))), spec.get("trainable", True))
                info[nid] = NodeInfo("layer", lrule.name, out.shape, out.trainable, out.non_trainable)
                if out.extra:
                    g.graph["extras"][nid] = out.extra
                continue
            sid = spec["shared"]
            layer = shared[sid]
            lrule = LAYERS[layer["layer"]]
            subject = f"node `{nid}` (call of shared `{sid}`, {lrule.name}):"
            in_shape = _layer_input(lrule, refs, shape_of)
            out = _freeze(lrule.infer(in_shape, lrule.resolve(layer.get("config", {}))), layer.get("trainable", True))
        except RuleError as exc:
            if kind == "model":
                where = (*path, exc.key) if exc.key else (*path, "inputs")
                problems.append(Problem(where, f"{subject} {exc.message}", exc.hint, "model"))
                continue
            config_base: tuple[PathPart, ...] = path
            if kind == "shared":
                config_base = g.graph["shared_origins"].get(spec["shared"], ("shared", spec["shared"]))
            problems.append(_rule_problem(exc, path, subject, config_base))
            continue
        if out.extra:
            g.graph["extras"][nid] = out.extra
        shared_calls[sid] = shared_calls.get(sid, 0) + 1
        first = shared_weights.get(sid)
        if first is None:
            shared_weights[sid] = (out.trainable, out.non_trainable, nid, in_shape)
            info[nid] = NodeInfo("shared", lrule.name, out.shape, out.trainable, out.non_trainable, sid, 1)
        elif (out.trainable, out.non_trainable) != first[:2]:
            problems.append(
                Problem(
                    (*path, "inputs"),
                    f"node `{nid}` calls shared layer `{sid}` on an input its weights do not fit. "
                    f"Received: {_fmt_input(in_shape)} here, "
                    f"{_fmt_input(first[3])} at its first call `{first[2]}`",
                    "feed every call inputs of one shape, or use separate layers",
                    "shape",
                )
            )
        else:
            info[nid] = NodeInfo("shared", lrule.name, out.shape, 0, 0, sid, shared_calls[sid])

    for ref in g.graph["outputs"].values():
        if ref.source.partition(".")[0] in info:
            bad = _port_problem(g, info, ref)
            if bad:
                problems.append(bad)
    if not problems:
        totals = total_params(info)
        if totals.params > max_params:
            problems.append(
                Problem(
                    (),
                    f"the model has {totals.params:,} parameters, over the budget of {max_params:,}",
                    "shrink the layers, or raise the budget with --max-params",
                    "budget",
                )
            )
    if problems:
        raise ShapeError(problems, file=file)
    return info


def total_params(info: Mapping[str, NodeInfo]) -> Totals:
    """Trainable and non-trainable parameter totals (shared weights once)."""
    return Totals(
        sum(i.trainable for i in info.values()),
        sum(i.non_trainable for i in info.values()),
    )
