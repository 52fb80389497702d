"""What a spec expects of its training data: one ``Field`` per input and per trained output.

``expected_fields(checked)`` reads the checked spec once: each input's shape
and element type, and for each output with a ``loss`` the labels that loss
reads (class ids, one-hot rows, values in [0, 1], regression targets), with
their shape and the range their values must lie in. Every reader
(``npz``, ``csvtext``, ``parquet``, ``tfrecord``) and every value check reads
these records; nothing here imports TensorFlow.

Label shapes: a sparse loss (``sparse_categorical_crossentropy``) takes one
integer class id per position, shaped like the output without its class axis
(a trailing axis of 1 is also accepted, as Keras accepts it); every other
loss takes labels of the output's own shape. A field of shape ``(1,)`` also
accepts one plain number per example. The dataset always yields the first
shape listed (``Field.shape``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..static.binding import port_index
from ..vocab.layers import LAYERS
from ..vocab.loss_table import BINARY, CATEGORICAL, SPARSE
from ..vocab.objective import objective_args, objective_name
from ..vocab.rule import FLOAT_DTYPES, INTEGER_DTYPES

if TYPE_CHECKING:
    from ..static.check import Checked

Shape = tuple[int | None, ...]

#: The value rule of each loss's labels (``Field.rule``); a loss not listed takes regression targets.
LABEL_RULES: Mapping[str, str] = {
    **dict.fromkeys(SPARSE, "sparse"),
    **dict.fromkeys(BINARY, "binary"),
    **dict.fromkeys(CATEGORICAL, "categorical"),
    "categorical_hinge": "categorical",
    "hinge": "hinge",
    "squared_hinge": "hinge",
}
#: What each value rule asks of the values, for messages and docs.
RULE_TEXT: Mapping[str, str] = {
    "float": "any finite number",
    "int": "whole numbers within the element type's range",
    "bool": "0 or 1",
    "ids": "whole numbers in [0, input_dim) of the Embedding they feed",
    "sparse": "integer class ids in [0, number of classes)",
    "binary": "numbers in [0, 1]",
    "categorical": "one-hot or probability rows: numbers in [0, 1]",
    "hinge": "-1, 0 or 1",
    "regression": "any finite number",
}


@dataclass(frozen=True)
class Field:
    """One column (feature, array) the training data must hold.

    Attributes:
        name: the input's or output's name in the spec (the column's name).
        role: ``input`` (goes into ``x``) or ``label`` (into ``y``).
        shape: the shape of one example as the dataset yields it (no batch
            axis); a variable-size axis (None) may only come first.
        dtype: the element type the dataset yields: the input's dtype; int32
            for class ids; float32 for every other label.
        rule: what the values must be: a key of ``RULE_TEXT``.
        spec_shape: the input's shape, or the output's shape, as the spec
            gives it (for messages).
        loss: the output's loss (labels only).
        high: ids and class ids must be below this (None: no bound known).
        ignore: a class id the loss skips (``ignore_class``), allowed beyond ``high``.
        axis: the class axis of a categorical label (for the one-hot row check).
        node: the Embedding an ``ids`` input feeds, or the node an output reads.
        accepts: further shapes read as ``shape`` (same values, other nesting).
    """

    name: str
    role: str
    shape: Shape
    dtype: str
    rule: str
    spec_shape: Shape
    loss: str | None = None
    high: int | None = None
    ignore: int | None = None
    axis: int = -1
    node: str | None = None
    accepts: tuple[Shape, ...] = ()

    @property
    def variable(self) -> bool:
        """Whether the first axis has a variable size (a sequence of any length)."""
        return bool(self.shape) and self.shape[0] is None

    @property
    def size(self) -> int:
        """Values per example (fixed shapes) or per step of the first axis (variable ones)."""
        return math.prod(d or 1 for d in (self.shape[1:] if self.variable else self.shape))

    @property
    def integer(self) -> bool:
        """Whether the values must be whole numbers (they are stored as integers)."""
        return self.dtype in INTEGER_DTYPES or self.dtype == "bool"

    @property
    def np_dtype(self) -> str:
        """The numpy type of stored values (numpy has no bfloat16: float32, cast by TensorFlow)."""
        return "float32" if self.dtype == "bfloat16" else self.dtype

    @property
    def what(self) -> str:
        """``input `x``` or ``the label of output `y```."""
        return f"input `{self.name}`" if self.role == "input" else f"the label of output `{self.name}`"

    @property
    def where(self) -> str:
        """``input `x` (shape [4], float32)`` or ``the label of output `y` (mse; the output's shape is [2])``."""
        if self.role == "input":
            return f"input `{self.name}` (shape {_spec(self.spec_shape)}, {self.dtype})"
        return f"the label of output `{self.name}` ({self.loss}; the output's shape is {_spec(self.spec_shape)})"

    def wanted(self) -> str:
        """What one example holds: ``4 numbers, shaped [4]``, ``1 whole number in [0, 3)``."""
        count = f"a multiple of {self.size} values" if self.variable else f"{self.size} value{'s' * (self.size != 1)}"
        rule = RULE_TEXT[self.rule]
        if self.rule in ("ids", "sparse") and self.high is not None:
            rule = f"whole numbers in [0, {self.high})"
        return f"{count}, shaped {self.shape_text()} (row-major when flat), {rule}"

    def shape_hint(self) -> str:
        """How to give one example the right shape (for shape and count problems)."""
        if self.rule == "sparse":
            return (
                f"{self.loss} takes one class id per example (0 to {self.high - 1 if self.high else 'n - 1'}); "
                "for one-hot rows use categorical_crossentropy"
            )
        if self.size > 1 or self.variable:
            return f"each example of {self.what}: {self.wanted()}"
        return ""

    def shape_text(self) -> str:
        """The shapes accepted for one example, for messages: ``[4]`` or ``[] or [1]``."""
        return " or ".join(_spec(s) for s in (self.shape, *self.accepts))


def _spec(shape: Shape) -> str:
    """A shape as a spec writes it: ``[32, 32, 3]``, ``[null, 8]``."""
    return "[" + ", ".join("null" if d is None else str(d) for d in shape) + "]"


def _scalar_too(shape: Shape) -> tuple[Shape, ...]:
    return ((),) if shape == (1,) else ()


def _id_limits(checked: Checked) -> dict[str, tuple[int, str]]:
    """For each input read directly by an ``ids`` layer (Embedding): (smallest input_dim, that node)."""
    g = checked.graph
    found: dict[str, tuple[int, str]] = {}
    for nid in checked.order:
        attrs = g.nodes[nid]
        if attrs["kind"] == "layer":
            layer, config = attrs["spec"]["layer"], attrs["spec"].get("config", {})
        elif attrs["kind"] == "shared":
            shared = g.graph["shared"][attrs["spec"]["shared"]]
            layer, config = shared["layer"], shared.get("config", {})
        else:
            continue
        rule = LAYERS.get(layer)
        limit = config.get("input_dim")
        if rule is None or rule.dtypes != "ids" or not isinstance(limit, int) or not attrs["refs"]:
            continue
        source = port_index(attrs["refs"][0].source)[0]
        if g.nodes[source]["kind"] == "input" and (source not in found or limit < found[source][0]):
            found[source] = (limit, nid)
    return found


def _input_field(name: str, spec: Mapping[str, Any], ids: Mapping[str, tuple[int, str]]) -> Field:
    shape: Shape = tuple(spec.get("shape", ()))
    dtype = str(spec.get("dtype", "float32"))
    rule = "float" if dtype in FLOAT_DTYPES else "bool" if dtype == "bool" else "int"
    high, node = ids.get(name, (None, None))
    if node is not None and dtype in INTEGER_DTYPES:
        rule = "ids"
    return Field(name, "input", shape, dtype, rule, shape, high=high, node=node, accepts=_scalar_too(shape))


def _label_field(name: str, spec: Mapping[str, Any], out: Shape, node: str) -> Field:
    """The labels of one trained output whose static shape (no batch axis) is ``out``."""
    loss, args = objective_name(spec["loss"]), objective_args(spec["loss"])
    rule = LABEL_RULES.get(loss, "regression")
    axis = args.get("axis", -1)
    axis = axis if isinstance(axis, int) else -1
    if rule != "sparse":
        return Field(name, "label", out, "float32", rule, out, loss, axis=axis, node=node, accepts=_scalar_too(out))
    at = axis + len(out) if axis < 0 else axis - 1  # the loss's axis counts the batch axis
    at = at if 0 <= at < len(out) else len(out) - 1
    ids: Shape = out[:at] + out[at + 1 :]
    ignore = args.get("ignore_class")
    return Field(
        name,
        "label",
        ids,
        "int32",
        rule,
        out,
        loss,
        high=out[at] if out else None,
        ignore=ignore if isinstance(ignore, int) else None,
        axis=axis,
        node=node,
        accepts=(*((ids + (1,),) if at == len(out) - 1 else ()), *_scalar_too(ids)),
    )


class Fields(tuple[Field, ...]):
    """The fields of a spec (a tuple), and the names of its outputs that take no labels.

    Attributes:
        untrained: the spec's outputs without a loss: a column named after
            one is an extra column, with a hint saying why.
    """

    untrained: tuple[str, ...]

    def __new__(cls, fields: Iterable[Field], untrained: Iterable[str] = ()) -> Fields:
        made = super().__new__(cls, fields)
        made.untrained = tuple(untrained)
        return made

    @property
    def inputs(self) -> tuple[Field, ...]:
        return tuple(f for f in self if f.role == "input")

    @property
    def labels(self) -> tuple[Field, ...]:
        return tuple(f for f in self if f.role == "label")


def expected_fields(checked: Checked) -> Fields:
    """The fields training data must hold for a checked spec: inputs, then trained outputs' labels.

    Args:
        checked: a spec that passed ``check_spec``.

    Returns:
        One field per input, in the spec's order, then one per output with a
        ``loss``, in the spec's order (outputs without a loss are not trained
        and take no labels; their names are ``Fields.untrained``).
    """
    doc = checked.doc
    ids = _id_limits(checked)
    fields = [_input_field(name, spec, ids) for name, spec in doc.get("inputs", {}).items()]
    refs = checked.graph.graph["outputs"]
    untrained = []
    for name, spec in doc.get("outputs", {}).items():
        if spec.get("loss") is None or name not in refs:
            untrained.append(name)
            continue
        out = tuple(checked.shapes.of(refs[name].source))[1:]
        fields.append(_label_field(name, spec, out, port_index(refs[name].source)[0]))
    return Fields(fields, untrained)
