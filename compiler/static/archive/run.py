"""Running an archive's graph through fusec's own layer and merge rules (``LAYERS``, ``MERGES``).

From the declared input shapes, every call is evaluated by the rule for its
layer: the output shapes and parameter counts are computed, never read from
the archive. A layer's ``build_config`` (which Keras builds it from) must
agree with the call fusec computed; a call argument outside fusec's
vocabulary is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ...errors import RuleError
from ...vocab.layers import LAYERS
from ...vocab.merges import MERGES, MergeRule
from ...vocab.rule import LayerRule, Out, Shape, fmt_shape
from .base import MAX_WORK, RESAVE, fits, show
from .classes import PASS_THROUGH
from .graph import Call, Ctx, Graph, Layer, Ref

#: One call's result: output shapes, trainable and non-trainable parameter counts.
Result = tuple[list[Shape], int, int]
ShapeOf = Callable[[Ref], Shape]

#: Call keyword arguments that change nothing fusec computes, with the values allowed. (The padding
#: masks Keras passes as ``mask``, ``query_mask``... were checked and dropped with their ops: ``masks``.)
_CALL_KWARGS: dict[str, Callable[[Any], bool]] = {
    "training": lambda v: v is None or isinstance(v, bool),
    "initial_state": lambda v: v is None,
    "use_causal_mask": lambda v: isinstance(v, bool),
    "return_attention_scores": lambda v: v is False,
    "attention_mask": lambda v: v is None,
}


def _jsonish(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonish(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonish(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonish(v) for v in value]
    return value


def _check_build(layer: Layer, expected: dict[str, Any], ctx: Ctx) -> None:
    """Keras builds a layer from its build_config before calling it: it must be the call fusec computed.

    A layer called on several arguments is built from all of them
    (``shapes_dict``) or, when its ``build`` takes one, from the first.
    """
    want = _jsonish(expected)
    forms = [want]
    if "shapes_dict" in want:
        forms.append({"input_shape": next(iter(want["shapes_dict"].values()))})
    for build in (layer.build, *layer.inner_builds):
        if not build:
            continue
        if layer.inner_builds and build is not layer.build:
            forms = [{"input_shape": want.get("input_shape")}]
        if build not in forms:
            got = build.get("input_shape", build.get("shapes_dict")) if isinstance(build, dict) else build
            shown = want.get("input_shape", want.get("shapes_dict"))
            raise ctx.fail(
                f"{layer.what} is built for {show(got)} by its build_config but called on {show(shown)}: "
                "fusec computes shapes from the layers, and an archive whose build_config disagrees with them "
                "is inconsistent"
            )


def _kwargs_ok(call: Call, allowed_tensors: Sequence[str], ctx: Ctx) -> None:
    """Every keyword of a call is a tensor slot, or a setting with a value that changes nothing fusec computes."""
    for k, v in call.kwargs.items():
        if k in allowed_tensors:
            continue
        check = _CALL_KWARGS.get(k)
        if check is None or not check(v):
            raise ctx.fail(
                f"{call.layer.what} is called with `{k}`={show(_jsonish(_plain(v)))}, outside fusec's vocabulary"
            )


def _plain(value: Any) -> Any:
    if isinstance(value, Ref):
        return f"<tensor {value.layer}>"
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _tensor_list(value: Any, call: Call, ctx: Ctx) -> list[Ref]:
    """A call argument that must be a list of tensors."""
    if isinstance(value, list) and value and all(isinstance(v, Ref) for v in value):
        return value
    raise ctx.fail(f"{call.layer.what} is called on something other than a list of tensors")


def _one_tensor(value: Any, call: Call, ctx: Ctx) -> Ref:
    """A call argument that must be one tensor."""
    if isinstance(value, Ref):
        return value
    raise ctx.fail(f"{call.layer.what} is called on something other than one tensor")


# --- one call --------------------------------------------------------------------------------


def _apply(call: Call, shape_of: ShapeOf, ctx: Ctx, depth: int, built: bool) -> Result:
    """One call through fusec's rule for its layer: (output shapes, trainable, non-trainable).

    ``built``: this run is the one Keras builds the layers in (the model on
    its declared inputs), so a layer's first call must match its build_config.
    """
    layer = call.layer
    if layer.model is not None:
        return _call_model(call, shape_of, ctx, depth)
    if layer.op is not None or layer.scale is not None:
        return _op_call(call, shape_of, ctx)
    if layer.merge is not None:
        handle: Callable[[Call, ShapeOf, Ctx], tuple[Result, dict[str, Any]]] = _merge_call
    elif layer.rule is None and layer.cls in PASS_THROUGH:
        handle = _pass_through_call
    elif layer.rule is None:
        raise ctx.fail(f"{layer.what} is outside fusec's vocabulary")
    else:
        handle = _layer_call
    result, expected = handle(call, shape_of, ctx)
    if call.index == 0 and built:
        _check_build(layer, expected, ctx)
    return result


def _merge_call(call: Call, shape_of: ShapeOf, ctx: Ctx) -> tuple[Result, dict[str, Any]]:
    """A merge: its sources by slot (or one list), its arity, then its rule; and the build Keras expects."""
    layer = call.layer
    merge = layer.merge
    assert merge is not None
    sources, expected = (
        _merge_list(call, shape_of, ctx) if merge.slots is None else _merge_slots(merge, call, shape_of, ctx)
    )
    lo, hi = merge.arity
    n = len(sources) if merge.slots is None else len(next(v for k, v in sources.items() if merge.slots[k] == "list"))
    if n < lo or (hi is not None and n > hi):
        raise ctx.fail(f"{layer.what} merges {n} inputs, outside what fusec's `{merge.name}` takes")
    merged = merge.infer(sources, merge.resolve(layer.config))
    return ([merged.shape, *merged.extra], merged.trainable, merged.non_trainable), expected


def _merge_list(call: Call, shape_of: ShapeOf, ctx: Ctx) -> tuple[Any, dict[str, Any]]:
    """A merge called on one list of tensors: its sources, and its build from their shapes."""
    _kwargs_ok(call, (), ctx)
    if len(call.args) != 1:
        raise ctx.fail(f"{call.layer.what} is called on {len(call.args)} arguments; a merge takes one list")
    refs = _tensor_list(call.args[0], call, ctx)
    sources = [(r.layer, shape_of(r)) for r in refs]
    return sources, {"input_shape": [s for _, s in sources]}


def _merge_slots(merge: MergeRule, call: Call, shape_of: ShapeOf, ctx: Ctx) -> tuple[Any, dict[str, Any]]:
    """A merge with named slots, called by position or keyword: its sources per slot, and its build."""
    assert merge.slots is not None
    slots = list(merge.slots)
    _kwargs_ok(call, slots, ctx)
    given = dict(zip(slots, call.args, strict=False))
    given.update({k: v for k, v in call.kwargs.items() if k in slots})
    if len(call.args) > len(slots) or set(given) != set(slots):
        raise ctx.fail(f"{call.layer.what} is not called on its {' and '.join(slots)}")
    sources = {}
    for slot, kind in merge.slots.items():
        refs = _tensor_list(given[slot], call, ctx) if kind == "list" else [_one_tensor(given[slot], call, ctx)]
        sources[slot] = [(r.layer, shape_of(r)) for r in refs]
    expected = {
        "shapes_dict": {
            f"{slot}_shape": [s for _, s in sources[slot]] if kind == "list" else sources[slot][0][1]
            for slot, kind in merge.slots.items()
        }
    }
    return sources, expected


def _pass_through_call(call: Call, shape_of: ShapeOf, ctx: Ctx) -> tuple[Result, dict[str, Any]]:
    """A layer fusec writes besides its vocabulary (``Identity``): one tensor, unchanged."""
    _kwargs_ok(call, (), ctx)
    if len(call.args) != 1:
        raise ctx.fail(f"{call.layer.what} is called on {len(call.args)} arguments; it takes one tensor")
    same = shape_of(_one_tensor(call.args[0], call, ctx))
    return ([same], 0, 0), {"input_shape": same}


def _layer_call(call: Call, shape_of: ShapeOf, ctx: Ctx) -> tuple[Result, dict[str, Any]]:
    """A layer of fusec's vocabulary: its input (one tensor, or tensors by slot), then its rule."""
    layer = call.layer
    rule = layer.rule
    assert rule is not None
    if rule.slots:
        x, expected = _slot_inputs(rule, call, shape_of, ctx)
        if layer.axes is not None and layer.axes != list(range(1, len(x["query"]) - 1)):
            raise ctx.fail(f"{layer.what} has attention_axes {show(layer.axes)}, outside fusec's vocabulary")
    else:
        _kwargs_ok(call, (), ctx)
        if len(call.args) != 1:
            raise ctx.fail(f"{layer.what} is called on {len(call.args)} arguments; it takes one tensor")
        x = shape_of(_one_tensor(call.args[0], call, ctx))
        expected = {"input_shape": x}
    out: Out = rule.infer(x, rule.resolve(layer.config))
    return ([out.shape, *out.extra], out.trainable, out.non_trainable), expected


def _slot_inputs(rule: LayerRule, call: Call, shape_of: ShapeOf, ctx: Ctx) -> tuple[Any, dict[str, Any]]:
    """A layer that takes named inputs (attention's query, value, key): called on a list, or by keyword."""
    layer = call.layer
    slots = list(rule.slots)
    _kwargs_ok(call, slots, ctx)
    if rule.call_style == "list":
        if len(call.args) != 1:
            raise ctx.fail(f"{layer.what} is not called on one list of tensors")
        refs = _tensor_list(call.args[0], call, ctx)
        if len(refs) > len(slots):
            raise ctx.fail(f"{layer.what} is called on {len(refs)} tensors; it takes at most {len(slots)}")
        named = dict(zip(slots, refs, strict=False))
    else:
        named = dict(zip(slots, call.args, strict=False))
        for k, v in call.kwargs.items():
            if k in slots and v is not None:
                named[k] = v
        if len(call.args) > len(slots):
            raise ctx.fail(f"{layer.what} is called on {len(call.args)} tensors; it takes at most {len(slots)}")
    missing = [s for s in rule.required_slots if s not in named]
    if missing:
        raise ctx.fail(f"{layer.what} is called without its `{missing[0]}`")
    x: Any = {s: shape_of(_one_tensor(r, call, ctx)) for s, r in named.items()}
    if rule.call_style == "list":
        return x, {"input_shape": [x[s] for s in slots if s in x]}
    return x, {"shapes_dict": {f"{s}_shape": x[s] for s in slots if s in x}}


def _call_model(call: Call, shape_of: ShapeOf, ctx: Ctx, depth: int) -> Result:
    """A nested model called on tensors: its graph runs again on their shapes; its weights are its own build's."""
    graph = call.layer.model
    assert graph is not None
    names = [n for n, _ in graph.inputs]
    refs = _model_args(call, names, ctx)
    declared = [graph.layers[r.layer].shape for _, r in graph.inputs]
    given = [shape_of(r) for r in refs]
    for n, want, got in zip(names, declared, given, strict=True):
        assert want is not None
        if not fits(want, got):
            raise ctx.fail(
                f"{call.layer.what} input `{n[:64]}` takes {fmt_shape(want)} but is called on {fmt_shape(got)}"
            )
    _, counts = run_graph(graph, [s for s in declared if s is not None], ctx, depth + 1, built=True)
    outs, again = run_graph(graph, given, ctx, depth + 1, built=False)
    if sum(t + n for t, n in again.values()) != sum(t + n for t, n in counts.values()):
        raise ctx.fail(f"{call.layer.what} is called on inputs its weights do not fit")
    if graph.output_kind == "dict":  # Keras flattens a dict of outputs in sorted key order
        keyed = dict(zip([n for n, _ in graph.outputs], outs, strict=True))
        outs = [keyed[k] for k in sorted(keyed)]
    trainable = sum(t for t, _ in counts.values())
    non_trainable = sum(n for _, n in counts.values())
    return outs, trainable, non_trainable


def _model_args(call: Call, names: list[str], ctx: Ctx) -> list[Ref]:
    """The tensors a nested model is called on, in its input order: one, a list, or a dict by input name."""
    _kwargs_ok(call, (), ctx)
    if len(call.args) != 1:
        raise ctx.fail(f"{call.layer.what} is called on {len(call.args)} arguments; a model takes one")
    arg = call.args[0]
    if isinstance(arg, dict):
        if set(arg) != set(names):
            raise ctx.fail(f"{call.layer.what} is called on inputs {sorted(arg)}; it takes {names}")
        refs = [_one_tensor(arg[n], call, ctx) for n in names]
    elif isinstance(arg, list):
        refs = [_one_tensor(a, call, ctx) for a in arg]
    else:
        refs = [_one_tensor(arg, call, ctx)]
    if len(refs) != len(names):
        raise ctx.fail(f"{call.layer.what} is called on {len(refs)} tensors; it takes {len(names)}")
    return refs


def op_forms(call: Call, ctx: Ctx) -> list[tuple[str, str, dict[str, Any], list[Any]]]:
    """What a Keras op call (or a CustomScaleLayer call) is in fusec's terms, step by step.

    Returns ``(kind, name, config, arguments)`` per step, ``kind`` being
    ``merge`` or ``layer``; an argument is a ``Ref`` or ``None`` (the previous
    step's result). ``x + y`` is the merge ``add``; ``x + 3`` and ``3 - x`` are
    a ``ScalarOp`` (``reverse`` when the number comes first).

    Raises:
        RuleError: an operation fusec has no form for.
    """
    layer = call.layer
    _kwargs_ok(call, (), ctx)
    if layer.scale is not None:
        if len(call.args) != 1:
            raise ctx.fail(f"{layer.what} is called on {len(call.args)} arguments; it takes a list of two tensors")
        pair = _tensor_list(call.args[0], call, ctx)
        if len(pair) != 2:
            raise ctx.fail(f"{layer.what} is called on {len(pair)} tensors; it takes two")
        scaled = {"op": "multiply", "value": layer.scale, "reverse": False}
        return [("layer", "ScalarOp", scaled, [pair[1]]), ("merge", "add", {}, [pair[0], None])]
    op = layer.op
    assert op is not None
    args = list(call.args)
    if len(args) != 2:
        raise ctx.fail(f"{layer.what} is called on {len(args)} arguments; fusec reads it on two")
    tensors = [isinstance(a, Ref) for a in args]
    if all(tensors):
        if op not in MERGES or MERGES[op].arity[0] > 2:
            raise ctx.fail(f"{layer.what} combines two tensors with `{op}`, which fusec has no merge for")
        return [("merge", op, {}, args)]
    number = args[1] if tensors[0] else args[0]
    if not any(tensors) or not _is_number(number) or "ScalarOp" not in LAYERS:
        raise ctx.fail(f"{layer.what} is called on {show(_jsonish(_plain(args)))}, outside fusec's vocabulary")
    config = {"op": op, "value": number, "reverse": not tensors[0]}
    return [("layer", "ScalarOp", config, [args[0] if tensors[0] else args[1]])]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _op_call(call: Call, shape_of: ShapeOf, ctx: Ctx) -> Result:
    """A Keras op call (or CustomScaleLayer call) through the rules of its steps (``op_forms``)."""
    last: Shape | None = None
    for kind, name, config, args in op_forms(call, ctx):
        shapes = [shape_of(a) if a is not None else last for a in args]
        if kind == "merge":
            merge = MERGES[name]
            sources = [(a.layer if a is not None else "scaled", s) for a, s in zip(args, shapes, strict=True)]
            last = merge.infer(sources, merge.resolve(config)).shape
        else:
            rule = LAYERS[name]
            last = rule.infer(shapes[0], rule.resolve(config)).shape
    assert last is not None
    return [last], 0, 0


# --- the whole graph -------------------------------------------------------------------------


def run_graph(
    graph: Graph, inputs: Sequence[Shape], ctx: Ctx, depth: int = 0, built: bool = True
) -> tuple[list[Shape], dict[str, tuple[int, int]]]:
    """Output shapes (in the graph's output order) and per-layer parameter counts, for given input shapes.

    ``built``: the inputs are the model's declared ones, the run in which
    Keras builds its layers (so build_configs are checked against it).

    Raises:
        RuleError: naming the archive and the layer at fault.
    """
    memo_key = (id(graph), tuple(inputs), built)
    if memo_key in ctx.memo:
        return ctx.memo[memo_key]
    outputs: dict[tuple[str, int], list[Shape]] = {}
    counts: dict[str, tuple[int, int]] = {}
    given = {ref.layer: shape for (_, ref), shape in zip(graph.inputs, inputs, strict=True)}

    def shape_of(ref: Ref) -> Shape:
        outs = outputs[(ref.layer, ref.node)]
        if ref.tensor >= len(outs):
            raise ctx.fail(f"{graph.layers[ref.layer].what} has no output {ref.tensor}")
        return outs[ref.tensor]

    for call in graph.order:
        ctx.work += 1
        if ctx.work > MAX_WORK:
            raise ctx.fail(f"takes more than {MAX_WORK:,} layer calls to evaluate", "use a smaller sub-model")
        layer = call.layer
        if layer.shape is not None:
            outputs[(layer.name, 0)] = [given.get(layer.name, layer.shape)]
            continue
        outs, trainable, non_trainable = _counted(layer, call, shape_of, ctx, depth, built)
        outputs[(layer.name, call.index)] = outs
        first = counts.get(layer.name)
        if first is None:
            counts[layer.name] = (trainable, non_trainable)
        elif first != (trainable, non_trainable):
            raise ctx.fail(f"{layer.what} is called again on an input its weights do not fit")
    result = [shape_of(ref) for _, ref in graph.outputs], counts
    ctx.memo[memo_key] = result
    return result


def _counted(layer: Layer, call: Call, shape_of: ShapeOf, ctx: Ctx, depth: int, built: bool) -> Result:
    """One call's result, a frozen layer's weights counted non-trainable, a rule's refusal naming the layer."""
    try:
        outs, trainable, non_trainable = _apply(call, shape_of, ctx, depth, built)
    except RuleError as err:
        if err.message.startswith(f"`{ctx.label}`"):
            raise
        raise ctx.fail(f"{layer.what}: {err.message}", err.hint or RESAVE) from None
    if layer.frozen:
        return outs, 0, trainable + non_trainable
    return outs, trainable, non_trainable
