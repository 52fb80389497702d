"""A weights file, read as HDF5 metadata only (h5py, which does not import TensorFlow; no data is read).

Refused: external links and soft links, datasets with external storage or
virtual datasets (which read other files), data that is not plain numbers,
more objects or nesting than any Keras model writes, and declared sizes out
of proportion to the file (a chunked dataset can declare a terabyte and
store nothing; Keras would allocate it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, BinaryIO

from ...errors import RuleError
from .base import MAX_H5_DEPTH, MAX_H5_OBJECTS, RESAVE


@dataclass(frozen=True)
class Weights:
    """What a weights file stores: values per top-level layer group, values in all, declared bytes."""

    per_layer: dict[str, int]
    values: int
    data_bytes: int
    file_bytes: int


def inspect_h5(fileobj: BinaryIO, file_bytes: int, label: str, key: str) -> Weights:
    """Walk an HDF5 weights file's metadata (no data is read) and refuse what Keras should not be given.

    Raises:
        RuleError: naming the object at fault (see the module doc).
    """
    import h5py
    from h5py import h5o

    per_layer: dict[str, int] = {}
    variables: dict[str, list[str]] = {}
    values = data_bytes = 0
    with h5py.File(fileobj, "r") as h5:
        links = _links(h5, label, key)
        for raw, _ in links:
            path = raw.decode("utf-8", "replace")
            obj = h5o.open(h5.id, raw)
            if isinstance(obj, h5py.h5g.GroupID):
                continue
            size, itemsize = _dataset_size(obj, path, label, key)
            data_bytes += size * itemsize
            if data_bytes > file_bytes:
                what = f"{size * itemsize:,} bytes" if size * itemsize > file_bytes else "more bytes"
                raise RuleError(
                    f"`{label}`'s weights file declares {what} of data (at `{path[:120]}`) "
                    f"than its {file_bytes:,} bytes can hold",
                    key,
                    "Keras stores weights uncompressed, so their data fits in the file; " + RESAVE,
                )
            if path.startswith("layers/"):
                values += size
                top = path.split("/")[1]
                per_layer[top] = per_layer.get(top, 0) + size
                group, _, index = path.rpartition("/")
                variables.setdefault(group, []).append(index)
    _numbered(variables, label, key)
    return Weights(per_layer, values, data_bytes, file_bytes)


def _numbered(variables: dict[str, list[str]], label: str, key: str) -> None:
    """Each group's variables are Keras's ``vars/0`` … ``vars/N-1``, as Keras reads them back one by one.

    Raises:
        RuleError: a variable stored outside a ``vars`` group, or numbered with a gap.
    """
    for group, names in variables.items():
        wanted = [str(i) for i in range(len(names))]
        if not group.endswith("/vars") or sorted(names, key=lambda n: (len(n), n)) != wanted:
            raise RuleError(
                f"`{label}`'s weights file stores {', '.join(sorted(names)[:4])} in `{group[:120]}`; "
                f"Keras reads a layer's variables from `vars/0` to `vars/{len(names) - 1}`",
                key,
                RESAVE,
            )


def _links(h5: Any, label: str, key: str) -> list[tuple[bytes, int]]:
    """Every link of the file (recursing through hard links only), each a hard link, none nested too deep."""
    from h5py import h5l

    links: list[tuple[bytes, int]] = []

    def on_link(name: bytes, info: Any) -> Any:
        links.append((name, info.type))
        return None if len(links) <= MAX_H5_OBJECTS else True  # anything but None stops the visit

    h5.id.links.visit(on_link, info=True)
    if len(links) > MAX_H5_OBJECTS:
        raise RuleError(f"`{label}`'s weights file holds more objects than any Keras model writes", key)
    for raw, kind in links:
        path = raw.decode("utf-8", "replace")
        if kind != h5l.TYPE_HARD:
            what = {h5l.TYPE_EXTERNAL: "an external link", h5l.TYPE_SOFT: "a soft link"}.get(kind, "a custom link")
            raise RuleError(
                f"`{label}`'s weights file has {what} at `{path[:120]}`",
                key,
                "Keras writes none; an external link reads another file. " + RESAVE,
            )
        if path.count("/") >= MAX_H5_DEPTH:
            raise RuleError(f"`{label}`'s weights file nests deeper than any Keras model writes", key, RESAVE)
    return links


def _dataset_size(obj: Any, path: str, label: str, key: str) -> tuple[int, int]:
    """A dataset's declared (values, bytes per value); refused unless it stores plain numbers in this file."""
    from h5py import h5d

    if not isinstance(obj, h5d.DatasetID):
        raise RuleError(f"`{label}`'s weights file holds an unknown object at `{path[:120]}`", key, RESAVE)
    plist = obj.get_create_plist()
    if plist.get_external_count():
        raise RuleError(
            f"`{label}`'s weights file stores `{path[:120]}` in external files",
            key,
            "Keras would read those files; " + RESAVE,
        )
    if plist.get_layout() == h5d.VIRTUAL:
        raise RuleError(
            f"`{label}`'s weights file has a virtual dataset at `{path[:120]}`",
            key,
            "a virtual dataset reads other files; " + RESAVE,
        )
    dt = obj.get_type().dtype
    if dt.kind not in "fiub" or dt.itemsize > 8 or dt.subdtype is not None or dt.names:
        raise RuleError(f"`{label}`'s weights file holds `{path[:120]}` of type {dt}, not plain numbers", key, RESAVE)
    dims = obj.get_space().get_simple_extent_dims()
    return (math.prod(dims) if dims else 1), dt.itemsize
