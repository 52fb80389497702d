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

from ..errors import Problem
from ..vocab.layers import LAYERS
from ..vocab.rule import FLOAT_DTYPES, INTEGER_DTYPES
from .binding import port_index
from .shapes import NodeInfo, Shapes

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
    "PositionEmbedding": "keep",
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


def _dtype(g: nx.DiGraph, nid: str, info: Mapping[str, NodeInfo], dtypes: Mapping[str, str]) -> str:
    """The element type of a node's output at run time (what the served model really gives)."""
    attrs = g.nodes[nid]
    if attrs["kind"] == "input":
        return info[nid].op
    layer, _ = _layer_of(g, nid)
    refs = attrs["refs"]
    if layer is not None and LAYERS[layer].dtypes == "keep" and refs:
        given = dtypes.get(port_index(refs[0].source)[0], "float32")
        return "float32" if given in FLOAT_DTYPES else given  # Keras casts every float input to float32
    return "float32"  # every other layer computes in Keras's default float type


def _dtype_problem(g: nx.DiGraph, nid: str, sources: list[str], dtypes: Mapping[str, str]) -> Problem | None:
    """A node fed values of a type it cannot take (see ``rules.DTYPE_RULES``)."""
    attrs = g.nodes[nid]
    layer, _ = _layer_of(g, nid)
    if layer is not None:
        rule = LAYERS[layer].dtypes
        if rule == "ids":
            bad = next((s for s in sources if dtypes[s] not in INTEGER_DTYPES), None)
            return _float_ids(g, nid, bad, dtypes[bad]) if bad else None
        if rule in ("number", "keep"):
            return None
        subject = f"node `{nid}` ({layer}) computes on floating-point values"
    elif attrs["kind"] == "merge":
        subject = f"merge `{nid}` ({attrs['spec']['merge']}) combines floating-point values"
    else:
        return None  # a sub-model's own inputs say what they take
    bad = next((s for s in sources if dtypes[s] not in FLOAT_DTYPES), None)
    if bad is None:
        return None
    return Problem(
        (*attrs["path"], "inputs"),
        f"{subject}, but `{bad}` gives {dtypes[bad]} values: Keras builds it, then fails when the model is "
        "called or served",
        "make floats first: a Rescaling layer (pixels: scale 0.00392156862745098), a Dense layer, or an "
        'Embedding for ids; or declare the input "dtype": "float32"',
        "dtype",
    )


def _merge_drops_partial_masks(attrs: Mapping[str, Any]) -> bool:
    """Whether a node is an element-wise Keras merge: its output mask is None unless every input has one."""
    return attrs["kind"] == "merge" and attrs["spec"]["merge"] in MASKED_MERGES - {"concat"}


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
    shapes: Shapes,
    order: list[str],
    outputs: Mapping[str, Any],
    output_check: OutputCheck | None = None,
) -> list[Problem]:
    """Errors and warnings about what would break training or serving.

    Args:
        g: the checked graph.
        shapes: the shapes stage's record (nodes that got a shape).
        order: the nodes in topological order.
        outputs: the spec's ``outputs`` section (blocks expanded).
        output_check: the loss-versus-output check for one output
            (``fusec.losses.output_problems``).

    Returns:
        Problems of severity ``error`` (integer ids that are not integers) and
        ``warning`` (a padding mask dropped, losses that do not fit).
    """
    info = shapes.info
    problems: list[Problem] = []
    dtypes: dict[str, str] = {}
    masks: dict[str, str | None] = {}  # node -> the Embedding whose mask rides on its output
    for nid in order:
        attrs = g.nodes[nid]
        sources = [port_index(r.source)[0] for r in attrs["refs"]]
        if nid not in info or any(s not in dtypes for s in sources):
            continue  # no shape (its own problem, or an upstream one, is reported): nothing to say
        layer, config = _layer_of(g, nid)
        wrong_type = _dtype_problem(g, nid, sources, dtypes)
        if wrong_type is not None:
            problems.append(wrong_type)
        carried = next((m for m in (masks.get(s) for s in sources) if m), None)
        if carried is not None and _merge_drops_partial_masks(attrs) and not all(masks.get(s) for s in sources):
            # Keras's element-wise merges keep a mask only when every input has one (concat fills the rest)
            problems.append(_mask_dropped(g, nid, f"merge {attrs['spec']['merge']} (an input without a mask)", carried))
            carried = None
        if carried is not None and attrs["kind"] in ("layer", "shared") and layer not in MASKING:
            problems.append(_mask_dropped(g, nid, layer or "", carried))
        if carried is not None and attrs["kind"] == "merge" and attrs["spec"]["merge"] not in MASKED_MERGES:
            problems.append(_mask_dropped(g, nid, f"merge {attrs['spec']['merge']}", carried))
        if layer in _TRANSPOSED and _dilated(config.get("dilation_rate", 1)):
            problems.append(_dilated_transpose(g, nid, layer))
        dtypes[nid] = _dtype(g, nid, info, dtypes)
        masks[nid] = _mask_origin(g, nid, carried)
    if output_check is not None:
        for name, ref in g.graph["outputs"].items():
            node, index = port_index(ref.source)
            if node not in info or name not in outputs or index is None or index >= shapes.ports(node):
                continue  # no shape, or a port that does not exist: reported already
            # The producing layer says which activation ends the output; a state (`enc.1`) ends in none known.
            layer, config = _layer_of(g, node) if index == 0 else (None, {})
            shape = shapes.of(ref.source)
            problems.extend(output_check(name, outputs[name], shape, layer, config))
    return problems


def _float_ids(g: nx.DiGraph, nid: str, source: str, dtype: str) -> Problem:
    origin = source
    while g.nodes[origin]["kind"] != "input" and g.nodes[origin]["refs"]:
        origin = port_index(g.nodes[origin]["refs"][0].source)[0]
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


#: Transposed convolutions, which TensorFlow's CPU kernels cannot run dilated.
_TRANSPOSED = frozenset({"Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"})


def _dilated(rate: Any) -> bool:
    rates = rate if isinstance(rate, list) else [rate]
    return any(isinstance(r, int) and r > 1 for r in rates)


def _dilated_transpose(g: nx.DiGraph, nid: str, layer: str) -> Problem:
    """A dilated transposed convolution: Keras builds it, TensorFlow's CPU kernel refuses to run it."""
    return Problem(
        (*g.nodes[nid]["path"], "config", "dilation_rate"),
        f"node `{nid}` ({layer}) is dilated: TensorFlow's CPU kernels refuse dilated transposed "
        "convolutions (only oneDNN on CPUs with AVX-512, and GPUs, run them), so the compiled "
        "model's serving_default fails on other CPUs",
        "use dilation_rate 1, or serve on a GPU; --strict refuses this",
        "serving",
        "warning",
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
