"""The functional graph an archive's ``config.json`` describes: its records, tensor references and call order.

``parse`` fills these records from the layer configs; ``run`` evaluates them
with fusec's rules. A ``Ctx`` carries what one archive's inspection counts
(layers, layer calls) and the memo of graph runs, and words its refusals.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ...errors import RuleError
from ...vocab.merges import MergeRule
from ...vocab.rule import MAX_DIM, LayerRule, Shape
from .base import RESAVE, show


@dataclass(frozen=True)
class Ref:
    """A tensor: output ``tensor`` of call ``node`` of layer ``layer``."""

    layer: str
    node: int
    tensor: int


@dataclass
class Layer:
    """One layer config, translated: its fusec rule (or merge, or nested model) and its calls."""

    name: str
    cls: str
    what: str  # "layer `conv` (Conv2D) of model `m`", for messages
    rule: LayerRule | None = None
    merge: MergeRule | None = None
    config: dict[str, Any] = field(default_factory=dict)
    model: Graph | None = None
    shape: Shape | None = None  # an InputLayer's
    dtype: str = "float32"  # an InputLayer's
    build: Any = None  # its build_config
    inner_builds: tuple[Any, ...] = ()  # Bidirectional: the wrapped layers' build_configs
    axes: Any = None  # MultiHeadAttention's attention_axes
    calls: list[Call] = field(default_factory=list)
    frozen: bool = False  # saved with trainable false: Keras keeps its weights non-trainable
    op: str | None = None  # a Keras op in the functional graph (``x + 3``): fusec's name for it
    scale: float | None = None  # inception_resnet_v2's CustomScaleLayer: x[0] + x[1] * scale
    mask_op: str | None = None  # a Keras op computing a padding mask (``masks``), dropped once checked


@dataclass
class Call:
    """One call of a layer (Keras's inbound node ``index``): its arguments, tensors as ``Ref``."""

    layer: Layer
    index: int
    args: list[Any]
    kwargs: dict[str, Any]


@dataclass
class Graph:
    """A model's graph: its layers, their calls in dependency order, its named inputs and outputs."""

    name: str
    layers: dict[str, Layer]
    order: list[Call]  # dependencies first
    inputs: list[tuple[str, Ref]]
    outputs: list[tuple[str, Ref]]
    input_kind: str  # "dict", "list" or "one"
    output_kind: str
    size: int  # layers, nested models' included


@dataclass
class Ctx:
    """One archive's inspection: the label and key of its messages, its counters, the memo of its runs."""

    label: str
    key: str
    layers: int = 0
    work: int = 0
    memo: dict[tuple[int, tuple[Shape, ...], bool], tuple[list[Shape], dict[str, tuple[int, int]]]] = field(
        default_factory=dict
    )
    #: When a list, unsupported layers and settings are noted here (``fusec import`` lists them all)
    #: instead of refusing at the first.
    collect: list[RuleError] | None = None

    def fail(self, message: str, hint: str = RESAVE) -> RuleError:
        """A refusal naming the archive (``hint``: the fix)."""
        return RuleError(f"`{self.label}`: {message}", self.key, hint)

    def malformed(self, detail: str) -> RuleError:
        """A refusal of a config.json no Keras writes."""
        return RuleError(
            f"`{self.label}`'s config.json does not describe a Keras model fusec can read ({detail})", self.key, RESAVE
        )


def decode(value: Any, ctx: Ctx, what: str) -> Any:
    """A call argument with tensor references as ``Ref``."""
    if isinstance(value, list):
        return [decode(v, ctx, what) for v in value]
    if isinstance(value, dict):
        cls = value.get("class_name")
        if cls == "__keras_tensor__":
            history = (value.get("config") or {}).get("keras_history")
            if (
                isinstance(history, list)
                and len(history) == 3
                and isinstance(history[0], str)
                and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in history[1:])
            ):
                return Ref(history[0], history[1], history[2])
            raise ctx.fail(f"{what} is called on a malformed tensor reference")
        if cls == "__tuple__":
            inner = (value.get("config") or {}).get("value")
            if isinstance(inner, list):
                return [decode(v, ctx, what) for v in inner]
            raise ctx.fail(f"{what} is called on a malformed tuple")
        if cls is not None:
            raise ctx.fail(f"{what} is called on a serialized `{cls}`, which fusec does not read")
        return {k: decode(v, ctx, what) for k, v in value.items()}
    return value


def refs_in(value: Any) -> Iterator[Ref]:
    """Every tensor reference in a decoded call argument, depth first."""
    if isinstance(value, Ref):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from refs_in(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from refs_in(v)


def declared_shape(value: Any, ctx: Ctx, what: str) -> Shape:
    """A declared batch shape: batch axis first, each axis None or a size within fusec's limits."""
    if (
        not isinstance(value, list)
        or not 1 <= len(value) <= 9
        or not all(d is None or (isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= MAX_DIM) for d in value)
    ):
        raise ctx.fail(f"{what} declares the input shape {show(value)}, which fusec cannot use")
    return tuple(value)


def named(refs: Any, ctx: Ctx, what: str) -> tuple[str, list[tuple[str, list[Any]]]]:
    """Keras saves a model's inputs/outputs as a dict, a list of refs, or one ref."""
    if isinstance(refs, dict) and refs:
        return "dict", [(str(k), v) for k, v in refs.items()]
    if isinstance(refs, list) and refs and all(isinstance(r, list) for r in refs):
        return "list", [(str(r[0]) if r else "", r) for r in refs]
    if isinstance(refs, list) and len(refs) == 3 and isinstance(refs[0], str):
        return "one", [(refs[0], refs)]
    raise ctx.malformed(f"{what} are saved as {show(refs)}")


def top_ref(raw: Any, layers: Mapping[str, Layer], ctx: Ctx, what: str) -> Ref:
    """A model input/output reference; Keras counts a nested Functional's calls from 1 there."""
    if not (
        isinstance(raw, list)
        and len(raw) == 3
        and isinstance(raw[0], str)
        and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in raw[1:])
    ):
        raise ctx.malformed(f"{what} has a malformed tensor reference {show(raw)}")
    layer = layers.get(raw[0])
    if layer is None:
        raise ctx.fail(f"{what} names no layer `{raw[0][:64]}`")
    node = raw[1] - 1 if layer.model is not None and layer.cls != "Sequential" else raw[1]
    return Ref(raw[0], node, raw[2])


def topological(layers: Mapping[str, Layer], ctx: Ctx, name: str) -> list[Call]:
    """Every call after the calls it reads (and after its layer's earlier calls, as Keras replays them)."""
    waiting: dict[tuple[str, int], int] = {}
    users: dict[tuple[str, int], list[Call]] = {}
    ready: deque[Call] = deque()
    total = 0
    for layer in layers.values():
        for call in layer.calls:
            total += 1
            deps = {(r.layer, r.node) for r in refs_in([call.args, call.kwargs])}
            if call.index > 0:
                deps.add((layer.name, call.index - 1))
            for dep in deps:
                src = layers.get(dep[0])
                if src is None or dep[1] >= len(src.calls):
                    raise ctx.fail(
                        f"{layer.what} reads call {dep[1]} of layer `{dep[0][:64]}`, which model `{name[:64]}` "
                        "does not have"
                    )
                users.setdefault(dep, []).append(call)
            waiting[(layer.name, call.index)] = len(deps)
            if not deps:
                ready.append(call)
    order = []
    while ready:
        call = ready.popleft()
        order.append(call)
        for user in users.get((call.layer.name, call.index), ()):
            k = (user.layer.name, user.index)
            waiting[k] -= 1
            if waiting[k] == 0:
                ready.append(user)
    if len(order) != total:
        raise ctx.fail(f"the layer calls of model `{name[:64]}` form a cycle")
    return order
