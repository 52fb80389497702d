"""Load a compiled model back: ``fusec.load_model``, and read what it learned (``learned_weights``)."""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any

from ..errors import FusecError, OutputError, did_you_mean, printable, quote_names

_USAGE = "pass a folder written by `fusec compile` or a .keras file"
_MANIFEST_LIMIT = 1 << 20  # a fusec.json manifest is a few hundred bytes; more is not one of ours


def _fail(message: str, hint: str = _USAGE) -> OutputError:
    return OutputError.single((), message, hint, "output")


def _manifest_name(folder: Path) -> str | None:
    """The model name a compile output's ``fusec.json`` records, or None when it cannot be read."""
    try:
        with (folder / "fusec.json").open("rb") as fh:
            text = fh.read(_MANIFEST_LIMIT + 1)
        name = json.loads(text.decode("utf-8")).get("name") if len(text) <= _MANIFEST_LIMIT else None
    except (OSError, ValueError, AttributeError, RecursionError):
        name = None  # unreadable, over 1 MiB, not JSON, not an object, or nested past Python's limit
    # The name must be a plain model name, so a manifest cannot point outside the folder.
    return name if isinstance(name, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", name) else None


def archive_path(path: str | os.PathLike[str]) -> Path:
    """The ``.keras`` archive ``path`` names: itself, or the one a compile output folder holds.

    Raises:
        OutputError: ``path`` does not exist, is a folder that is not a
            ``fusec compile`` output or holds no archive, or is not a ``.keras`` file.
    """
    given = Path(path)
    if not given.exists():
        raise _fail(f"`{given}` does not exist")
    if given.is_dir():
        name = _manifest_name(given)
        if name is None:
            raise _fail(f"`{given}` is not a fusec compile output (no readable fusec.json naming the model)")
        archive = given / f"{name}.keras"
        if not archive.is_file():
            raise _fail(
                f"`{given}` holds no `{name}.keras` archive",
                "compile with `--format all` or `--format keras` to write one",
            )
        return archive
    if given.suffix != ".keras" or not given.is_file():
        raise _fail(f"`{given}` is not a .keras archive")
    return given


def load_model(path: str | os.PathLike[str], compile: bool = True) -> Any:
    """Load a compiled model's ``.keras`` archive, with fusec's layers registered.

    A ``.keras`` archive of a spec with a ``weighted`` or ``gated`` merge names
    fusec's own layer classes (``fusec>WeightedMerge``, ``fusec>GatedMerge``),
    which Keras can rebuild only once they are registered; this imports
    ``fusec.keras.fusion`` (and so TensorFlow) to register them, then loads the
    archive with Keras's ``safe_mode=True``.

    Args:
        path: a folder written by ``fusec compile`` (its ``fusec.json`` names
            the ``<name>.keras`` archive inside) or a ``.keras`` file.
        compile: restore the loss, metrics and optimizer saved with the model,
            so ``fit`` continues training (False: inference only).

    Returns:
        The ``keras.Model``.

    Raises:
        OutputError: ``path`` is not a compile output or a ``.keras`` file
            (see ``archive_path``), or Keras cannot load it.
    """
    archive = archive_path(path)
    if not zipfile.is_zipfile(archive):  # Keras would call it missing ("File not found")
        raise _fail(
            f"`{printable(str(archive))}` is not a .keras archive (not a zip file)",
            "recompile the spec with `fusec compile`",
        )
    from . import fusion, text  # noqa: F401  (registers fusec's own layers with Keras)
    from .build import deep_recursion
    from .tf import import_keras

    keras = import_keras()
    try:
        with deep_recursion(20_000):  # Keras rebuilds a deep functional graph recursively
            return keras.models.load_model(str(archive), compile=compile, safe_mode=True)
    except Exception as exc:  # a damaged archive, or one naming classes nobody registered
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise _fail(
            f"`{archive}` cannot be loaded by Keras: {first}", "recompile the spec with `fusec compile`"
        ) from exc


def _iter_layers(model: Any) -> Any:
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):  # a nested model
            yield from _iter_layers(layer)


def load_keras(path: str | Path) -> Any:
    """Load the ``.keras`` archive of a compiled output folder (or a ``.keras`` file), for inference.

    ``fusec.load_model`` without the training configuration: see there.
    """
    return load_model(path, compile=False)


def learned_weights(model: Any, node: str | None = None) -> dict[str, dict[str, float | list[float]]]:
    """The normalised weights of every ``weighted`` merge, keyed by node id, then input id.

    Args:
        model: a ``keras.Model`` built by fusec, or a compiled output folder or
            ``.keras`` file (loaded with ``load_keras``).
        node: only this merge node.

    Returns:
        ``{node_id: {input_id: weight}}``: a float per input, or a list of F
        floats with ``per_feature``. A repeated input gets ``id#2``, ``id#3``...

    Raises:
        FusecError: ``node`` is not a weighted merge of the model, or no
            archive was found.

    Example:
        >>> learned_weights("out/late_fusion_weighted")  # doctest: +SKIP
        {'fuse': {'image_probs': 0.62, 'text_probs': 0.38}}
    """
    if isinstance(model, (str, Path)):
        model = load_keras(model)
    from .fusion import WeightedMerge
    from .tf import import_keras

    keras = import_keras()
    merges = {layer.name: layer for layer in _iter_layers(model) if isinstance(layer, WeightedMerge)}
    if node is not None:
        if node not in merges:
            near = did_you_mean(node, list(merges))
            hint = (
                f"did you mean `{near[0]}`?"
                if near
                else f"weighted merges: {quote_names(sorted(merges))}"
                if merges
                else "the model has no weighted merges"
            )
            raise FusecError.single((), f"the model has no weighted merge `{node}`", hint, "reference")
        merges = {node: merges[node]}
    out: dict[str, dict[str, float | list[float]]] = {}
    for name, layer in merges.items():
        weights = keras.ops.convert_to_numpy(layer.normalized_weights())
        ids = layer.input_ids or [f"input_{i}" for i in range(weights.shape[0])]
        per_input: dict[str, float | list[float]] = {}
        for i, iid in enumerate(ids):
            key, k = iid, 1
            while key in per_input:
                k += 1
                key = f"{iid}#{k}"
            row = weights[i]
            per_input[key] = [float(v) for v in row] if layer.per_feature else float(row)
        out[name] = per_input
    return out
