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
from typing import Any, ClassVar, TypeVar

from ..errors import BuildError
from ..spec.graph import Ref
from ..static.binding import layer_inputs, merge_inputs, port_index
from ..static.check import Checked
from ..static.shapes import ModelCall
from ..vocab.layers import LAYERS
from ..vocab.merges import MERGES
from .layers import keras_layer, keras_merge, keras_objective, merge_args

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


def _optimizer(training: Mapping[str, Any]) -> Any:
    import keras

    kwargs: dict[str, Any] = {}
    for key in ("learning_rate", "clipnorm", "weight_decay"):
        if key in training:
            kwargs[key] = float(training[key])  # Keras refuses a whole number (`"learning_rate": 1`)
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


class _Builder:
    """One pass of the build stage: ``HANDLERS`` maps each node kind to the call that makes its tensor."""

    def __init__(self, keras: Any, checked: Checked) -> None:
        self.keras = keras
        self.checked = checked
        g = checked.graph
        self.shared = {
            sid: _named(keras_layer(s["layer"], s.get("config", {}), sid), s.get("trainable", True))
            for sid, s in sorted(g.graph["shared"].items())
        }
        self.tensors: dict[str, Any] = {}
        self.inputs: dict[str, Any] = {}

    def tensor(self, ref: Ref) -> Any:
        return _tensor(self.tensors, ref.source)

    def _input(self, nid: str, spec: Mapping[str, Any], refs: Sequence[Ref]) -> None:
        tensor = self.keras.Input(shape=tuple(spec["shape"]), dtype=spec.get("dtype", "float32"), name=nid)
        self.tensors[nid] = self.inputs[nid] = tensor

    def _merge(self, nid: str, spec: Mapping[str, Any], refs: Sequence[Ref]) -> None:
        rule = MERGES[spec["merge"]]
        layer = keras_merge(spec["merge"], spec.get("config", {}), nid, [r.source for r in refs])
        self.tensors[nid] = layer(*merge_args(rule, merge_inputs(rule, refs, self.tensor)))

    def _layer(self, nid: str, spec: Mapping[str, Any], refs: Sequence[Ref]) -> None:
        layer = _named(keras_layer(spec["layer"], spec.get("config", {}), nid), spec.get("trainable", True))
        _store(
            self.tensors,
            nid,
            _call_layer(layer, LAYERS[spec["layer"]], layer_inputs(LAYERS[spec["layer"]], refs, self.tensor)),
        )

    def _shared(self, nid: str, spec: Mapping[str, Any], refs: Sequence[Ref]) -> None:
        sid = spec["shared"]
        rule = LAYERS[self.checked.graph.graph["shared"][sid]["layer"]]
        _store(self.tensors, nid, _call_layer(self.shared[sid], rule, layer_inputs(rule, refs, self.tensor)))

    def _model(self, nid: str, spec: Mapping[str, Any], refs: Sequence[Ref]) -> None:
        self.tensors[nid] = _call_submodel(nid, spec, self.checked.shapes.models[nid], self.tensors)

    HANDLERS: ClassVar[Mapping[str, Callable[[_Builder, str, Mapping[str, Any], Sequence[Ref]], None]]] = {
        "input": _input,
        "layer": _layer,
        "shared": _shared,
        "merge": _merge,
        "model": _model,
    }

    def node(self, nid: str) -> None:
        """Make one node's tensor; Keras's refusal becomes a BuildError at the node's path."""
        attrs = self.checked.graph.nodes[nid]
        try:
            self.HANDLERS[attrs["kind"]](self, nid, attrs["spec"], attrs.get("refs", ()))
        except RecursionError as exc:
            raise BuildError.single(
                attrs["path"],
                f"Keras ran out of recursion depth building node `{nid}` "
                f"of a graph of {len(self.checked.order):,} nodes",
                "shorten the longest chain of layers",
                "build",
                self.checked.spec.file,
            ) from exc
        except Exception as exc:  # Keras raises ValueError, TypeError, tf errors...
            raise BuildError.single(
                attrs["path"], f"Keras refused node `{nid}`: {_first_line(exc)}", "", "build", self.checked.spec.file
            ) from exc

    def model(self) -> Any:
        """The functional model, its inputs and outputs in the spec's order."""
        outputs_spec = self.checked.graph.graph["outputs"]
        outputs = _named_outputs(self.keras, outputs_spec, self.tensors)
        return self.keras.Model(
            inputs=[self.inputs[iid] for iid in self.checked.doc["inputs"]],
            # One output as a dict: Keras's ``fit`` then takes its labels as a dict,
            # a list or an array alike (a one-item list would refuse the dict); a
            # dict of several would be sorted by name, hence the list.
            outputs=outputs if len(outputs) > 1 else dict(zip(outputs_spec, outputs, strict=True)),
            name=self.checked.name,
        )


def _build(checked: Checked, compile: bool) -> Any:
    from .tf import import_keras

    keras = import_keras()
    if "seed" in checked.doc:
        keras.utils.set_random_seed(int(checked.doc["seed"]))
    builder = _Builder(keras, checked)
    for nid in checked.order:
        builder.node(nid)
    model = builder.model()
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


def _call_layer(layer: Any, rule: Any, given: Any) -> Any:
    """Call a layer on its bound input (``binding.layer_inputs``): one tensor, or named ones (attention)."""
    if not rule.slots:
        return layer(given)
    if rule.call_style == "list":
        return layer([given[s] for s in rule.slots if s in given])
    return layer(**given)


def _call_submodel(nid: str, spec: Mapping[str, Any], call: ModelCall, tensors: Mapping[str, Any]) -> Any:
    """Load a ``model`` node's sub-model (a nested spec is built from its own check) and call it on its inputs."""
    from .submodel import load_submodel

    sub, chosen, mapping = call.sub, call.output, call.inputs
    model = load_submodel(spec, sub, call.context, nid, lambda nested: build_model(nested, compile=False))
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
