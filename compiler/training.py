"""Static checks of what would break training or serving, after the shapes stage.

A spec can be well formed, with every shape fitting, and still build a model
that cannot do its job: float ids fed to an ``Embedding`` (the serving
signature then takes float32 ids), a padding mask that a ``Flatten`` silently
throws away, a loss that does not fit its output. These checks walk the
checked graph once, in topological order, carrying two facts per node: the
element type of its output and whether a padding mask rides on it.

Some findings are errors (the spec is refused), the rest warnings (shown,
counted, refused with ``--strict``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import networkx as nx

from .errors import PathPart, Problem
from .shapes import NodeInfo, output_shape

#: Layers whose output has the element type of their input (they move values, never compute on them).
KEEPS_DTYPE = frozenset({"Reshape", "Flatten", "Permute", "RepeatVector", "Cropping2D", "ZeroPadding2D"})
INTEGER_DTYPES = frozenset({"int32", "int64", "uint8"})

#: How a layer treats a padding mask on its input (Keras's ``supports_masking``
#: and ``compute_mask``; tests/test_training.py checks the table against Keras):
#: "keep" passes it on, "use" consumes it (its output has no mask), any layer
#: not listed drops it, so padded positions count as data from there on.
MASKING: Mapping[str, str] = {
    "Activation": "keep",
    "BatchNormalization": "keep",
    "Dense": "keep",
    "Dropout": "keep",
    "LayerNormalization": "keep",
    "Normalization": "keep",
    "ReLU": "keep",
    "Rescaling": "keep",
    "Softmax": "keep",
    "SpatialDropout1D": "keep",
    "SpatialDropout2D": "keep",
    "Attention": "keep",
    "MultiHeadAttention": "keep",
    "GlobalAveragePooling1D": "use",
    "LSTM": "rnn",
    "GRU": "rnn",
    "SimpleRNN": "rnn",
    "Bidirectional": "rnn",
}
#: Merges that combine their inputs' masks (Keras's merge layers); fusec's own fusion layers drop them.
MASKED_MERGES = frozenset({"concat", "add", "subtract", "multiply", "average", "maximum", "minimum"})

OutputCheck = Callable[..., list[Problem]]


def _layer_of(g: nx.DiGraph, nid: str) -> tuple[str | None, Mapping[str, Any]]:
    """The layer type and config a node runs (a shared call runs its shared layer's)."""
    attrs = g.nodes[nid]
    spec, kind = attrs["spec"], attrs["kind"]
    if kind == "layer":
        return spec["layer"], spec.get("config", {})
    if kind == "shared":
        layer = g.graph["shared"][spec["shared"]]
        return layer["layer"], layer.get("config", {})
    return None, {}


def _config_path(g: nx.DiGraph, nid: str) -> tuple[PathPart, ...]:
    attrs = g.nodes[nid]
    if attrs["kind"] == "shared":
        sid = attrs["spec"]["shared"]
        return (*g.graph["shared_origins"].get(sid, ("shared", sid)), "config")
    return (*attrs["path"], "config")


def _dtype(g: nx.DiGraph, nid: str, info: Mapping[str, NodeInfo], dtypes: Mapping[str, str]) -> str:
    attrs = g.nodes[nid]
    if attrs["kind"] == "input":
        return info[nid].op
    layer, _ = _layer_of(g, nid)
    refs = attrs["refs"]
    if layer in KEEPS_DTYPE and refs:
        return dtypes.get(refs[0].source.partition(".")[0], "float32")
    return "float32"  # every other layer computes in Keras's default float type


def _mask_origin(g: nx.DiGraph, nid: str, carried: str | None) -> str | None:
    """The Embedding whose padding mask rides on ``nid``'s output (None: no mask), given the one that reached it."""
    attrs = g.nodes[nid]
    layer, config = _layer_of(g, nid)
    if layer == "Embedding":
        return nid if config.get("mask_zero", False) else None
    if carried is None:
        return None
    if attrs["kind"] == "merge":
        return carried if attrs["spec"]["merge"] in MASKED_MERGES else None
    how = MASKING.get(layer or "")
    if how == "rnn":
        inner = config.get("layer", {}).get("config", {}) if layer == "Bidirectional" else config
        return carried if inner.get("return_sequences", False) else None
    return carried if how == "keep" else None


def training_problems(
    g: nx.DiGraph,
    info: Mapping[str, NodeInfo],
    order: list[str],
    outputs: Mapping[str, Any],
    output_check: OutputCheck | None = None,
) -> list[Problem]:
    """Errors and warnings about what would break training or serving.

    Args:
        g: the checked graph.
        info: static shapes per node.
        order: the nodes in topological order.
        outputs: the spec's ``outputs`` section (blocks expanded).
        output_check: the loss-versus-output check for one output
            (``fusec.losses.output_problems``).

    Returns:
        Problems of severity ``error`` (integer ids that are not integers) and
        ``warning`` (a padding mask dropped, losses that do not fit).
    """
    problems: list[Problem] = []
    dtypes: dict[str, str] = {}
    masks: dict[str, str | None] = {}  # node -> the Embedding whose mask rides on its output
    for nid in order:
        attrs = g.nodes[nid]
        sources = [r.source.partition(".")[0] for r in attrs["refs"]]
        if nid not in info or any(s not in dtypes for s in sources):
            continue  # no shape (its own problem, or an upstream one, is reported): nothing to say
        layer, config = _layer_of(g, nid)
        if layer == "Embedding" and sources and dtypes[sources[0]] not in INTEGER_DTYPES:
            problems.append(_float_ids(g, nid, sources[0], dtypes[sources[0]]))
        carried = next((m for m in (masks.get(s) for s in sources) if m), None)
        if carried is not None and attrs["kind"] in ("layer", "shared") and layer not in MASKING:
            problems.append(_mask_dropped(g, nid, layer or "", carried))
        if carried is not None and attrs["kind"] == "merge" and attrs["spec"]["merge"] not in MASKED_MERGES:
            problems.append(_mask_dropped(g, nid, f"merge {attrs['spec']['merge']}", carried))
        dtypes[nid] = _dtype(g, nid, info, dtypes)
        masks[nid] = _mask_origin(g, nid, carried)
    if output_check is not None:
        for name, ref in g.graph["outputs"].items():
            node, _, port = ref.source.partition(".")
            ports = 1 + len(g.graph["extras"].get(node, ()))
            if node not in info or name not in outputs or (port and not (port.isdigit() and int(port) < ports)):
                continue  # no shape, or a port that does not exist: reported already
            # The producing layer says which activation ends the output; a port (an RNN's state) ends in none known.
            layer, config = _layer_of(g, node) if not port else (None, {})
            shape = output_shape(info, g, ref.source)
            problems.extend(output_check(name, outputs[name], shape, layer, config))
    return problems


def _float_ids(g: nx.DiGraph, nid: str, source: str, dtype: str) -> Problem:
    origin = source
    while g.nodes[origin]["kind"] != "input" and g.nodes[origin]["refs"]:
        origin = g.nodes[origin]["refs"][0].source.partition(".")[0]
    fix = (
        f'declare the input as integer ids: "inputs": {{"{origin}": {{..., "dtype": "int32"}}}}'
        if g.nodes[origin]["kind"] == "input"
        else 'feed it integer ids straight from an input with "dtype": "int32"'
    )
    return Problem(
        (*g.nodes[nid]["path"], "inputs"),
        f"node `{nid}` (Embedding) looks up integer ids, but `{source}` gives {dtype} values: "
        "the served model would take float ids and truncate them",
        fix,
        "dtype",
    )


def _mask_dropped(g: nx.DiGraph, nid: str, what: str, embedding: str) -> Problem:
    return Problem(
        (*g.nodes[nid]["path"], "inputs"),
        f"node `{nid}` ({what}) drops the padding mask of `{embedding}` (an Embedding with "
        "`mask_zero`): from here on, padded positions count as data",
        "consume the mask first with GlobalAveragePooling1D, an RNN or attention, or remove `mask_zero`",
        "mask",
        "warning",
    )
