"""fusec: compile JSON graph specs into Keras models, SavedModels and diagrams.

The pipeline, one module per stage::

    load_spec -> validate_schema -> build_graph -> infer_shapes   (check: no TensorFlow)
      -> build_model -> save_artifacts                             (compile)
      -> render                                                    (diagram: no TensorFlow)

Importing ``fusec`` does not import TensorFlow.
"""

from __future__ import annotations

import os
from typing import Any

from .errors import FusecError
from .spec.load import Spec, load_spec
from .static.check import Checked, check_spec

__version__ = "0.1.0"

__all__ = ["Checked", "FusecError", "Spec", "__version__", "check_spec", "compile_spec", "load_model", "load_spec"]


def compile_spec(path: str, out: str, fmt: str = "all", max_params: int | None = None) -> object:
    """Check, build and save a spec in one call.

    Args:
        path: the spec file.
        out: the output folder (replaced atomically on success).
        fmt: ``all``, ``savedmodel`` or ``keras``.
        max_params: parameter budget (default: fusec.shapes.DEFAULT_MAX_PARAMS).

    Returns:
        The ``fusec.save.Artifacts`` written.

    Raises:
        FusecError: the spec is invalid, Keras refused it, or the output
            cannot be written.
    """
    from .keras.build import build_model
    from .keras.save import check_destination, save_artifacts
    from .static.shapes import DEFAULT_MAX_PARAMS

    checked = check_spec(path, max_params or DEFAULT_MAX_PARAMS)
    from pathlib import Path

    check_destination(Path(out).absolute())  # fail before paying for TensorFlow
    model = build_model(checked)
    return save_artifacts(model, checked, out, fmt)


def load_model(path: str | os.PathLike[str], compile: bool = True) -> Any:
    """Load a compiled model's ``.keras`` archive, with fusec's layers registered.

    A ``.keras`` archive of a spec with a ``weighted`` or ``gated`` merge names
    fusec's own layer classes (``fusec>WeightedMerge``, ``fusec>GatedMerge``),
    which Keras can rebuild only once they are registered; this imports
    ``fusec.fusion`` (and so TensorFlow) to register them, then loads the
    archive with Keras's ``safe_mode=True``.

    Args:
        path: a folder written by ``fusec compile`` (its ``fusec.json`` names
            the ``<name>.keras`` archive inside) or a ``.keras`` file.
        compile: restore the loss, metrics and optimizer saved with the model,
            so ``fit`` continues training (False: inference only).

    Returns:
        The ``keras.Model``.

    Raises:
        OutputError: ``path`` does not exist, is a folder that is not a
            ``fusec compile`` output or holds no ``.keras`` archive, is not a
            ``.keras`` file, or Keras cannot load it.

    Example:
        >>> model = fusec.load_model("out/gated_experts")  # doctest: +SKIP
        >>> model.fit(x, y, epochs=5)  # doctest: +SKIP
    """
    import json
    import re
    from pathlib import Path

    from .errors import OutputError

    given = Path(path)
    usage = "pass a folder written by `fusec compile` or a .keras file"

    def fail(message: str, hint: str = usage) -> OutputError:
        return OutputError.single((), message, hint, "output")

    if not given.exists():
        raise fail(f"`{given}` does not exist")
    archive = given
    if given.is_dir():
        try:
            with (given / "fusec.json").open("rb") as fh:
                text = fh.read((1 << 20) + 1)
            name = json.loads(text.decode("utf-8")).get("name") if len(text) <= 1 << 20 else None
        except (OSError, ValueError, AttributeError, RecursionError):
            name = None  # unreadable, over 1 MiB, not JSON, not an object, or nested past Python's limit
        # The name must be a plain model name, so a manifest cannot point outside the folder.
        if not (isinstance(name, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", name)):
            raise fail(f"`{given}` is not a fusec compile output (no readable fusec.json naming the model)")
        archive = given / f"{name}.keras"
        if not archive.is_file():
            raise fail(
                f"`{given}` holds no `{name}.keras` archive",
                "compile with `--format all` or `--format keras` to write one",
            )
    elif given.suffix != ".keras" or not given.is_file():
        raise fail(f"`{given}` is not a .keras archive")

    from .keras import fusion  # noqa: F401  (registers fusec>WeightedMerge and fusec>GatedMerge with Keras)
    from .keras.build import deep_recursion
    from .keras.tf import import_keras

    keras = import_keras()
    try:
        with deep_recursion(20_000):  # Keras rebuilds a deep functional graph recursively
            return keras.models.load_model(str(archive), compile=compile, safe_mode=True)
    except Exception as exc:  # a damaged archive, or one naming classes nobody registered
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise fail(
            f"`{archive}` cannot be loaded by Keras: {first}", "recompile the spec with `fusec compile`"
        ) from exc
