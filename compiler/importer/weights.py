"""An archive's ``model.weights.h5`` read as data (h5py, no TensorFlow) and keyed for the spec's weights file.

Keys are ``<node or shared id>/<k>``, ``k`` the variable's index in Keras's
``layer.weights`` order: a layer's own ``vars`` first, then its sub-layers'
(an RNN's cell; attention's query, key, value and output projections).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import Problem
from .emit import Placed
from .report import ImportRefused

#: Sub-layer groups in the order ``layer.weights`` lists them; any other follows in name order.
_SUBLAYER_ORDER = ("forward_layer", "backward_layer", "cell", "_query_dense", "_key_dense", "_value_dense",
                   "_output_dense")  # fmt: skip


def _arrays(group: Any) -> list[np.ndarray]:
    """A layer group's variables in ``layer.weights`` order."""
    out: list[np.ndarray] = []
    if "vars" in group:
        vars_ = group["vars"]
        for i in range(len(vars_)):
            out.append(np.asarray(vars_[str(i)][()]))
    subs = [k for k in group if k not in ("vars", "layers")]
    subs.sort(key=lambda k: (_SUBLAYER_ORDER.index(k) if k in _SUBLAYER_ORDER else len(_SUBLAYER_ORDER), k))
    for k in subs:
        out.extend(_arrays(group[k]))
    return out


def read_weights(data: bytes, placed: Sequence[Placed], label: str) -> dict[str, np.ndarray]:
    """Each placed layer's arrays under its keys; a layer whose stored values differ from its count is refused.

    Raises:
        ImportRefused: naming every layer whose stored weights do not fit.
    """
    import h5py

    arrays: dict[str, np.ndarray] = {}
    problems = []
    with h5py.File(io.BytesIO(data), "r") as fh:
        for place in placed:
            group = fh.get(place.group)
            found = _arrays(group) if group is not None else []
            stored = sum(int(a.size) for a in found)
            if stored != place.params or any(a.dtype.kind not in ("f", "i", "u") for a in found):
                problems.append(
                    Problem(
                        (),
                        f"layer `{place.layer[:64]}` needs {place.params:,} numeric weights; group "
                        f"`{place.group[:80]}` of model.weights.h5 holds {stored:,}",
                        "the archive's weights do not belong to its config: re-save it with model.save",
                        "import",
                    )
                )
                continue
            for k, a in enumerate(found):
                arrays[f"{place.key}/{k}"] = a
    if problems:
        raise ImportRefused(problems, file=label)
    return arrays


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """The arrays as an uncompressed ``.npz`` (a zip of ``.npy`` files; no pickled objects)."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()
