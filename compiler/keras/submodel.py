"""Loading a ``model`` node's sub-model for the build: archives in Keras's safe mode, specs built from their check.

The static check (``fusec.static.archive``) has already inspected every file
Keras reads here; a spec sub-model's own check result rides on its
``SubModel`` (``sub.checked``), so it is built without being checked again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..static.archive import ModelContext, SubModel, resolve_path


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

    model = _load_archive(keras, sub) if sub.kind == "keras" else _build_spec(keras, node, sub, ctx, build_nested)
    model.name = name  # the sub-model appears in the parent under its node id
    model.trainable = node.get("trainable", True)
    return model


def _load_archive(keras: Any, sub: SubModel) -> Any:
    """A ``.keras`` archive in Keras's safe mode; a Sequential wrapped in a graph with a named input."""
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
        if weights.suffix == ".keras":
            trained = keras.saving.load_model(weights, compile=False, safe_mode=True)
            model.set_weights(trained.get_weights())
        else:
            model.load_weights(weights)
    return model
