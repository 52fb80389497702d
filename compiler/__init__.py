"""fusec: compile JSON graph specs into Keras models, SavedModels and diagrams.

The pipeline, one subpackage per part (docs/design.md draws the tree)::

    spec/    load_spec -> schema_problems -> expand_blocks -> build_graph
    static/  infer_shapes -> check_spec -> estimate (budget)        (no TensorFlow)
    keras/   build_model -> save_artifacts                          (compile)
    render/  render                                                 (diagram: no TensorFlow)
    cli/     one module per command

Importing ``fusec`` does not import TensorFlow, nor the checker: ``Spec``,
``load_spec``, ``Checked`` and ``check_spec`` load on first use (``_LAZY``),
so ``import fusec.X`` of a light module (``fusec.errors``, ``fusec.version``,
``fusec.spec.schema.names``...) costs only that module.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .errors import FusecError
from .lazy import lazy_names
from .version import __version__

if TYPE_CHECKING:
    from .spec.load import Spec, load_spec
    from .static.check import Checked, check_spec


def _load() -> ModuleType:
    from .spec import load

    return load


def _check() -> ModuleType:
    from .static import check

    return check


#: Public names whose modules load on first use: a closed table of static imports (nothing imported by name).
_LAZY: dict[str, Callable[[], ModuleType]] = {
    "Spec": _load,
    "load_spec": _load,
    "Checked": _check,
    "check_spec": _check,
}


__getattr__ = lazy_names(__name__, _LAZY, globals())


__all__ = ["Checked", "FusecError", "Spec", "__version__", "check_spec", "compile_spec", "load_model", "load_spec"]


def compile_spec(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    fmt: str = "all",
    max_params: int | None = None,
    trust: tuple[str, ...] = (),
) -> object:
    """Check, build and save a spec in one call, as ``fusec compile`` does.

    Args:
        path: the spec file.
        out: the output folder (replaced atomically on success, and only if
            fusec wrote it).
        fmt: ``all``, ``savedmodel`` or ``keras``.
        max_params: parameter budget (default: ``fusec.static.budget.DEFAULT_MAX_PARAMS``).
        trust: packages whose classes trusted `model` nodes may load (``--trust``; none by default).

    Returns:
        The ``Artifacts`` written.

    Raises:
        FusecError: the spec is invalid, Keras refused it, or the output
            cannot be written.
    """
    from pathlib import Path

    from .keras.pipeline import compile_checked
    from .static.archive.trusted import trusting
    from .static.budget import DEFAULT_MAX_PARAMS
    from .static.check import check_spec

    with trusting(trust):
        checked = check_spec(Path(path), max_params or DEFAULT_MAX_PARAMS)
        return compile_checked(checked, Path(out), fmt)


def load_model(path: str | os.PathLike[str], compile: bool = True) -> Any:
    """Load a compiled model's ``.keras`` archive, with fusec's layers registered (TensorFlow imported).

    See ``fusec.keras.load.load_model``.

    Example:
        >>> model = fusec.load_model("out/gated_experts")  # doctest: +SKIP
        >>> model.fit(x, y, epochs=5)  # doctest: +SKIP
    """
    from .keras.load import load_model as load

    return load(path, compile)
