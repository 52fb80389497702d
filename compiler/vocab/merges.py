"""The merge (fusion) vocabulary: one registry table, keyed by the spec's ``merge`` name.

A merge combines the outputs of several nodes. Each rule states, in pure
Python, which input shapes it accepts and what it produces, so a shape
mismatch is reported by ``fusec check`` with the shapes and the nodes they
came from, before TensorFlow is ever imported.

Most merges take a list of inputs (``"inputs": ["a", "b"]``) and their rule's
``infer`` receives ``Sources``. A merge whose inputs play different roles
declares named ``slots`` (``gated``: ``{"experts": [...], "gate": "g"}``) and
its ``infer`` receives ``NamedSources``: slot name -> that slot's sources.
The layers behind ``weighted`` and ``gated`` live in ``fusec/keras/fusion.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import RuleError
from .broadcast import BROADCASTING as BROADCASTING
from .broadcast import BroadcastError as BroadcastError
from .broadcast import broadcast as broadcast
from .broadcast import broadcasts as broadcasts
from .broadcast import received as _received
from .rule import MAX_DIM, Dim, MergeLook, Out, Param, Rule, Shape, fmt_shape, p_bool, p_enum, p_int

Sources = Sequence[tuple[str, Shape]]  # (node id, shape) per input, in order
NamedSources = Mapping[str, Sources]  # slot name -> its sources; a "one" slot holds one

SLOT_KINDS = ("one", "list")


class SlotError(RuleError):
    """A rule's complaint about one named input slot; its path ends at ``inputs.<slot>``."""

    def __init__(self, message: str, slot: str, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.slot = slot


@dataclass(frozen=True)
class MergeRule(Rule):
    """Everything fusec knows statically about one merge mode (see ``Rule`` for the shared facts).

    Attributes:
        infer: as ``Rule.infer``, required: called with ``Sources`` for a
            list merge, ``NamedSources`` when ``slots`` is set.
        arity: (min, max) number of inputs; max None for unbounded. For a
            merge with slots, the count of each ``list`` slot.
        slots: None for a merge of a list of inputs; else its named inputs,
            each ``one`` (an id) or ``list`` (a list of ids), all required.
        slot_docs: one line per slot for the schema and docs.

    ``examples`` give the input shapes (without batch) and a config. For a
    merge with slots, the shapes run in slot order with a list slot's shapes
    inline (gated: the experts', then the gate's); ``example_sources`` splits
    them.
    """

    # Any: Sources or NamedSources, by ``slots`` (a union would reject both kinds of rule).
    infer: Callable[[Any, Mapping[str, Any]], Out]  # required for merges (keeps its place: 4th)
    arity: tuple[int, int | None] = (2, None)
    slots: Mapping[str, str] | None = None
    slot_docs: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.slots is not None and not set(self.slots.values()) <= set(SLOT_KINDS):
            raise ValueError(f"merge {self.name}: slot kinds are {SLOT_KINDS}")

    def example_sources(self, shapes: Sequence[Any]) -> dict[str, list[int]]:
        """Indices into an example's ``shapes`` per slot (one ``list`` slot takes the rest)."""
        slots = self.slots or {}
        n_list = len(shapes) - sum(kind == "one" for kind in slots.values())
        out: dict[str, list[int]] = {}
        i = 0
        for name, kind in slots.items():
            take = 1 if kind == "one" else n_list
            out[name] = list(range(i, i + take))
            i += take
        return out


def _unify(a: Dim, b: Dim) -> tuple[bool, Dim]:
    """(compatible, common value) of two dims.

    None is compatible with any size and wins, as in Keras: merging (None, 6)
    with (None, None) gives (None, None), so a later Flatten or Dense sees
    what Keras will see.
    """
    if a is None or b is None:
        return True, None
    return a == b, a


def _unify_shapes(shapes: Sequence[Shape], skip_axis: int | None = None) -> Shape | None:
    """The common shape of same-rank shapes, ignoring ``skip_axis``; None on a clash."""
    out: list[Dim] = list(shapes[0])
    for shape in shapes[1:]:
        if len(shape) != len(out):
            return None
        for i, d in enumerate(shape):
            if i == skip_axis:
                continue
            ok, out[i] = _unify(out[i], d)
            if not ok:
                return None
    return tuple(out)


def _same_shape(mode: str) -> Callable[[Sources, Mapping[str, Any]], Out]:
    def infer(sources: Sources, c: Mapping[str, Any]) -> Out:
        shape = _unify_shapes([s for _, s in sources])
        if shape is None:
            raise RuleError(
                f"needs inputs of one shape. Received: {_received(sources)}",
                hint="project the inputs to one shape first (a Dense layer, say), or use concat",
            )
        return Out(shape)

    return infer


def _broadcasting(sources: Sources, c: Mapping[str, Any]) -> Out:
    return Out(broadcast(sources))


def _concat(sources: Sources, c: Mapping[str, Any]) -> Out:
    rank = len(sources[0][1])
    axis = c["axis"]
    if not -rank <= axis < rank or axis % rank == 0:
        raise RuleError(
            f"axis {axis} is out of range for inputs of rank {rank} "
            f"(the batch axis cannot be concatenated). Received: {_received(sources)}",
            key="axis",
        )
    ax = axis % rank
    if any(len(s) != rank for _, s in sources):
        raise RuleError(
            f"needs inputs of one rank. Received: {_received(sources)}",
            hint="Flatten or Reshape the inputs to one rank first",
        )
    common = _unify_shapes([s for _, s in sources], skip_axis=ax)
    if common is None:
        raise RuleError(
            f"needs inputs that match on every axis but axis {axis}. Received: {_received(sources)}",
            hint="Flatten or pool the inputs so only the concatenation axis differs",
        )
    sizes = [s[ax] for _, s in sources]
    total = None if any(d is None for d in sizes) else sum(d for d in sizes if d is not None)
    return Out(common[:ax] + (total,) + common[ax + 1 :])


def _dot(sources: Sources, c: Mapping[str, Any]) -> Out:
    (src1, s1), (src2, s2) = sources
    axes = c["axes"]
    pair = [axes, axes] if isinstance(axes, int) else list(axes)
    if len(s1) < 2 or len(s2) < 2 or len(s1) > 3 or len(s2) > 3:
        raise RuleError(
            f"needs inputs of rank 2 or 3. Received: {_received(sources)}",
        )
    norm = []
    for a, shape in zip(pair, (s1, s2), strict=True):
        r = len(shape)
        if not -r <= a < r or a % r == 0:
            raise RuleError(
                f"axes {axes} are out of range for {fmt_shape(shape)} (axis 0 is the batch axis)",
                key="axes",
            )
        norm.append(a % r)
    d1, d2 = s1[norm[0]], s2[norm[1]]
    if d1 != d2:  # Keras compares them as written: a size of None matches only None
        raise RuleError(
            f"needs equal sizes along the dot axes {axes}: {d1} from `{src1}` "
            f"vs {d2} from `{src2}`. Received: {_received(sources)}",
            key="axes",
        )
    a = [d for i, d in enumerate(s1) if i != norm[0]]
    b = [d for i, d in enumerate(s2) if i != norm[1]][1:]
    out = a + b
    if len(out) == 1:
        out.append(1)
    return Out(tuple(out))


def _weighted(sources: Sources, c: Mapping[str, Any]) -> Out:
    shape = _same_shape("weighted")(sources, c).shape
    if not c["per_feature"]:
        return Out(shape, len(sources))
    if len(shape) < 2 or shape[-1] is None:
        raise RuleError(
            f"with per_feature needs inputs whose last axis has a known size. Received: {_received(sources)}",
            key="per_feature",
            hint="set per_feature to false, or give the inputs a fixed last dimension",
        )
    return Out(shape, len(sources) * shape[-1])


def _gated(sources: NamedSources, c: Mapping[str, Any]) -> Out:
    experts = sources["experts"]
    ((gate, gshape),) = sources["gate"]
    shape = _unify_shapes([s for _, s in experts])
    if shape is None:
        raise SlotError(
            f"needs experts of one shape. Received: {_received(experts)}",
            "experts",
            "give every expert the same output size (end each expert in the same Dense(k), say)",
        )
    n = len(experts)
    if len(gshape) != 2:
        raise SlotError(
            f"needs a gate of rank 2 (batch, experts). Received: {fmt_shape(gshape)} from `{gate}`",
            "gate",
            f"end the gate in Dense({n}, activation='softmax')",
        )
    if gshape[1] is not None and gshape[1] != n:
        names = ", ".join(f"`{e}`" for e, _ in experts)
        raise SlotError(
            f"needs one gate value per expert: gate `{gate}` has width {gshape[1]} "
            f"but the merge has {n} experts ({names})",
            "gate",
            f"end the gate in Dense({n}, ...), or add or remove experts",
        )
    top_k = c["top_k"]
    if top_k is not None and top_k > n:
        raise RuleError(f"top_k {top_k} is more than the {n} experts", key="top_k", hint=f"use 1 to {n}")
    return Out(shape)


_AXES_SCHEMA = {
    "oneOf": [
        {"type": "integer", "minimum": -3, "maximum": 2},
        {
            "type": "array",
            "items": {"type": "integer", "minimum": -3, "maximum": 2},
            "minItems": 2,
            "maxItems": 2,
        },
    ]
}

#: Element-wise merges (broadcasting, see ``broadcast``): name -> (Keras class, doc, look).
_ELEMENTWISE = {
    "add": (
        "Add",
        "Element-wise sum (residual connections); inputs broadcast by Keras's rule.",
        MergeLook("octagon", "#c6dbef", "#2171b5", "⊕"),
    ),
    "multiply": (
        "Multiply",
        "Element-wise product (gating by hand, squeeze-and-excitation); inputs broadcast by Keras's rule.",
        MergeLook("doubleoctagon", "#fcbba1", "#cb181d", "⊗"),
    ),
    "average": (
        "Average",
        "Element-wise mean (plain late fusion); inputs broadcast by Keras's rule.",
        MergeLook("septagon", "#d4b9da", "#7a0177", "μ"),
    ),
    "maximum": (
        "Maximum",
        "Element-wise maximum; inputs broadcast by Keras's rule.",
        MergeLook("house", "#fee391", "#cc4c02", "▲", margin="0.1,0.12"),
    ),
    "minimum": (
        "Minimum",
        "Element-wise minimum; inputs broadcast by Keras's rule.",
        MergeLook("invhouse", "#bfd3e6", "#4d6a8a", "▼", margin="0.1,0.12"),
    ),
}

_BROADCAST_EXAMPLES: tuple[tuple[tuple[tuple[Dim, ...], ...], dict[str, Any]], ...] = (
    (((8,), (8,)), {}),
    (((3, 4), (3, 4), (3, 4)), {}),
    (((None, 5), (7, 5)), {}),
    (((4, 4, 3), (1, 1, 3)), {}),  # squeeze-and-excitation: a per-channel scale
    (((5, 3), (3,), (1, 1)), {}),
)

#: Every merge a spec may name. One entry is all a new merge needs: its shape rule, params,
#: examples, Keras class (a class of ``fusec.keras.fusion`` when Keras has none) and look.
MERGES: Mapping[str, MergeRule] = {
    rule.name: rule
    for rule in (
        MergeRule(
            "concat",
            "Joins inputs along an axis (early fusion). All other axes must match.",
            (
                Param(
                    "axis",
                    {"type": "integer", "minimum": -8, "maximum": 8},
                    "The axis to join along (never 0, the batch axis).",
                    -1,
                ),
            ),
            _concat,
            (
                (((8,), (4,)), {}),
                (((3, 4), (5, 4)), {"axis": 1}),
                (((2, 2, 3), (2, 2, 1), (2, 2, 2)), {"axis": -1}),
            ),
            ("axis",),
            keras="Concatenate",
            ordered_inputs=True,
            look=MergeLook("invtrapezium", "#fdd0a2", "#d94801", "‖"),
        ),
        *(
            MergeRule(name, doc, (), _broadcasting, _BROADCAST_EXAMPLES, keras=keras, look=look)
            for name, (keras, doc, look) in _ELEMENTWISE.items()
        ),
        MergeRule(
            "subtract",
            "First input minus the second (distance heads, residuals); inputs broadcast by Keras's rule.",
            (),
            _broadcasting,
            (
                (((8,), (8,)), {}),
                (((3, 4), (3, 4)), {}),
                (((None, 2), (6, 2)), {}),
                (((4, 4, 3), (1, 1, 3)), {}),
                (((3,), (5, 3)), {}),
            ),
            keras="Subtract",
            arity=(2, 2),
            ordered_inputs=True,
            look=MergeLook("hexagon", "#f6e8c3", "#8c510a", "⊖"),
        ),
        MergeRule(
            "dot",
            "Dot product of two inputs along the given axes (cosine similarity with normalize).",
            (
                Param("axes", _AXES_SCHEMA, "Axis, or [axis of input 1, axis of input 2]."),
                p_bool("normalize", "L2-normalise both inputs first (cosine similarity).", False),
            ),
            _dot,
            (
                (((8,), (8,)), {"axes": 1}),
                (((3, 4), (5, 4)), {"axes": 2}),
                (((3, 4), (3, 6)), {"axes": [1, 1], "normalize": True}),
            ),
            ("axes", "normalize"),
            keras="Dot",
            arity=(2, 2),
            ordered_inputs=True,
            look=MergeLook("Msquare", "#c7eae5", "#01665e", "⊙"),
        ),
        MergeRule(
            "weighted",
            "Learned weighted average of inputs of one shape (learned late fusion): "
            "one weight per input, or per input and feature.",
            (
                p_enum(
                    "normalize",
                    "How raw weights become mixing weights: softmax (positive, sum to 1), "
                    "sum (relu(w) / max(sum relu(w), epsilon)) or none (raw weights).",
                    ("softmax", "sum", "none"),
                    "softmax",
                ),
                p_bool("per_feature", "One weight per input per feature of the last axis.", False),
                Param(
                    "epsilon",
                    {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                    "Floor of the denominator when normalize is sum.",
                    1e-4,
                ),
            ),
            _weighted,
            (
                (((8,), (8,)), {}),
                (((3, 4), (3, 4), (3, 4)), {"per_feature": True}),
                (((7, 5), (None, 5)), {"normalize": "sum"}),
                (((6,), (6,), (6,), (6,)), {"normalize": "none", "per_feature": True}),
            ),
            ("normalize", "per_feature"),
            keras="WeightedMerge",
            keras_home="fusec.keras.fusion",
            keras_sources="input_ids",
            look=MergeLook("trapezium", "#fbb4c4", "#ae017e", "Σw", margin="0,0"),
        ),
        MergeRule(
            "gated",
            "Mixture of experts: sum over i of gate[:, i] * expert_i, the gate of shape (batch, number of experts).",
            (
                p_bool(
                    "softmax",
                    "Apply softmax to the gate first (false: the gate already ends in softmax).",
                    False,
                ),
                p_int(
                    "top_k",
                    "Keep only the k largest gate values per example, renormalised to sum to 1 "
                    "(sparse mixture; needs a non-negative gate).",
                    None,
                    1,
                    MAX_DIM,
                ),
            ),
            _gated,
            (
                (((6,), (6,), (6,), (3,)), {}),
                (((4, 5), (4, 5), (2,)), {"softmax": True}),
                (((None, 8), (None, 8), (None, 8), (None, 8), (4,)), {"softmax": True, "top_k": 2}),
            ),
            ("softmax", "top_k"),
            keras="GatedMerge",
            keras_home="fusec.keras.fusion",
            slots={"experts": "list", "gate": "one"},
            slot_docs={
                "experts": "The experts' outputs, all of one shape.",
                "gate": "The gate's output, (batch, number of experts): one weight per expert.",
            },
            look=MergeLook("cds", "#e6f598", "#4d7c0f", "⋈", style="filled,bold", margin="0.2,0.1"),
        ),
    )
}
