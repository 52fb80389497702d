"""``config.json``'s models and layers, read into the graph records (``graph``) fusec's rules can run.

A layer class outside fusec's vocabulary, a setting outside it
(``settings.fusec_config``) or a call saved in an older Keras format is
refused here, before anything is evaluated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...errors import RuleError
from ...vocab.layers import LAYERS
from ...vocab.merges import MERGES
from .base import MAX_NESTING, MAX_NODES, RESAVE, show
from .classes import APPLICATION_LAYERS, KERAS_MERGES, KERAS_OPS, MODEL_CLASSES, OPS_MODULE, PASS_THROUGH
from .graph import Call, Ctx, Graph, Layer, Ref, declared_shape, decode, named, top_ref, topological
from .masks import drop_masks, is_mask_op, read_mask_op
from .settings import INPUT_DTYPES, fusec_config, policy_ok

# --- one layer -------------------------------------------------------------------------------


def parse_layer(d: Any, ctx: Ctx, owner: str, depth: int, in_sequential: bool) -> Layer:
    """One entry of a model's ``layers``, as a ``Layer`` (its calls are read by the model).

    Raises:
        RuleError: not a layer config, no name, too many layers, or a class
            or setting outside fusec's vocabulary.
    """
    if not isinstance(d, dict) or not isinstance(d.get("class_name"), str):
        raise ctx.malformed(f"model `{owner[:64]}` lists a layer that is not a layer config")
    cls = d["class_name"]
    cfg = d.get("config")
    name = d.get("name") if not in_sequential else None
    if name is None and isinstance(cfg, dict):
        name = cfg.get("name")
    if not isinstance(name, str):
        raise ctx.fail(f"a `{cls}` layer of model `{owner}` has no name")
    what = f"layer `{name[:64]}` ({cls}) of model `{owner[:64]}`"
    _keras_name(cfg.get("name") if isinstance(cfg, dict) else name, ctx, what)
    ctx.layers += 1
    if ctx.layers > MAX_NODES:
        raise ctx.fail(f"holds more than {MAX_NODES:,} layers", "use a smaller sub-model")
    layer = Layer(name, cls, what, build=d.get("build_config"))
    layer.frozen = isinstance(cfg, dict) and cfg.get("trainable") is False
    for applies, read in _KINDS:
        if applies(cls, d):
            read(layer, d, cfg, ctx, depth)
            return layer
    raise ctx.fail(
        f"{what} is outside fusec's vocabulary", "only layers of fusec's vocabulary may appear in a sub-model"
    )


def parse_collecting(d: Any, ctx: Ctx, owner: str, depth: int, in_sequential: bool) -> Layer:
    """``parse_layer``, noting every refusal in ``ctx.collect`` (when a list) instead of raising at the first.

    A layer refused for several settings is read again without each setting
    named, so every one of them is noted; the layer then stands as a
    placeholder (no rule) in the graph.
    """
    if ctx.collect is None:
        return parse_layer(d, ctx, owner, depth, in_sequential)
    raw = d
    for _ in range(64):
        try:
            return parse_layer(raw, ctx, owner, depth, in_sequential)
        except RuleError as err:
            ctx.collect.append(err)
            ctx.layers -= 1
            key = _refused_key(err.message)
            cfg = raw.get("config") if isinstance(raw, dict) else None
            if key is None or not isinstance(cfg, dict) or key not in cfg:
                break
            raw = {**raw, "config": {k: v for k, v in cfg.items() if k != key}}
    name = _layer_name(d, in_sequential)
    cls = d.get("class_name") if isinstance(d, dict) else None
    ctx.layers += 1
    return Layer(name, str(cls), f"layer `{name[:64]}` ({cls}) of model `{owner[:64]}`")


def _refused_key(message: str) -> str | None:
    """The config key a refusal of ``fusec_config`` names (``has `key` ...``), if any."""
    import re

    found = re.search(r"has `([A-Za-z0-9_]+)[`.]", message)
    return found.group(1) if found else None


def _layer_name(d: Any, in_sequential: bool) -> str:
    """A layer config's name, or ``?``."""
    if not isinstance(d, dict):
        return "?"
    cfg = d.get("config")
    name = d.get("name") if not in_sequential else None
    if name is None and isinstance(cfg, dict):
        name = cfg.get("name")
    return name if isinstance(name, str) else "?"


def _keras_name(name: Any, ctx: Ctx, what: str) -> None:
    """A name Keras will accept when it rebuilds the object: a non-empty string without ``/``.

    Raises:
        RuleError: Keras's constructor would refuse it (at compile time, after the work).
    """
    if not isinstance(name, str) or not name or "/" in name:
        raise ctx.fail(
            f"{what} has the name {show(name)}, which Keras refuses (a name is a non-empty string without `/`)"
        )


def _input_layer(layer: Layer, d: dict[str, Any], cfg: Any, ctx: Ctx, depth: int) -> None:
    """An InputLayer: its declared batch shape and a dtype of fusec's; no sparse, ragged or optional input."""
    if not isinstance(cfg, dict):
        raise ctx.fail(f"{layer.what} has no config")
    layer.shape = declared_shape(cfg.get("batch_shape"), ctx, layer.what)
    dtype = cfg.get("dtype", "float32")
    if not (isinstance(dtype, str) and dtype in INPUT_DTYPES) and not policy_ok(dtype):
        raise ctx.fail(f"{layer.what} takes dtype {show(dtype)}, outside fusec's vocabulary")
    if isinstance(dtype, str):
        layer.dtype = dtype
    for flag in ("sparse", "ragged", "optional"):
        if cfg.get(flag, False) is not False:
            raise ctx.fail(f"{layer.what} is {flag}, outside fusec's vocabulary")


def _nested_model(layer: Layer, d: dict[str, Any], cfg: Any, ctx: Ctx, depth: int) -> None:
    """A model used as a layer: its own graph, one level deeper."""
    layer.model = parse_model(d, ctx, depth + 1)


def _pass_through(layer: Layer, d: dict[str, Any], cfg: Any, ctx: Ctx, depth: int) -> None:
    """A layer fusec writes besides its vocabulary (``Identity``): no settings of its own."""
    fusec_config(layer.cls, {}, cfg, layer.what, ctx.label, ctx.key, "merge", "")


def _vocab_layer(layer: Layer, d: dict[str, Any], cfg: Any, ctx: Ctx, depth: int) -> None:
    """A layer of fusec's vocabulary: its config in fusec's terms, validated by the spec's own schema."""
    rule = LAYERS[layer.cls]
    layer.rule = rule
    tweak = _CONFIG_TWEAKS.get(layer.cls)
    if tweak is not None and isinstance(cfg, dict):
        cfg = tweak(cfg, ctx, layer)
    params = dict(rule.param_index)
    layer.config = fusec_config(layer.cls, params, cfg, layer.what, ctx.label, ctx.key, "layer", layer.cls)


def _merge_layer(layer: Layer, d: dict[str, Any], cfg: Any, ctx: Ctx, depth: int) -> None:
    """A Keras merge layer: the fusec merge it is, its config in fusec's terms."""
    merge = MERGES[KERAS_MERGES[layer.cls]]
    layer.merge = merge
    layer.config = fusec_config(layer.cls, merge.param_index, cfg, layer.what, ctx.label, ctx.key, "merge", merge.name)


def _keras_op(layer: Layer, d: dict[str, Any], cfg: Any, ctx: Ctx, depth: int) -> None:
    """A Keras op in the functional graph (``x + 3``, ``x * y``): a merge or a ScalarOp, decided per call."""
    layer.op = KERAS_OPS[layer.cls]
    if isinstance(cfg, dict) and set(cfg) - {"name"}:
        raise ctx.fail(f"{layer.what} has settings {show(sorted(cfg))}, outside fusec's vocabulary")


def _custom_scale(layer: Layer, d: dict[str, Any], cfg: Any, ctx: Ctx, depth: int) -> None:
    """InceptionResNetV2's ``CustomScaleLayer`` (``x[0] + x[1] * scale``): a ScalarOp and an add."""
    scale = cfg.get("scale") if isinstance(cfg, dict) else None
    rest = {k: v for k, v in cfg.items() if k != "scale"} if isinstance(cfg, dict) else cfg
    fusec_config(layer.cls, {}, rest, layer.what, ctx.label, ctx.key, "merge", "")
    if not isinstance(scale, (int, float)) or isinstance(scale, bool) or "ScalarOp" not in LAYERS:
        raise ctx.fail(f"{layer.what} has the scale {show(scale)}, outside fusec's vocabulary")
    layer.scale = float(scale)


def _is_op(cls: str, d: dict[str, Any]) -> bool:
    return d.get("module") == OPS_MODULE and cls in KERAS_OPS


def _is_application(cls: str, d: dict[str, Any]) -> bool:
    return cls in APPLICATION_LAYERS.get(str(d.get("module")), ())


#: How each kind of layer class is read, in order: the first that applies reads it.
_KINDS: tuple[
    tuple[Callable[[str, dict[str, Any]], bool], Callable[[Layer, dict[str, Any], Any, Ctx, int], None]], ...
] = (
    (lambda cls, d: cls == "InputLayer", _input_layer),
    (_is_op, _keras_op),
    (is_mask_op, read_mask_op),
    (lambda cls, d: cls == "CustomScaleLayer" and _is_application(cls, d), _custom_scale),
    (lambda cls, d: cls in MODEL_CLASSES, _nested_model),
    (lambda cls, d: cls in PASS_THROUGH, _pass_through),
    (lambda cls, d: cls in LAYERS, _vocab_layer),
    (lambda cls, d: cls in KERAS_MERGES, _merge_layer),
)


def _attention_config(cfg: dict[str, Any], ctx: Ctx, layer: Layer) -> dict[str, Any]:
    """MultiHeadAttention's config without ``attention_axes``, kept aside: checked once the query's rank is known."""
    out = dict(cfg)
    layer.axes = out.pop("attention_axes", None)
    return out


def _bidirectional_config(cfg: dict[str, Any], ctx: Ctx, layer: Layer) -> dict[str, Any]:
    """Bidirectional's config with its wrapped layers in fusec's form; a backward layer must mirror the forward one."""
    what = layer.what
    out = dict(cfg)
    converted = []
    builds = []
    for k in ("layer", "backward_layer"):
        inner = out.pop(k, None)
        if inner is None:
            continue
        if not isinstance(inner, dict) or inner.get("class_name") not in ("LSTM", "GRU", "SimpleRNN"):
            cls = inner.get("class_name") if isinstance(inner, dict) else None
            raise ctx.fail(f"{what} wraps {show(cls)} as its `{k}`; fusec's Bidirectional wraps LSTM, GRU or SimpleRNN")
        rule = LAYERS[inner["class_name"]]
        inner_what = f"the `{k}` of {what}"
        fusec = fusec_config(
            rule.name, rule.param_index, inner.get("config"), inner_what, ctx.label, ctx.key, "layer", rule.name
        )
        converted.append((inner["class_name"], fusec))
        builds.append(inner.get("build_config"))
    if not converted:
        raise ctx.fail(f"{what} wraps no layer")
    cls, forward = converted[0]
    if len(converted) == 2:
        _check_mirror(cls, forward, *converted[1], ctx, what)
    out["layer"] = {"layer": cls, "config": forward}
    layer.inner_builds = tuple(builds)
    return out


def _check_mirror(
    cls: str, forward: dict[str, Any], back_cls: str, backward: dict[str, Any], ctx: Ctx, what: str
) -> None:
    """A Bidirectional's backward layer must be its forward layer run backwards, nothing else."""
    same = {k: v for k, v in LAYERS[cls].resolve(forward).items() if k != "go_backwards"}
    mirror = {k: v for k, v in LAYERS[back_cls].resolve(backward).items() if k != "go_backwards"}
    if back_cls != cls or same != mirror or backward.get("go_backwards") is not True:
        raise ctx.fail(
            f"{what} has a backward layer that is not a backward copy of its forward layer; "
            "fusec's Bidirectional runs one layer both ways"
        )


def _layer_scale_config(cfg: dict[str, Any], ctx: Ctx, layer: Layer) -> dict[str, Any]:
    """ConvNeXt's LayerScale: ``projection_dim`` is the input's channel count, which fusec infers."""
    if "projection_dim" in LAYERS["LayerScale"].param_index:
        return cfg
    return {k: v for k, v in cfg.items() if k != "projection_dim"}


#: Layers whose Keras config holds more than fusec's config: read into fusec's form first.
_CONFIG_TWEAKS: dict[str, Callable[[dict[str, Any], Ctx, Layer], dict[str, Any]]] = {
    "Bidirectional": _bidirectional_config,
    "MultiHeadAttention": _attention_config,
    "LayerScale": _layer_scale_config,
}

# --- a model -----------------------------------------------------------------------------------


def parse_model(d: dict[str, Any], ctx: Ctx, depth: int) -> Graph:
    """A Functional or Sequential model config as a graph of layer calls in dependency order.

    Raises:
        RuleError: another model class (a subclassed model has no graph),
            nesting too deep, or a layer or call fusec does not read.
    """
    cls = d.get("class_name")
    cfg = d.get("config")
    name = cfg.get("name") if isinstance(cfg, dict) else None
    name = name if isinstance(name, str) else "?"
    if depth > MAX_NESTING:
        raise ctx.fail(f"nests models deeper than {MAX_NESTING} levels", "use a flatter sub-model")
    if cls not in MODEL_CLASSES:
        raise ctx.malformed(f"a model of class {show(cls)}; fusec reads Functional and Sequential models")
    if isinstance(cfg, dict) and "name" in cfg:
        _keras_name(cfg["name"], ctx, f"model `{name[:64]}`")
    if not isinstance(cfg, dict) or not isinstance(cfg.get("layers"), list):
        raise ctx.malformed(f"model `{name[:64]}` has no list of layers")
    if cls == "Sequential":
        return _parse_sequential(d, cfg, name, ctx, depth)
    if "input_layers" not in cfg or "output_layers" not in cfg:
        raise ctx.malformed(f"model `{name[:64]}` ({cls}) has no inputs and outputs: a subclassed model has no graph")
    layers: dict[str, Layer] = {}
    for raw in cfg["layers"]:
        layer = parse_collecting(raw, ctx, name, depth, in_sequential=False)
        if layer.name in layers:
            raise ctx.fail(f"model `{name[:64]}` has two layers named `{layer.name[:64]}`")
        layers[layer.name] = layer
        _read_calls(layer, raw.get("inbound_nodes", []), ctx)
    in_kind, ins = named(cfg.get("input_layers"), ctx, f"the inputs of model `{name[:64]}`")
    out_kind, outs = named(cfg.get("output_layers"), ctx, f"the outputs of model `{name[:64]}`")
    inputs = [(n, top_ref(r, layers, ctx, f"model `{name[:64]}`")) for n, r in ins]
    for n, ref in inputs:
        if layers[ref.layer].shape is None or ref.node != 0 or ref.tensor != 0:
            raise ctx.fail(f"input `{n[:64]}` of model `{name[:64]}` is not an InputLayer")
    outputs = [(n, top_ref(r, layers, ctx, f"model `{name[:64]}`")) for n, r in outs]
    layers = drop_masks(layers, [r for _, r in outputs], ctx)
    order = topological(layers, ctx, name)
    return Graph(name, layers, order, inputs, outputs, in_kind, out_kind, _size(layers))


def _read_calls(layer: Layer, nodes: Any, ctx: Ctx) -> None:
    """A layer's calls in a Functional model (its ``inbound_nodes``; an InputLayer's one call has none)."""
    if layer.shape is not None:
        layer.calls.append(Call(layer, 0, [], {}))
        return
    if not isinstance(nodes, list):
        raise ctx.fail(f"{layer.what} has malformed calls")
    for i, node in enumerate(nodes):
        if not isinstance(node, dict) or set(node) - {"args", "kwargs"}:
            raise ctx.fail(f"{layer.what} has calls saved in an older Keras format", RESAVE)
        args = decode(node.get("args", []), ctx, layer.what)
        kwargs = decode(node.get("kwargs", {}), ctx, layer.what)
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise ctx.fail(f"{layer.what} has malformed calls")
        layer.calls.append(Call(layer, i, args, kwargs))


def _size(layers: dict[str, Layer]) -> int:
    return sum(1 + (layer.model.size if layer.model else 0) for layer in layers.values())


def _parse_sequential(d: dict[str, Any], cfg: dict[str, Any], name: str, ctx: Ctx, depth: int) -> Graph:
    """A Sequential model as a graph: its input (an InputLayer, else its saved input shape), then each layer once."""
    raws = list(cfg["layers"])
    first = raws[0] if raws else None
    if isinstance(first, dict) and first.get("class_name") == "InputLayer":
        inp = parse_layer(first, ctx, name, depth, in_sequential=True)
        raws = raws[1:]
    else:
        inp = _sequential_input(d, cfg, name, ctx)
    inp.calls.append(Call(inp, 0, [], {}))
    layers: dict[str, Layer] = {inp.name: inp}
    if not raws:
        raise ctx.fail(f"Sequential model `{name[:64]}` has no layers")
    prev = inp.name
    order = [inp.calls[0]]
    for raw in raws:
        layer = parse_collecting(raw, ctx, name, depth, in_sequential=True)
        if layer.name in layers or layer.shape is not None:
            raise ctx.fail(f"Sequential model `{name[:64]}` has two layers named `{layer.name[:64]}`")
        layers[layer.name] = layer
        call = Call(layer, 0, [Ref(prev, 0, 0)], {})
        layer.calls.append(call)
        order.append(call)
        prev = layer.name
    return Graph(
        name, layers, order, [(inp.name, Ref(inp.name, 0, 0))], [(prev, Ref(prev, 0, 0))], "one", "one", _size(layers)
    )


def _sequential_input(d: dict[str, Any], cfg: dict[str, Any], name: str, ctx: Ctx) -> Layer:
    """A Sequential model saved without an InputLayer: its input from the input shape it was built with."""
    declared = cfg.get("build_input_shape")
    build = d.get("build_config")
    if declared is None and isinstance(build, dict):
        declared = build.get("input_shape")
    if declared is None:
        raise ctx.fail(
            f"Sequential model `{name[:64]}` declares no input shape",
            "give the model an input (keras.Input(shape=...) as its first layer), then " + RESAVE,
        )
    inp = Layer("input", "InputLayer", f"the input of Sequential model `{name[:64]}`")
    inp.shape = declared_shape(declared, ctx, inp.what)
    return inp
