"""``keras.applications.NAME``: built with ``weights=None``, saved to a private temporary folder, imported from there.

This path imports TensorFlow (an archive's import does not).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import FunctionType
from typing import Any

from .report import ImportRefused

APPLICATIONS_PREFIX = "keras.applications."
_NAME = re.compile(r"[A-Z][A-Za-z0-9]{1,40}")


def _build(name: str, input_shape: tuple[int, ...] | None, classes: int | None) -> object:
    """The application model, random weights; a refusal naming the application and Keras's reason."""
    from ..keras.tf import import_keras

    keras = import_keras()
    factory: Any = getattr(keras.applications, name, None) if _NAME.fullmatch(name) else None
    if factory is None or not isinstance(factory, FunctionType):
        raise ImportRefused.single(
            (),
            f"keras.applications has no model `{name[:64]}`",
            "name a model function, e.g. keras.applications.ResNet50",
            "import",
            f"{APPLICATIONS_PREFIX}{name[:64]}",
        )
    kwargs: dict[str, object] = {"weights": None}
    if input_shape is not None:
        kwargs["input_shape"] = tuple(input_shape)
    if classes is not None:
        kwargs["classes"] = classes
    try:
        return factory(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ImportRefused.single(
            (),
            f"Keras refuses to build it: {str(exc)[:300]}",
            "give --input-shape H,W,C within what the model takes, and --classes N",
            "import",
            f"{APPLICATIONS_PREFIX}{name}",
        ) from None


@contextlib.contextmanager
def application_archive(source: str, input_shape: tuple[int, ...] | None, classes: int | None) -> Iterator[Path]:
    """The application saved as a ``.keras`` archive in a private temporary folder, removed afterwards."""
    name = source[len(APPLICATIONS_PREFIX) :]
    model = _build(name, input_shape, classes)
    folder = Path(tempfile.mkdtemp(prefix="fusec-import-"))  # mode 0700: private
    try:
        path = folder / f"{name}.keras"
        model.save(path)  # type: ignore[attr-defined]
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)
