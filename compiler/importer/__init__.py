"""``fusec import``: a Keras model (a ``.keras`` archive, or ``keras.applications.NAME``) as a fusec spec.

An archive is read without TensorFlow by the static archive reader
(``static.archive``: its members, every class of its config, its graph run
through fusec's rules), written as a spec (``emit``), and its weights copied
from ``model.weights.h5`` into ``<stem>.weights.npz`` beside the spec
(``weights``), both files written atomically (``write``). A
``keras.applications`` model is built with ``weights=None``, saved to a
private temporary folder and imported the same way (``apps``).
"""

from __future__ import annotations

from pathlib import Path

from .report import ImportRefused, ImportReport


def import_source(
    source: str,
    out: Path,
    *,
    blocks: bool = False,
    input_shape: tuple[int, ...] | None = None,
    classes: int | None = None,
    name: str | None = None,
) -> ImportReport:
    """Import a Keras model as a fusec spec (``out``) and its weights (``<stem>.weights.npz`` beside it).

    Args:
        source: a ``.keras`` archive's path, or ``keras.applications.NAME``.
        out: the spec file to write.
        blocks: fold repeated sub-graphs into blocks (``fusec.spec.fold``).
        input_shape: a ``keras.applications`` model's input shape.
        classes: a ``keras.applications`` model's class count.
        name: the spec's model name (default: the Keras model's).

    Raises:
        ImportRefused: the source cannot be read or expressed (every
            unsupported layer and setting listed); nothing is written.
        OutputError: an output cannot be written; nothing is written.
    """
    from .apps import APPLICATIONS_PREFIX, application_archive
    from .build import import_archive

    if source.startswith(APPLICATIONS_PREFIX):
        with application_archive(source, input_shape, classes) as path:
            return import_archive(path, source, out, blocks=blocks, name=name)
    if input_shape is not None or classes is not None:
        raise ImportRefused.single(
            (), "--input-shape and --classes apply to keras.applications models only", "", "usage", source
        )
    return import_archive(Path(source), source, out, blocks=blocks, name=name)


__all__ = ["ImportRefused", "ImportReport", "import_source"]
