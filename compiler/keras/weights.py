"""The spec's top-level ``weights`` file set on the built model (``layer.set_weights``), before anything is saved.

The file was checked by ``fusec check`` (``static.weightsfile``); it is read
here as data (``np.load`` with ``allow_pickle=False``).
"""

from __future__ import annotations

from typing import Any

from ..errors import BuildError, Problem
from ..static.check import Checked


def _arrays(checked: Checked) -> dict[str, dict[int, Any]]:
    """Node (or shared) id -> k -> array, from the spec's weights file."""
    import numpy as np

    from ..static.archive import resolve_path

    raw = str(checked.spec.doc["weights"])
    allowed = checked.models.allowed if checked.models is not None else ()
    path = resolve_path(raw, checked.spec.path.parent, allowed, "weights")
    out: dict[str, dict[int, Any]] = {}
    with np.load(path, allow_pickle=False) as npz:
        for key in npz.files:
            node, _, k = key.rpartition("/")
            out.setdefault(node, {})[int(k)] = npz[key]
    return out


def set_weights(model: Any, checked: Checked) -> None:
    """Set each node's (or shared layer's) weights from the spec's weights file, in key order.

    Raises:
        BuildError: Keras refuses an array's shape; naming the node, the variable and both shapes.
    """
    if "weights" not in checked.spec.doc:
        return
    problems = []
    for node, arrays in _arrays(checked).items():
        layer = model.get_layer(node)
        values = [arrays[k] for k in sorted(arrays)]
        variables = layer.weights
        for var, value in zip(variables, values, strict=False):
            if tuple(var.shape) != tuple(value.shape):
                problems.append(
                    Problem(
                        ("weights",),
                        f"node `{node}`: variable `{var.path}` has shape {tuple(var.shape)} but the weights file "
                        f"gives {tuple(value.shape)}",
                        "re-import the model with fusec import",
                        "weights",
                    )
                )
        if len(variables) != len(values):
            problems.append(
                Problem(
                    ("weights",),
                    f"node `{node}` has {len(variables)} variables but the weights file gives {len(values)} arrays",
                    "re-import the model with fusec import",
                    "weights",
                )
            )
        if not problems:
            layer.set_weights(values)
            # An adapted layer's constants are made from its state when it is built, and remade from the
            # new values only by finalize_state (what Keras's own loading calls): else a SavedModel traced
            # afterwards serves the initial state (Normalization's mean 0, variance 1).
            finalize = getattr(layer, "finalize_state", None)
            if callable(finalize):
                finalize()
    if problems:
        raise BuildError(problems, file=checked.spec.file)
