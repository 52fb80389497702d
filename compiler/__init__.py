"""fusec: compile JSON graph specs into Keras models, SavedModels and diagrams.

The pipeline, one module per stage::

    load_spec -> validate_schema -> build_graph -> infer_shapes   (check: no TensorFlow)
      -> build_model -> save_artifacts                             (compile)
      -> render                                                    (diagram: no TensorFlow)

Importing ``fusec`` does not import TensorFlow.
"""

from __future__ import annotations

from .check import Checked, check_spec
from .errors import FusecError
from .load import Spec, load_spec

__version__ = "0.1.0"

__all__ = ["Checked", "FusecError", "Spec", "__version__", "check_spec", "compile_spec", "load_spec"]


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
    from .build import build_model
    from .save import check_destination, save_artifacts
    from .shapes import DEFAULT_MAX_PARAMS

    checked = check_spec(path, max_params or DEFAULT_MAX_PARAMS)
    from pathlib import Path

    check_destination(Path(out).absolute())  # fail before paying for TensorFlow
    model = build_model(checked)
    return save_artifacts(model, checked, out, fmt)
