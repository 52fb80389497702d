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

from ..errors import PathPart, Problem, RuleError, ShapeError
from ..spec.graph import BROKEN, Ref, topo_order
from ..vocab.layers import LAYERS
from ..vocab.merges import MERGES, MergeRule, NamedSources, SlotError, Sources
from ..vocab.rule import MAX_ELEMENTS, LayerRule, Out, Shape, fmt_shape, prod
from .archive import ModelContext, infer_model_node

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


def port_index(source: str) -> tuple[str, int | None]:
    """A reference split into its node and output index: ``enc.2`` -> (``enc``, 2), ``enc`` -> (``enc``, 0).

    The rule, the same for every node and input: ``id`` and ``id.0`` are its
    first (for most nodes its only) output, ``id.N`` its output N; the index
    is written in plain decimal (``enc.1``, not ``enc.01``). The index is None
    when what follows the ``.`` is not such a number. The shapes stage, the
    training checks and the build stage all resolve references with this.
    """
    node, dot, port = source.partition(".")
    if not dot:
        return node, 0
    if port.isascii() and port.isdigit() and (port == "0" or not port.startswith("0")):
        return node, int(port)
    return node, None


def output_shape(info: Mapping[str, NodeInfo], g: nx.DiGraph, source: str) -> Shape:
    """The shape of a reference: a node id, or ``id.N`` for output N of a node (see ``port_index``)."""
    node, index = port_index(source)
    outs = (info[node].shape, *g.graph["extras"].get(node, ()))
    return outs[index or 0]


def _port_problem(g: nx.DiGraph, info: Mapping[str, NodeInfo], ref: Ref) -> Problem | None:
    node, index = port_index(ref.source)
    n = 1 + len(g.graph["extras"].get(node, ()))
    if index is not None and index < n:
        return None
    what = "input" if info[node].kind == "input" else "node"
    if n == 1:
        return Problem(
            ref.path,
            f"{what} `{node}` has one output; `{ref.source}` is not it",
            f"write `{node}` (or `{node}.0`)",
            "reference",
        )
    return Problem(
        ref.path,
        f"{what} `{node}` has {n} outputs; `{ref.source}` is not one of them",
        f"use `{node}.0` (or `{node}`) to `{node}.{n - 1}`",
        "reference",
    )


def _size_problem(nid: str, path: tuple[PathPart, ...], kind: str, shapes: Sequence[Shape]) -> Problem | None:
    """A tensor over MAX_ELEMENTS values per example (its size cannot be allocated, or overflows int64)."""
    for shape in shapes:
        size = prod([d for d in shape[1:] if d is not None])
        if size > MAX_ELEMENTS:
            what = f"input `{nid}`" if kind == "input" else f"node `{nid}`"
            return Problem(
                (*path, "shape") if kind == "input" else path,
                f"{what} would hold {size:,} values per example, shape {fmt_shape(shape)}; "
                f"the limit is {MAX_ELEMENTS:,} (2**31 - 1) values per tensor",
                "use smaller dimensions, or pool or stride the data down before this node",
                "limit",
            )
    return None


def _weight_dims(rule: LayerRule, in_shape: Any, config: Mapping[str, Any], params: int) -> tuple[Any, ...]:
    """What of its input a layer is built for: the rank and ``(slot, size)`` per axis its state depends on.

    Keras builds a layer at its first call, from that call's input shapes:
    its weights, and an input spec that fixes the rank (BatchNormalization)
    and the sizes the weights were made for. A later call of a shared layer
    fits only with the same ranks and the same sizes there. Which axes those
    are follows from the layer's rule (cross-checked against Keras): every
    weight's shape is a product of config values and input sizes, so an axis
    whose size changes the parameter count is one the weights are built
    from; and an axis the rule needs to know (the channels a Normalization
    broadcasts its mean over) is one the layer's state is built from.
    """
    shapes = in_shape if isinstance(in_shape, dict) else {"": in_shape}

    def infer(slot: str, shape: Shape) -> Out | None:
        changed = {**shapes, slot: shape}
        try:
            return rule.infer(changed if isinstance(in_shape, dict) else changed[""], config)
        except RuleError:
            return None

    found: list[Any] = [tuple((slot, len(shape)) for slot, shape in shapes.items())]
    for slot, shape in shapes.items():
        for axis, size in enumerate(shape):
            if axis == 0 or size is None:
                continue
            bigger = infer(slot, (*shape[:axis], size + 1, *shape[axis + 1 :]))
            unknown = infer(slot, (*shape[:axis], None, *shape[axis + 1 :]))
            if (bigger is not None and bigger.params != params) or unknown is None:
                found.append((slot, size))
    return tuple(found)


def _layer_input(rule: LayerRule, refs: Sequence[Ref], shape_of: Any) -> Any:
    """The shape a layer is called on, or {slot: shape} for a layer with named inputs."""
    if not rule.slots:
        return shape_of(refs[0].source)
    if len(refs) == 1 and refs[0].slot == ():
        return {slot: shape_of(refs[0].source) for slot in rule.required_slots}
    return {str(r.slot[0]): shape_of(r.source) for r in refs}


def _fmt_dims(dims: Sequence[Any]) -> str:
    """What a layer was built for: ``an input of rank 2, the input's size 8``."""
    ranks, *sizes = dims
    text = ", ".join(f"{slot or 'an input'} of rank {rank}" for slot, rank in ranks)
    return text + "".join(f", {slot or 'the input'}'s size {size}" for slot, size in sizes)


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
    shared_weights: dict[str, tuple[int, int, str, Any, tuple[Any, ...]]] = {}
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
            shape = (None, *spec["shape"])
            big = _size_problem(nid, path, kind, [shape])
            if big:
                problems.append(big)
                continue
            info[nid] = NodeInfo("input", spec.get("dtype", "float32"), shape)
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
                node_info = NodeInfo("merge", rule.name, out.shape, out.trainable, out.non_trainable)
            elif kind == "model":
                subject = f"node `{nid}` (model):"
                ctx = models or ModelContext(Path(file).parent if file else Path.cwd(), max_params=max_params)
                shapes = {r.source: shape_of(r.source) for r in refs}
                sub, chosen, mapping = infer_model_node(spec, refs, shapes, ctx)
                g.graph["submodels"][nid] = (sub, chosen, mapping, ctx)
                out = _freeze(Out(sub.outputs[chosen], sub.trainable, sub.non_trainable), spec.get("trainable", True))
                node_info = NodeInfo("model", sub.path.name, out.shape, out.trainable, out.non_trainable)
            elif kind == "layer":
                lrule = LAYERS[spec["layer"]]
                subject = f"node `{nid}` ({lrule.name}):"
                in_shape = _layer_input(lrule, refs, shape_of)
                out = _freeze(lrule.infer(in_shape, lrule.resolve(spec.get("config", {}))), spec.get("trainable", True))
                node_info = NodeInfo("layer", lrule.name, out.shape, out.trainable, out.non_trainable)
            else:
                sid = spec["shared"]
                layer = shared[sid]
                lrule = LAYERS[layer["layer"]]
                subject = f"node `{nid}` (call of shared `{sid}`, {lrule.name}):"
                in_shape = _layer_input(lrule, refs, shape_of)
                config = lrule.resolve(layer.get("config", {}))
                out = lrule.infer(in_shape, config)
                dims = _weight_dims(lrule, in_shape, config, out.params)
                out = _freeze(out, layer.get("trainable", True))
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
        if kind == "shared":
            shared_calls[sid] = shared_calls.get(sid, 0) + 1
            first = shared_weights.get(sid)
            if first is None:
                shared_weights[sid] = (out.trainable, out.non_trainable, nid, in_shape, dims)
                node_info = NodeInfo("shared", lrule.name, out.shape, out.trainable, out.non_trainable, sid, 1)
            elif (out.trainable, out.non_trainable) != first[:2] or dims != first[4]:
                problems.append(
                    Problem(
                        (*path, "inputs"),
                        f"node `{nid}` calls shared layer `{sid}` on an input its weights do not fit. "
                        f"Received: {_fmt_input(in_shape)} here, "
                        f"{_fmt_input(first[3])} at its first call `{first[2]}`",
                        f"Keras builds `{sid}` at its first call for {_fmt_dims(first[4])}; "
                        "feed every call the same there, or use separate layers",
                        "shape",
                    )
                )
                continue
            else:
                node_info = NodeInfo("shared", lrule.name, out.shape, 0, 0, sid, shared_calls[sid])
        big = _size_problem(nid, path, kind, [out.shape, *out.extra])
        if big:
            problems.append(big)
            continue
        info[nid] = node_info
        if out.extra:
            g.graph["extras"][nid] = out.extra

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
        elif models is None or len(models.stack) <= 1:  # a nested spec's weights count in the outermost one's
            from .budget import memory_problems

            problems.extend(memory_problems(info, g, models.max_memory if models else None))
    if problems:
        raise ShapeError(problems, file=file)
    return info


def total_params(info: Mapping[str, NodeInfo]) -> Totals:
    """Trainable and non-trainable parameter totals (shared weights once)."""
    return Totals(
        sum(i.trainable for i in info.values()),
        sum(i.non_trainable for i in info.values()),
    )
