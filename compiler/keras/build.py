"""Build stage: a checked spec becomes a compiled Keras functional model.

This is the only stage (with save) that imports Keras and TensorFlow, and it
imports them inside functions so ``check``, ``summary`` and ``render`` never
pay for it.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from ..errors import BuildError
from ..spec.graph import Ref
from ..static.check import Checked
from ..static.shapes import port_index
from ..vocab.layers import LAYERS
from ..vocab.merges import MERGES, MergeRule

T = TypeVar("T")

#: Python frames Keras may need per layer of the graph, with room to spare. Keras walks a
#: functional graph recursively when it builds it and when it loads a .keras archive (not when
#: it saves one), about one frame per layer on the longest path: with Python's default limit
#: of 1,000, a chain of 800 Activation layers builds and one of 1,000 fails with RecursionError.
#: Measured on Keras 3.15 / Python 3.11: a chain of 20,000 (the spec limit) goes through
#: ``fusec compile`` in 71 s and 1.5 GB with this limit (81,000); a .keras archive of a chain of
#: 3,000 does not load with the default limit.
FRAMES_PER_NODE = 4


@contextlib.contextmanager
def deep_recursion(nodes: int) -> Iterator[None]:
    """Room for Keras's recursion over a graph of ``nodes`` layers: the recursion limit raised, then restored.

    Building and loading need it (``build_model`` takes it itself; wrap
    ``keras.models.load_model`` of a deep archive in it). From Python 3.11
    on, Python calls do not grow the C stack, so the limit is all that needs
    raising; on 3.10 a deep graph runs in ``run_deep``'s thread.
    """
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 1_000 + FRAMES_PER_NODE * nodes))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def run_deep(fn: Callable[[], T], nodes: int) -> T:
    """``fn()`` with room for Keras's recursion over ``nodes`` layers (see ``deep_recursion``).

    It runs in the calling thread (Keras and TensorFlow keep scopes and
    settings per thread), except on Python 3.10 with a graph of more than
    1,000 nodes, whose recursion also grows the C stack: there it runs in a
    thread with a stack sized for it.
    """
    if sys.version_info >= (3, 11) or nodes <= 1_000:
        with deep_recursion(nodes):
            return fn()
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            with deep_recursion(nodes):
                box["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    old = threading.stack_size(min((64 << 20) + (16 << 10) * nodes, 1 << 30))
    try:
        worker = threading.Thread(target=work, name="fusec-deep", daemon=True)
        worker.start()
    finally:
        threading.stack_size(old)
    worker.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def _regularizer(value: Any) -> Any:
    if value is None:
        return None
    import keras

    return keras.regularizers.L1L2(l1=float(value.get("l1", 0.0)), l2=float(value.get("l2", 0.0)))


def _rnn_layer(value: Any) -> Any:
    return keras_layer(value["layer"], value.get("config", {}), None)


_CONVERTERS = {"": lambda v: v, "regularizer": _regularizer, "rnn_layer": _rnn_layer}


def keras_kwargs(layer: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """Turn a spec config into Keras keyword arguments for ``layer``.

    Only keys the layer's rule declares get through (the schema has already
    refused the rest); each value goes through its parameter's converter.
    """
    rule = LAYERS[layer]
    out: dict[str, Any] = {}
    for key, value in config.items():
        param = rule.param_index[key]
        out[key] = _CONVERTERS[param.convert](value)
    return out


def keras_layer(layer: str, config: Mapping[str, Any], name: str | None) -> Any:
    """Instantiate the Keras layer for a spec ``layer`` node.

    Args:
        layer: a key of ``fusec.layers.LAYERS`` (the closed vocabulary).
        config: the node's config, already validated.
        name: the Keras layer name (the node id), or None for inner layers.

    Returns:
        A new, unbuilt ``keras.layers.Layer``.
    """
    import keras

    cls = getattr(keras.layers, LAYERS[layer].name)
    kwargs = keras_kwargs(layer, config)
    if name is not None:
        kwargs["name"] = name
    return cls(**kwargs)


def keras_merge(mode: str, config: Mapping[str, Any], name: str, sources: Sequence[str] = ()) -> Any:
    """Instantiate the Keras layer for a spec ``merge`` node.

    Args:
        mode: a key of ``fusec.merges.MERGES``.
        config: the node's config, already validated.
        name: the Keras layer name (the node id).
        sources: the input ids, in order; ``weighted`` records them so its
            learned weights can be reported per input.

    Returns:
        A new Keras layer: a ``keras.layers`` merge, or a ``fusec.fusion`` one.
    """
    import keras

    rule = MERGES[mode]
    kwargs = dict(config)
    if rule.keras in ("WeightedMerge", "GatedMerge"):
        from . import fusion  # imports Keras: only reached when building

        if mode == "weighted":
            kwargs["input_ids"] = list(sources)
        return fusion.MERGE_LAYERS[rule.keras](name=name, **kwargs)
    return getattr(keras.layers, rule.keras)(name=name, **kwargs)


def _merge_args(rule: MergeRule, refs: Sequence[Ref], args: list[Any]) -> list[Any]:
    """Positional call arguments of a merge layer: the list, or one per slot in slot order."""
    if rule.slots is None:
        return [args]
    named: dict[str, list[Any]] = {name: [] for name in rule.slots}
    for ref, tensor in zip(refs, args, strict=True):
        named[str(ref.slot[0])].append(tensor)
    return [named[s] if kind == "list" else named[s][0] for s, kind in rule.slots.items()]


def _optimizer(training: Mapping[str, Any]) -> Any:
    import keras

    kwargs: dict[str, Any] = {}
    for key in ("learning_rate", "clipnorm", "weight_decay"):
        if key in training:
            kwargs[key] = training[key]
    return keras.optimizers.get({"class_name": training.get("optimizer", "adam"), "config": kwargs})


def build_model(checked: Checked, compile: bool = True) -> Any:
    """Build the Keras functional model a checked spec describes.

    The model's interface is the spec's: ``model.inputs`` are the spec's
    inputs and ``model.outputs`` its outputs, both in the order the spec
    lists them (so lists fed in that order and dicts keyed by name give the
    same results), and ``model.output_names`` are the spec's output names.
    Every layer is named after its node id (a shared layer after its shared
    id, one layer object for all its calls). The spec's seed makes the
    initial weights reproducible.

    Args:
        checked: the result of ``check_spec``.
        compile: also call ``model.compile`` with the outputs' losses, loss
            weights and metrics and the training section.

    Returns:
        A ``keras.Model``.

    Raises:
        BuildError: if Keras refuses the model (a gap between fusec's static
            rules and Keras; the message names the node).
    """
    # Keras recurses over the sub-models' layers too (loading their archives, calling them).
    nested = checked.models.tally[0] if checked.models is not None else 0
    return run_deep(lambda: _build(checked, compile), len(checked.order) + nested)


def _build(checked: Checked, compile: bool) -> Any:
    from .tf import import_keras

    keras = import_keras()
    doc = checked.doc
    if "seed" in doc:
        keras.utils.set_random_seed(int(doc["seed"]))
    g = checked.graph
    shared = {
        sid: _named(keras_layer(s["layer"], s.get("config", {}), sid), s.get("trainable", True))
        for sid, s in sorted(g.graph["shared"].items())
    }
    tensors: dict[str, Any] = {}
    inputs: dict[str, Any] = {}
    for nid in checked.order:
        attrs = g.nodes[nid]
        spec, kind = attrs["spec"], attrs["kind"]
        try:
            if kind == "input":
                tensors[nid] = inputs[nid] = keras.Input(
                    shape=tuple(spec["shape"]), dtype=spec.get("dtype", "float32"), name=nid
                )
                continue
            args = [_tensor(tensors, r.source) for r in attrs["refs"]]
            if kind == "merge":
                refs = attrs["refs"]
                layer = keras_merge(spec["merge"], spec.get("config", {}), nid, [r.source for r in refs])
                tensors[nid] = layer(*_merge_args(MERGES[spec["merge"]], refs, args))
            elif kind == "layer":
                layer = _named(keras_layer(spec["layer"], spec.get("config", {}), nid), spec.get("trainable", True))
                _store(tensors, nid, _call_layer(layer, LAYERS[spec["layer"]], attrs["refs"], tensors))
            elif kind == "model":
                tensors[nid] = _call_submodel(nid, spec, checked, tensors)
            else:
                sid = spec["shared"]
                rule = LAYERS[g.graph["shared"][sid]["layer"]]
                _store(tensors, nid, _call_layer(shared[sid], rule, attrs["refs"], tensors))
        except RecursionError as exc:
            raise BuildError.single(
                attrs["path"],
                f"Keras ran out of recursion depth building node `{nid}` of a graph of {len(checked.order):,} nodes",
                "shorten the longest chain of layers",
                "build",
                checked.spec.file,
            ) from exc
        except Exception as exc:  # Keras raises ValueError, TypeError, tf errors...
            raise BuildError.single(
                attrs["path"],
                f"Keras refused node `{nid}`: {_first_line(exc)}",
                "",
                "build",
                checked.spec.file,
            ) from exc
    outputs = _named_outputs(keras, g.graph["outputs"], tensors)
    model = keras.Model(
        inputs=[inputs[iid] for iid in doc["inputs"]],
        # One output as a dict: Keras's ``fit`` then takes its labels as a dict,
        # a list or an array alike (a one-item list would refuse the dict); a
        # dict of several would be sorted by name, hence the list.
        outputs=outputs if len(outputs) > 1 else dict(zip(g.graph["outputs"], outputs, strict=True)),
        name=checked.name,
    )
    if compile:
        compile_model(model, checked)
    return model


def _named_outputs(keras: Any, outputs: Mapping[str, Ref], tensors: Mapping[str, Any]) -> list[Any]:
    """The model's outputs, in the spec's order, each made by a layer named after its output.

    Keras names a functional model's outputs (``model.output_names``, the
    ``<name>_loss`` metrics, the keys ``fit`` matches labels by) after the
    layers that produce them, and orders dict outputs by sorted key. So the
    outputs are passed as a list in the spec's order, and an output whose
    tensor comes from a layer of another name (a shared layer's call, a port,
    a merge or sub-model named differently, a tensor that feeds two outputs)
    goes through an ``Identity`` layer named after the output: no weights,
    no computation in the served graph.
    """
    out: list[Any] = []
    taken: set[int] = set()
    for name, ref in outputs.items():
        tensor = _tensor(tensors, ref.source)
        node, index = port_index(ref.source)
        history = getattr(tensor, "_keras_history", None)
        producer = getattr(history, "operation", None)
        if (node, index) != (name, 0) or getattr(producer, "name", None) != name or id(tensor) in taken:
            tensor = keras.layers.Identity(name=name)(tensor)
        taken.add(id(tensor))
        out.append(tensor)
    return out


def _tensor(tensors: Mapping[str, Any], source: str) -> Any:
    """The tensor a reference names, resolved as the shapes stage does (``id`` and ``id.0`` are one)."""
    node, index = port_index(source)
    return tensors[node] if index == 0 else tensors[f"{node}.{index}"]


def _store(tensors: dict[str, Any], nid: str, out: Any) -> None:
    """Keep a node's output; a multi-output layer's outputs also as ``id.0``, ``id.1``..."""
    if isinstance(out, (list, tuple)):
        for i, t in enumerate(out):
            tensors[f"{nid}.{i}"] = t
        out = out[0]
    tensors[nid] = out


def _call_layer(layer: Any, rule: Any, refs: Any, tensors: Mapping[str, Any]) -> Any:
    """Call a layer on its input, or on its named inputs (attention layers)."""
    if not rule.slots:
        return layer(_tensor(tensors, refs[0].source))
    if len(refs) == 1 and refs[0].slot == ():
        given = dict.fromkeys(rule.required_slots, _tensor(tensors, refs[0].source))
    else:
        given = {str(r.slot[0]): _tensor(tensors, r.source) for r in refs}
    if rule.call_style == "list":
        return layer([given[s] for s in rule.slots if s in given])
    return layer(**given)


def _call_submodel(nid: str, spec: Mapping[str, Any], checked: Checked, tensors: Mapping[str, Any]) -> Any:
    """Load a ``model`` node's sub-model and call it on its inputs."""
    from ..static.archive import load_submodel

    sub, chosen, mapping, ctx = checked.graph.graph["submodels"][nid]
    model = load_submodel(spec, sub, ctx, nid)
    if isinstance(model.input, dict):
        arg: Any = {name: _tensor(tensors, src) for name, src in mapping.items()}
    elif len(mapping) == 1:
        arg = _tensor(tensors, next(iter(mapping.values())))
    else:
        arg = [_tensor(tensors, mapping[name]) for name in sub.inputs]
    # A frozen sub-model runs in inference mode (BatchNormalization uses its
    # moving statistics), as Keras's transfer-learning guide prescribes.
    out = model(arg, training=False) if not spec.get("trainable", True) else model(arg)
    if isinstance(out, dict):
        return out[chosen]
    if isinstance(out, (list, tuple)):
        return out[list(sub.outputs).index(chosen)]
    return out


def compile_model(model: Any, checked: Checked) -> None:
    """``model.compile`` from the spec's outputs and training section.

    Losses, loss weights and metrics are dicts keyed by output name, in the
    spec's order; each loss or metric is a name (Keras resolves it) or, when
    the spec gives arguments, an instance of its Keras class (``losses.py``).
    """
    from ..vocab.losses import keras_objective

    outs = checked.doc["outputs"]
    trained = {name: o for name, o in outs.items() if o.get("loss")}
    losses = {name: keras_objective("loss", o["loss"]) for name, o in trained.items()}
    weights = {name: float(o.get("loss_weight", 1.0)) for name, o in trained.items()}
    metrics = {
        name: [keras_objective("metric", m) for m in o["metrics"]] for name, o in outs.items() if o.get("metrics")
    }
    model.compile(
        optimizer=_optimizer(checked.doc.get("training", {})),
        loss=losses or None,
        loss_weights=weights or None,
        metrics=metrics or None,
    )


def _named(layer: Any, trainable: bool) -> Any:
    layer.trainable = trainable
    return layer


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
