"""Shapes stage: static output shapes and parameter counts, in pure Python.

Walks the graph in topological order and applies each node's rule to the
shapes of its inputs: one small handler per node kind (``input``, ``layer``,
``shared``, ``merge``, ``model``), in ``_ShapeWalk.HANDLERS``. A shared
layer's weights are counted once, at its first call; later calls must fit
the same weights. A node whose inputs failed is skipped, so one mistake is
reported once, not once per descendant. The result is a typed ``Shapes``
record that the later stages (training checks, budget, build, render) read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import networkx as nx

from ..errors import PathPart, Problem, RuleError, ShapeError
from ..spec.graph import BROKEN, Ref, topo_order
from ..vocab.layers import LAYERS
from ..vocab.merges import MERGES, BroadcastError, SlotError
from ..vocab.rule import MAX_ELEMENTS, Dim, LayerRule, Out, Shape, fmt_shape, prod
from .archive import ModelContext, SubModel, infer_model_node
from .binding import layer_inputs, merge_inputs, port_index
from .budget import DEFAULT_MAX_PARAMS, memory_problems


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

    def infer(changed: Mapping[str, Shape]) -> Out | None:
        try:
            return rule.infer(dict(changed) if isinstance(in_shape, dict) else changed[""], config)
        except RuleError:
            return None

    def at(slots: Sequence[str], axis: int, size: Dim) -> Mapping[str, Shape]:
        return {**shapes, **{s: (*shapes[s][:axis], size, *shapes[s][axis + 1 :]) for s in slots}}

    found: list[Any] = [tuple((slot, len(shape)) for slot, shape in shapes.items())]
    for slot, shape in shapes.items():
        for axis, size in enumerate(shape):
            if axis == 0 or size is None:
                continue
            bigger = infer(at([slot], axis, size + 1))
            unknown = infer(at([slot], axis, None))
            if unknown is None:  # slots that must agree on this axis (attention's key and value) move together
                tied = [s for s, other in shapes.items() if len(other) > axis and other[axis] == size]
                unknown = infer(at(tied, axis, None)) if len(tied) > 1 else None
            if (bigger is not None and bigger.params != params) or unknown is None:
                found.append((slot, size))
    return tuple(found)


def _fmt_dims(dims: Sequence[Any]) -> str:
    """What a layer was built for: ``an input of rank 2, the input's size 8``."""
    ranks, *sizes = dims
    text = ", ".join(f"{slot or 'an input'} of rank {rank}" for slot, rank in ranks)
    return text + "".join(f", {slot or 'the input'}'s size {size}" for slot, size in sizes)


def _fmt_input(shape: Any) -> str:
    if isinstance(shape, dict):
        return ", ".join(f"{slot} {fmt_shape(s)}" for slot, s in shape.items())
    return fmt_shape(shape)


@dataclass(frozen=True)
class ModelCall:
    """A resolved ``model`` node.

    Attributes:
        sub: what is known of the sub-model statically.
        output: the sub-model output this node gives.
        inputs: sub-model input name -> the node id that feeds it.
        context: the resolution context (paths, budgets) it was found in.
    """

    sub: SubModel
    output: str
    inputs: dict[str, str]
    context: ModelContext


@dataclass
class Shapes:
    """What the shapes stage found: the typed record later stages read.

    Attributes:
        info: static shape and parameter counts per node, in topological order.
        extras: a node's further outputs (an RNN's states), addressed ``id.1``, ``id.2``...
        models: the resolved ``model`` nodes.
    """

    info: dict[str, NodeInfo] = field(default_factory=dict)
    extras: dict[str, tuple[Shape, ...]] = field(default_factory=dict)
    models: dict[str, ModelCall] = field(default_factory=dict)

    def ports(self, node: str) -> int:
        """How many outputs a node has."""
        return 1 + len(self.extras.get(node, ()))

    def of(self, source: str) -> Shape:
        """The shape of a reference: a node id, or ``id.N`` for output N of a node (see ``port_index``)."""
        node, index = port_index(source)
        return (self.info[node].shape, *self.extras.get(node, ()))[index or 0]

    def port_problem(self, ref: Ref) -> Problem | None:
        """A reference to an output its node does not have."""
        node, index = port_index(ref.source)
        n = self.ports(node)
        if index is not None and index < n:
            return None
        what = "input" if self.info[node].kind == "input" else "node"
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


Handled = tuple[NodeInfo, Out] | None  # None: the handler reported its own problem


class _ShapeWalk:
    """One pass of the shapes stage over a graph: ``HANDLERS`` maps each node kind to its handler.

    A handler returns the node's ``NodeInfo`` and its rule's ``Out``, raises
    RuleError (turned into a problem at the node's path), or reports its own
    problem and returns None.
    """

    def __init__(self, g: nx.DiGraph, file: str | None, models: ModelContext | None, into: Shapes) -> None:
        self.g = g
        self.file = file
        self.models = models
        self.shapes = into
        self.problems: list[Problem] = []
        self.first_calls: dict[str, tuple[int, int, str, Any, tuple[Any, ...]]] = {}
        self.calls: dict[str, int] = {}

    def of(self, ref: Ref) -> Shape:
        return self.shapes.of(ref.source)

    def visit(self, nid: str) -> None:
        attrs = self.g.nodes[nid]
        kind, path = attrs["kind"], attrs["path"]
        if attrs.get("broken") or (
            kind == "shared" and BROKEN in self.g.graph["shared"].get(attrs["spec"]["shared"], {BROKEN: True})
        ):
            return  # its own definition is wrong and already reported: no shape to give it
        refs: Sequence[Ref] = attrs.get("refs", ())
        if any(r.source.partition(".")[0] not in self.shapes.info for r in refs):
            return  # an upstream node failed; its problem is already reported
        bad_ports = [p for p in map(self.shapes.port_problem, refs) if p]
        if bad_ports:
            self.problems.extend(bad_ports)
            return
        try:
            found = self.HANDLERS[kind](self, nid, attrs["spec"], refs)
        except RuleError as exc:
            self.problems.append(self._rule_problem(exc, nid, attrs))
            if isinstance(exc, BroadcastError):  # checked on with a likely shape: every bad merge is reported
                self.shapes.info[nid] = NodeInfo(kind, attrs["spec"]["merge"], exc.fallback)
            return
        if found is None:
            return
        node_info, out = found
        big = _size_problem(nid, path, kind, [out.shape, *out.extra])
        if big:
            self.problems.append(big)
            return
        self.shapes.info[nid] = node_info
        if out.extra:
            self.shapes.extras[nid] = out.extra

    def _input(self, nid: str, spec: Mapping[str, Any], refs: Sequence[Ref]) -> Handled:
        shape: Shape = (None, *spec["shape"])
        return NodeInfo("input", spec.get("dtype", "float32"), shape), Out(shape)

    def _layer(self, nid: str, spec: Mapping[str, Any], refs: Sequence[Ref]) -> Handled:
        rule = LAYERS[spec["layer"]]
        out = rule.infer(layer_inputs(rule, refs, self.of), rule.resolve(spec.get("config", {})))
        out = _freeze(out, spec.get("trainable", True))
        return NodeInfo("layer", rule.name, out.shape, out.trainable, out.non_trainable), out

    def _merge(self, nid: str, spec: Mapping[str, Any], refs: Sequence[Ref]) -> Handled:
        rule = MERGES[spec["merge"]]
        sources = merge_inputs(rule, refs, lambda r: (r.source, self.of(r)))
        out = rule.infer(sources, rule.resolve(spec.get("config", {})))
        return NodeInfo("merge", rule.name, out.shape, out.trainable, out.non_trainable), out

    def _model(self, nid: str, spec: Mapping[str, Any], refs: Sequence[Ref]) -> Handled:
        ctx = self.models or ModelContext(Path(self.file).parent if self.file else Path.cwd())
        sub, chosen, mapping = infer_model_node(spec, refs, {r.source: self.of(r) for r in refs}, ctx)
        self.shapes.models[nid] = ModelCall(sub, chosen, mapping, ctx)
        out = _freeze(Out(sub.outputs[chosen], sub.trainable, sub.non_trainable), spec.get("trainable", True))
        return NodeInfo("model", sub.path.name, out.shape, out.trainable, out.non_trainable), out

    def _shared(self, nid: str, spec: Mapping[str, Any], refs: Sequence[Ref]) -> Handled:
        sid = spec["shared"]
        layer = self.g.graph["shared"][sid]
        rule = LAYERS[layer["layer"]]
        in_shape = layer_inputs(rule, refs, self.of)
        config = rule.resolve(layer.get("config", {}))
        out = rule.infer(in_shape, config)
        dims = _weight_dims(rule, in_shape, config, out.params)
        out = _freeze(out, layer.get("trainable", True))
        self.calls[sid] = self.calls.get(sid, 0) + 1
        first = self.first_calls.setdefault(sid, (out.trainable, out.non_trainable, nid, in_shape, dims))
        if first[2] == nid:
            return NodeInfo("shared", rule.name, out.shape, out.trainable, out.non_trainable, sid, 1), out
        if (out.trainable, out.non_trainable) != first[:2] or dims != first[4]:
            self.problems.append(
                Problem(
                    (*self.g.nodes[nid]["path"], "inputs"),
                    f"node `{nid}` calls shared layer `{sid}` on an input its weights do not fit. "
                    f"Received: {_fmt_input(in_shape)} here, "
                    f"{_fmt_input(first[3])} at its first call `{first[2]}`",
                    f"Keras builds `{sid}` at its first call for {_fmt_dims(first[4])}; "
                    "feed every call the same there, or use separate layers",
                    "shape",
                )
            )
            return None
        return NodeInfo("shared", rule.name, out.shape, 0, 0, sid, self.calls[sid]), out

    HANDLERS: ClassVar[Mapping[str, Callable[[_ShapeWalk, str, Mapping[str, Any], Sequence[Ref]], Handled]]] = {
        "input": _input,
        "layer": _layer,
        "shared": _shared,
        "merge": _merge,
        "model": _model,
    }

    def _rule_problem(self, exc: RuleError, nid: str, attrs: Mapping[str, Any]) -> Problem:
        """A rule's complaint at the node's path: its config key, its input slot, or its inputs."""
        spec, kind, path = attrs["spec"], attrs["kind"], attrs["path"]
        if kind == "model":
            where = (*path, exc.key) if exc.key else (*path, "inputs")
            return Problem(where, f"node `{nid}` (model): {exc.message}", exc.hint, "model")
        config_base: tuple[PathPart, ...] = path
        if kind == "merge":
            subject = f"merge `{nid}` ({MERGES[spec['merge']].name})"
        elif kind == "layer":
            subject = f"node `{nid}` ({LAYERS[spec['layer']].name}):"
        else:
            sid = spec["shared"]
            subject = f"node `{nid}` (call of shared `{sid}`, {LAYERS[self.g.graph['shared'][sid]['layer']].name}):"
            config_base = self.g.graph["shared_origins"].get(sid, ("shared", sid))
        return _rule_problem(exc, path, subject, config_base)

    def finish(self, max_params: int, optimizer: str) -> None:
        """The checks of the whole model: its outputs' ports, the parameter and memory budgets."""
        for ref in self.g.graph["outputs"].values():
            if ref.source.partition(".")[0] in self.shapes.info:
                bad = self.shapes.port_problem(ref)
                if bad:
                    self.problems.append(bad)
        if self.problems:
            return
        totals = total_params(self.shapes.info)
        if totals.params > max_params:
            self.problems.append(
                Problem(
                    (),
                    f"the model has {totals.params:,} parameters, over the budget of {max_params:,}",
                    "shrink the layers, or raise the budget with --max-params",
                    "budget",
                )
            )
        elif self.models is None or len(self.models.stack) <= 1:  # a nested spec's weights count in the outermost one's
            max_memory = self.models.max_memory if self.models else None
            self.problems.extend(memory_problems(self.shapes, optimizer, max_memory))


def infer_shapes(
    g: nx.DiGraph,
    file: str | None = None,
    max_params: int = DEFAULT_MAX_PARAMS,
    models: ModelContext | None = None,
    into: Shapes | None = None,
    optimizer: str = "adam",
) -> Shapes:
    """Compute every node's output shape and parameter counts.

    Args:
        g: a graph from ``build_graph``.
        file: the spec's file name for messages.
        max_params: refuse models with more parameters than this.
        models: how to resolve ``model`` nodes (paths, allowed folders,
            the nested check); the resolved sub-models are in ``Shapes.models``.
        into: a record to fill; when a ShapeError is raised it still holds
            every node that could be given a shape (for later checks).
        optimizer: the spec's optimizer, whose state the memory estimate counts.

    Returns:
        The shapes record, ``info`` in topological order.

    Raises:
        ShapeError: with every shape mismatch, out-of-range config and
            shared-layer misuse found, or a model over ``max_params`` or the
            memory budget.
    """
    walk = _ShapeWalk(g, file, models, Shapes() if into is None else into)
    for nid in topo_order(g):
        walk.visit(nid)
    walk.finish(max_params, optimizer)
    if walk.problems:
        raise ShapeError(walk.problems, file=file)
    return walk.shapes


def total_params(info: Mapping[str, NodeInfo]) -> Totals:
    """Trainable and non-trainable parameter totals (shared weights once)."""
    return Totals(
        sum(i.trainable for i in info.values()),
        sum(i.non_trainable for i in info.values()),
    )
