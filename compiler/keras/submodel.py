"""Loading a ``model`` node's sub-model for the build: archives in Keras's safe mode, specs built from their check.

The static check (``fusec.static.archive``) has already inspected every file
Keras reads here; a spec sub-model's own check result rides on its
``SubModel`` (``sub.checked``), so it is built without being checked again.
An archive loaded on trust (``"trust": PKG``, ``--trust PKG``) is verified
once loaded: its layers' classes, input names, parameter count and the
declared output shapes (``verify_trusted``).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..static.archive import ModelContext, SubModel, resolve_path
from ..static.archive.trusted import KIND_PREFIX
from ..vocab.rule import Shape, fmt_shape


def load_submodel(
    node: Mapping[str, Any],
    sub: SubModel,
    ctx: ModelContext,
    name: str,
    build_nested: Callable[[Any], Any],
) -> Any:
    """Load a sub-model for the build stage, named after its node and frozen as the node says.

    Args:
        node: the ``model`` node of the spec.
        sub: what the check found for it (a spec sub-model carries its
            ``checked`` result).
        ctx: the model context of the spec holding the node (where its
            ``weights`` path resolves).
        name: the node id: the sub-model's name in the parent.
        build_nested: builds an uncompiled Keras model from a spec's check
            result (``build.py`` passes ``lambda c: build_model(c, compile=False)``).

    Returns:
        The ``keras.Model`` to call on the node's inputs.
    """
    import keras

    from . import fusion  # noqa: F401  (registers fusec's own layers, which a compiled archive may hold)

    if sub.kind.startswith(KIND_PREFIX):
        model = _load_trusted(keras, node, sub)
    elif sub.kind == "keras":
        model = _load_archive(keras, node, sub)
    else:
        model = _build_spec(keras, node, sub, ctx, build_nested)
    model.name = name  # the sub-model appears in the parent under its node id
    model.trainable = node.get("trainable", True)
    return model


class WeightsRefused(ValueError):
    """Keras refused a sub-model's stored weights: which layer, which variable, which shapes."""


#: How Keras words a refusal of stored weights (loading an archive or a weights file, set_weights).
_WEIGHT_REFUSALS = (
    "could not be loaded",
    "variables during loading",
    "variable.shape=",
    "is not compatible with provided weight",
    "with a weight list of length",
)


@contextlib.contextmanager
def _weights_of(source: str) -> Iterator[None]:
    """Keras's refusal of stored weights inside, as one ``WeightsRefused`` line naming ``source``.

    Only Keras's weight-loading refusals (``_WEIGHT_REFUSALS``) are
    translated; anything else passes through as it was raised.
    """
    try:
        yield
    except Exception as exc:
        text = str(exc)
        if not any(m in text for m in _WEIGHT_REFUSALS):
            raise
        raise WeightsRefused(f"the weights in `{source}` do not fit the sub-model: {weights_detail(exc)}") from exc


_OBJECT = re.compile(r"for object <(\w+) name=([^,>]+)")
_SHAPES = re.compile(r"variable\.shape=(\([^)]*\)), Received: value\.shape=(\([^)]*\))")
_PATH = re.compile(r"Variable path=([^,>]+)")


def weights_detail(exc: BaseException) -> str:
    """Keras's weight-loading refusal in one line: the layer, the variable and both shapes where it says them.

    Keras words it "A total of N objects could not be loaded. Example error
    message for object <Dense name=dense, built=True>: ... variable.shape=(4, 3),
    Received: value.shape=(3, 4) ..."; the tensor values it also prints are left out.
    """
    text = str(exc)
    obj, shapes, path = _OBJECT.search(text), _SHAPES.search(text), _PATH.search(text)
    where = f"layer `{obj[2]}` ({obj[1]})" if obj else ""
    if shapes:
        variable = f"variable `{path[1]}`" if path else "a variable"
        return f"{where}: {variable} has shape {shapes[1]}, the stored value {shapes[2]}".lstrip(": ")
    parts = [p.strip() for p in text.split("\n\n") if p.strip()]
    detail = parts[1] if obj and len(parts) > 1 else (parts[0] if parts else type(exc).__name__)
    detail = " ".join(detail.split())
    detail = detail if len(detail) <= 240 else detail[:237] + "..."
    return f"{where}: {detail}" if where else detail


def _load_archive(keras: Any, node: Mapping[str, Any], sub: SubModel) -> Any:
    """A ``.keras`` archive in Keras's safe mode; a Sequential wrapped in a graph with a named input."""
    with _weights_of(node["model"]):
        model = keras.saving.load_model(sub.path, compile=False, safe_mode=True)
    if isinstance(model, keras.Sequential):  # a Sequential has no `input` to call it by: wrap it in a graph
        (spec,) = model.inputs
        given = keras.Input(batch_shape=tuple(spec.shape), dtype=spec.dtype, name=next(iter(sub.inputs)))
        model = keras.Model(given, model(given))
    return model


def _build_spec(
    keras: Any, node: Mapping[str, Any], sub: SubModel, ctx: ModelContext, build_nested: Callable[[Any], Any]
) -> Any:
    """A spec sub-model built from its check result, then given its trained weights when the node names some."""
    if sub.checked is None:
        raise RuntimeError(f"the sub-model spec `{sub.path}` carries no check result to build from")
    model = build_nested(sub.checked)
    if "weights" in node:
        weights = resolve_path(node["weights"], ctx.spec_dir, ctx.allowed, "weights")
        with _weights_of(node["weights"]):
            if weights.suffix == ".keras":
                trained = keras.saving.load_model(weights, compile=False, safe_mode=True)
                model.set_weights(trained.get_weights())
            else:
                model.load_weights(weights)
    return model


class TrustedMismatch(ValueError):
    """A sub-model loaded on trust is not what its node declares."""


def _load_trusted(keras: Any, node: Mapping[str, Any], sub: SubModel) -> Any:
    """An archive on trust of ``node["trust"]``, in Keras's safe mode, verified against its node."""
    with _weights_of(node["model"]):
        model = keras.saving.load_model(sub.path, compile=False, safe_mode=True)
    verify_trusted(keras, model, node, sub)
    return model


def _classes(model: Any) -> Iterator[type]:
    """The classes of a model and of every layer it lists, nested models' layers included."""
    stack = [model]
    seen: set[int] = set()
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        yield type(layer)
        stack.extend(getattr(layer, "layers", ()) or ())


def verify_trusted(keras: Any, model: Any, node: Mapping[str, Any], sub: SubModel) -> None:
    """The loaded model must be what the check assumed: classes, input names, parameters, output shapes.

    Raises:
        TrustedMismatch: naming the node's file and what differs (both values).
    """
    raw, package = node["model"], node["trust"]
    for cls in _classes(model):
        module = cls.__module__
        if not (module == "keras" or module.startswith(("keras.", f"{package}.")) or module == package):
            raise TrustedMismatch(f"`{raw}` loaded a layer of class `{module}.{cls.__name__}`, outside `{package}`")
    given = model.input if isinstance(model.input, dict) else None
    if given is not None and set(given) != set(sub.inputs):
        raise TrustedMismatch(
            f"`{raw}` takes inputs {', '.join(f'`{n}`' for n in given)}; the node gives "
            f"{', '.join(f'`{n}`' for n in sub.inputs)}"
        )
    if model.count_params() != sub.params:
        raise TrustedMismatch(
            f"`{raw}` has {model.count_params():,} parameters once loaded; its weights file stores {sub.params:,}"
        )
    got = _output_shapes(keras, model, sub)
    for name, want in sub.outputs.items():
        if name not in got:
            raise TrustedMismatch(f"`{raw}` has no output `{name}`; its outputs: {', '.join(f'`{n}`' for n in got)}")
        if got[name] != want:
            raise TrustedMismatch(
                f"`{raw}` output `{name}` is declared {fmt_shape(want)} in `shapes`, "
                f"but the loaded model gives {fmt_shape(got[name])}"
            )


def _output_shapes(keras: Any, model: Any, sub: SubModel) -> dict[str, Shape]:
    """The model's output shapes when called on the node's input shapes (its own input dtypes)."""
    specs = model.input if isinstance(model.input, dict) else dict(zip(sub.inputs, model.inputs, strict=False))
    given = {
        name: keras.Input(batch_shape=tuple(shape), dtype=specs[name].dtype if name in specs else None, name=name)
        for name, shape in sub.inputs.items()
    }
    arg: Any = given if isinstance(model.input, dict) else list(given.values())
    out = model(arg[0] if isinstance(arg, list) and len(arg) == 1 else arg)
    if isinstance(out, dict):
        return {str(k): tuple(v.shape) for k, v in out.items()}
    outs = list(out) if isinstance(out, (list, tuple)) else [out]
    names = list(sub.outputs) if len(outs) == 1 and len(sub.outputs) == 1 else list(model.output_names)
    return {str(n): tuple(t.shape) for n, t in zip(names, outs, strict=False)}
