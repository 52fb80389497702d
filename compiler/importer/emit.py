"""An archive's graph (``static.archive.graph``) written as a fusec spec document.

One node per Keras layer call; a layer called more than once becomes a
``shared`` layer; a nested Functional or Sequential model becomes a block
(its definition, and one instance per call: ``shared_weights`` when it is
called more than once); Keras ops become merges or ``ScalarOp`` nodes
(``static.archive.run.op_forms``). Alongside, where each layer's weights sit
in the archive's weights file and under which key the spec's weights file
holds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import RuleError
from ..static.archive.graph import Call, Ctx, Graph, Layer, Ref
from ..static.archive.inspect import weight_groups
from ..static.archive.run import op_forms
from .names import Ids


@dataclass
class Placed:
    """One layer with weights: its group in the archive's weights file, its key in the spec's, its count."""

    group: str
    key: str
    layer: str  # the Keras layer's path, ``outer/inner``
    params: int


@dataclass
class Scope:
    """One graph being written: the spec's top level, or a block definition."""

    graph: Graph
    ids: Ids
    nodes: dict[str, Any] = field(default_factory=dict)
    tensors: dict[tuple[str, int], list[str]] = field(default_factory=dict)
    shared: dict[str, Any] | None = None  # only the top level has shared layers


@dataclass
class Emitter:
    """Writes a graph and its nested graphs; collects blocks, weight places and Keras-name -> id."""

    ctx: Ctx
    counts: dict[int, dict[str, tuple[int, int]]]  # graph id -> per-layer counts
    blocks: dict[str, Any] = field(default_factory=dict)
    block_ids: Ids = field(default_factory=Ids)
    block_of: dict[int, tuple[str, list[str], bool]] = field(default_factory=dict)  # graph -> id, outputs, shared
    placed: list[Placed] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # Keras layer path -> node or shared id
    sids: dict[int, str] = field(default_factory=dict)  # a shared layer -> its shared id

    def scope(self, scope: Scope, prefix: str, group: str, where: str, frozen: bool) -> None:
        """Write every call of ``scope.graph`` into ``scope.nodes`` (``prefix``: the expanded id's, for keys)."""
        groups = weight_groups(scope.graph)
        calls = {name: len(layer.calls) for name, layer in scope.graph.layers.items()}
        for call in scope.graph.order:
            layer = call.layer
            if layer.shape is not None:
                continue
            if layer.model is not None:
                self._instance(scope, call, prefix, f"{group}{groups[layer.name]}/layers/", where, frozen)
                continue
            key = self._call(scope, call, calls[layer.name] > 1 and layer.rule is not None, frozen or layer.frozen)
            total = sum(self.counts[id(scope.graph)].get(layer.name, (0, 0)))
            path = f"{where}{layer.name}"
            if call.index == 0:
                self.names[path] = prefix + key
                if total:
                    self.placed.append(Placed(f"{group}{groups[layer.name]}", prefix + key, path, total))

    def _call(self, scope: Scope, call: Call, shared: bool, frozen: bool) -> str:
        """One layer call as one node (two for a CustomScaleLayer); returns its node id (a shared layer's id)."""
        layer = call.layer
        if layer.op is not None or layer.scale is not None:
            return self._op(scope, call)
        if layer.rule is None and layer.merge is None:  # a pass-through (Identity): its input, unchanged
            (arg,) = call.args
            scope.tensors[(layer.name, call.index)] = [self._ref(scope, arg)]
            return scope.tensors[(layer.name, call.index)][0]
        spec = _layer_spec(layer, frozen)
        inputs = self._inputs(scope, call)
        if shared:
            if scope.shared is None:
                raise self.ctx.fail(f"{layer.what} is called more than once inside a nested model", _FLAT)
            if call.index == 0:
                self.sids[id(layer)] = scope.ids.take(layer.name)
                scope.shared[self.sids[id(layer)]] = spec
            sid = self.sids[id(layer)]
            node = scope.ids.take(f"{sid}_call{call.index + 1}")
            scope.nodes[node] = {"shared": sid, "inputs": inputs}
            scope.tensors[(layer.name, call.index)] = [node]
            return sid
        node = scope.ids.take(layer.name)
        scope.nodes[node] = {**spec, "inputs": inputs}
        scope.tensors[(layer.name, call.index)] = [node]
        return node

    def _op(self, scope: Scope, call: Call) -> str:
        """A Keras op (or CustomScaleLayer) call as its merge or ScalarOp node(s)."""
        steps = op_forms(call, self.ctx)
        last = ""
        for i, (kind, name, config, args) in enumerate(steps):
            refs = [self._ref(scope, a) if a is not None else last for a in args]
            suffix = "" if i == len(steps) - 1 else f"_{name.lower()}"
            node = scope.ids.take(call.layer.name + suffix)
            if kind == "merge":
                scope.nodes[node] = {"merge": name, **({"config": config} if config else {}), "inputs": refs}
            else:
                scope.nodes[node] = {"layer": name, "config": config, "inputs": refs[0]}
            last = node
        scope.tensors[(call.layer.name, call.index)] = [last]
        return last

    def _instance(self, scope: Scope, call: Call, prefix: str, group: str, where: str, frozen: bool) -> None:
        """A nested model call: its block (written once) and an instance node."""
        layer = call.layer
        graph = layer.model
        assert graph is not None
        if id(graph) not in self.block_of:
            self._block(graph, layer, prefix, group, where, frozen or layer.frozen)
        bid, outs, is_shared = self.block_of[id(graph)]
        node = scope.ids.take(layer.name if len(layer.calls) == 1 else f"{layer.name}_call{call.index + 1}")
        names = [n for n, _ in graph.inputs]
        args = call.args[0] if call.args else None
        if isinstance(args, dict):
            refs = {self._block_input(n): self._ref(scope, args[n]) for n in names}
        else:
            given = args if isinstance(args, list) else [args]
            refs = {self._block_input(n): self._ref(scope, a) for n, a in zip(names, given, strict=True)}
        inputs: Any = next(iter(refs.values())) if len(refs) == 1 else refs
        scope.nodes[node] = {"block": bid, "inputs": inputs}
        order = sorted(outs) if graph.output_kind == "dict" else outs
        scope.tensors[(layer.name, call.index)] = [node if len(outs) == 1 else f"{node}.{o}" for o in order]
        if call.index == 0 and not is_shared:
            self._block_keys(bid, node, prefix)
        elif call.index == 0:
            self._block_keys(bid, bid, prefix)

    def _block_keys(self, bid: str, expanded: str, prefix: str) -> None:
        """Re-key the weight places a block definition noted (``{bid}::``) to the expanded ids."""
        mark = f"{bid}::"
        for placed in self.placed:
            if placed.key.startswith(mark):
                placed.key = f"{prefix}{expanded}__{placed.key[len(mark) :]}"
        for path, key in self.names.items():
            if key.startswith(mark):
                self.names[path] = f"{prefix}{expanded}__{key[len(mark) :]}"

    def _block(self, graph: Graph, layer: Layer, prefix: str, group: str, where: str, frozen: bool) -> None:
        """A nested model's block definition."""
        bid = self.block_ids.take(graph.name)
        inner = Scope(graph, Ids())
        for n, _ in graph.inputs:
            inner.ids.take(self._block_input(n))
        for n, ref in graph.inputs:
            inner.tensors[(ref.layer, 0)] = [self._block_input(n)]
        self.scope(inner, f"{bid}::", group, f"{where}{layer.name}/", frozen)
        out_ids = Ids()
        outputs = {out_ids.take(n): self._ref(inner, ref) for n, ref in graph.outputs}
        block: dict[str, Any] = {"inputs": [self._block_input(n) for n, _ in graph.inputs], "nodes": inner.nodes}
        block["outputs"] = outputs
        is_shared = len(layer.calls) > 1
        if is_shared:
            block["shared_weights"] = True
        self.blocks[bid] = block
        self.block_of[id(graph)] = (bid, list(outputs), is_shared)

    @staticmethod
    def _block_input(name: str) -> str:
        return Ids().take(name, is_input=True)

    def _inputs(self, scope: Scope, call: Call) -> Any:
        """A call's input references: one id, a list (merges), or named slots."""
        layer = call.layer
        slots = layer.rule.slots if layer.rule is not None else (layer.merge.slots if layer.merge else None)
        if slots:
            names = list(slots)
            if len(call.args) == 1 and isinstance(call.args[0], list) and len(names) > 1:
                given = dict(zip(names, call.args[0], strict=False))
            else:
                given = dict(zip(names, call.args, strict=False))
            given.update({k: v for k, v in call.kwargs.items() if k in names and v is not None})
            return {k: self._ref(scope, v) for k, v in given.items()}
        (arg,) = call.args
        if isinstance(arg, list):
            return [self._ref(scope, a) for a in arg]
        return self._ref(scope, arg)

    def _ref(self, scope: Scope, value: Any) -> Any:
        """A tensor reference as the id (or ``id.port``) that yields it."""
        if isinstance(value, list):
            return [self._ref(scope, v) for v in value]
        if not isinstance(value, Ref):
            raise self.ctx.fail(f"a call reads {value!r} where fusec expects a tensor")
        outs = scope.tensors.get((value.layer, value.node))
        if outs is None or value.tensor >= len(outs):
            if outs is not None and len(outs) == 1 and value.tensor > 0:
                return f"{outs[0]}.{value.tensor}"
            raise self.ctx.fail(f"a call reads output {value.tensor} of layer `{value.layer[:64]}`, unknown")
        return outs[value.tensor]


_FLAT = "fusec's blocks hold no shared layers: save the model with the nested model's layers at the top level"


def _is_default(default: Any, value: Any) -> bool:
    """Whether a config value says what the default says: ``[1, 1]`` for ``1``, ``"linear"`` for no activation."""
    if value == default or (isinstance(default, tuple) and value == list(default)):
        return True
    if isinstance(default, int) and isinstance(value, list) and value and all(v == default for v in value):
        return not isinstance(default, bool)
    return default is None and value == "linear"


def _layer_spec(layer: Layer, frozen: bool) -> dict[str, Any]:
    """A layer's ``layer``/``merge`` entry: its class and its config without defaults."""
    if layer.merge is not None:
        rule: Any = layer.merge
        out: dict[str, Any] = {"merge": rule.name}
    else:
        rule = layer.rule
        out = {"layer": rule.name}
    index = rule.param_index
    config = {k: v for k, v in layer.config.items() if not (k in index and _is_default(index[k].default, v))}
    if config:
        out["config"] = config
    if frozen:
        out["trainable"] = False
    return out


def refusal(err: RuleError) -> str:
    """A rule refusal's message without the archive's label (the error names the file)."""
    text = err.message
    if text.startswith("`") and "`: " in text:
        return text.split("`: ", 1)[1]
    return text
