"""Pretrained sub-models: ``model`` nodes, inspected statically without TensorFlow.

A ``model`` node calls another network on its inputs: a Keras ``.keras``
archive, or another fusec spec (optionally with trained weights from a
``.weights.h5`` file or a ``.keras`` archive). ``check`` learns its input and
output shapes and parameter counts without TensorFlow, and inspects every
file Keras will read as fully as Keras will read it:

* a fusec spec is checked recursively (nesting is bounded, cycles refused);
* a ``.keras`` archive is a zip. Its central directory is sized before it is
  parsed, and it may hold only ``config.json``, ``metadata.json`` and
  ``model.weights.h5`` (no assets: Keras extracts an archive with more
  members to the temp folder), each within a size limit, none encrypted;
* every object of ``config.json`` (every dict with a ``class_name``,
  ``module`` or ``registered_name``, at any depth: nested models, wrapped
  and backward layers, initializers, regularizers, constraints, dtype
  policies, the compile config) must be a class of a closed allow-list for
  its module, and no serialized function may appear;
* the archive's functional graph is rebuilt from the layer configs and run
  through fusec's own layer and merge rules (``LAYERS``, ``MERGES``), from
  the declared input shapes: the output shapes and parameter counts are
  computed, never read from the archive's ``build_config`` (which must agree
  with them, since Keras builds each layer from it). A layer class, a config
  setting or a call argument outside fusec's vocabulary is refused;
* the weights file is read as HDF5 metadata only (h5py, which does not
  import TensorFlow): no external links, external storage or virtual
  datasets, numeric data only, declared sizes within the file's size, and
  the stored values must add up, layer by layer, to the computed counts;
* a ``weights`` file for a spec sub-model gets the same inspection and must
  fit the spec's layers.

Paths resolve relative to the spec's folder and may not leave it (symlinks
are resolved first) unless a folder is allowed explicitly (``--allow-dir``).
At build time archives load with Keras's ``safe_mode=True``
(``fusec.keras.submodel``).

One concern a module: ``base`` (limits, the ``SubModel`` record),
``members`` (the zip), ``classes`` (the allow-list scan), ``settings`` (layer
configs in fusec's terms), ``graph`` and ``parse`` (the functional graph),
``run`` (the graph through fusec's rules), ``h5`` (the weights file),
``inspect`` (a whole archive; a spec's weights file) and ``resolve`` (model
nodes, the per-check caches, the files a check reads).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING

from ...lazy import lazy_names
from .base import (
    MAX_ARCHIVE_BYTES,
    MAX_CONFIG_BYTES,
    MAX_CONFIG_VALUES,
    MAX_H5_DEPTH,
    MAX_H5_OBJECTS,
    MAX_INFLATED,
    MAX_MEMBERS,
    MAX_METADATA_BYTES,
    MAX_NESTING,
    MAX_NODES,
    MAX_WORK,
    SubModel,
)
from .resolve import CheckNested, ModelContext, infer_model_node, input_files, resolve_path

if TYPE_CHECKING:
    from .classes import scan_config
    from .h5 import Weights, inspect_h5
    from .inspect import KerasArchive, inspect_archive, inspect_keras, inspect_weights


def _classes() -> ModuleType:
    from . import classes

    return classes


def _h5() -> ModuleType:
    from . import h5

    return h5


def _inspect() -> ModuleType:
    from . import inspect

    return inspect


#: Names whose modules load on first use (a closed table of static imports): the archive reader
#: (zip, allow-list, graph, HDF5) is needed only by a spec with a `model` node, so ``import fusec``
#: and most checks skip it.
_LAZY: dict[str, Callable[[], ModuleType]] = {
    "scan_config": _classes,
    "Weights": _h5,
    "inspect_h5": _h5,
    "KerasArchive": _inspect,
    "inspect_archive": _inspect,
    "inspect_keras": _inspect,
    "inspect_weights": _inspect,
}


__getattr__ = lazy_names(__name__, _LAZY, globals())


__all__ = [
    "MAX_ARCHIVE_BYTES",
    "MAX_CONFIG_BYTES",
    "MAX_CONFIG_VALUES",
    "MAX_H5_DEPTH",
    "MAX_H5_OBJECTS",
    "MAX_INFLATED",
    "MAX_MEMBERS",
    "MAX_METADATA_BYTES",
    "MAX_NESTING",
    "MAX_NODES",
    "MAX_WORK",
    "CheckNested",
    "KerasArchive",
    "ModelContext",
    "SubModel",
    "Weights",
    "infer_model_node",
    "input_files",
    "inspect_archive",
    "inspect_h5",
    "inspect_keras",
    "inspect_weights",
    "resolve_path",
    "scan_config",
]
