"""What the archive modules share: the limits, the ``SubModel`` record, and message helpers."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...vocab.rule import Shape

MAX_ARCHIVE_BYTES = 2 << 30  # an archive or weights file, and an archive's members inflated, in all
MAX_CONFIG_BYTES = 16 << 20
MAX_METADATA_BYTES = 1 << 16
MAX_INFLATED = 64 << 20  # a compressed member may inflate past 20x its compressed size only up to this
MAX_MEMBERS = 3  # config.json, metadata.json, model.weights.h5
MAX_CONFIG_VALUES = 1_000_000  # JSON values in one config.json
MAX_H5_OBJECTS = 200_000  # groups and datasets in one weights file
MAX_H5_DEPTH = 32
MAX_WORK = 200_000  # layer calls evaluated for one archive, nested models' calls included
MAX_NESTING = 8
MAX_NODES = 20_000  # nodes of all sub-models of one spec, nested ones included

WEIGHTS = "model.weights.h5"
#: The members a .keras archive may hold, with the most each may inflate to.
MEMBERS = {"config.json": MAX_CONFIG_BYTES, "metadata.json": MAX_METADATA_BYTES, WEIGHTS: MAX_ARCHIVE_BYTES}
#: The hint of most refusals: what makes an archive fusec reads.
RESAVE = "re-save the model with Keras (model.save('m.keras')) from layers of fusec's vocabulary"


@dataclass(frozen=True)
class SubModel:
    """What fusec knows statically about a sub-model.

    Attributes:
        path: the resolved file.
        kind: ``keras`` or ``spec``.
        inputs: input name -> shape (batch axis first).
        outputs: output name -> shape.
        trainable: trainable parameter count.
        non_trainable: non-trainable parameter count.
        nodes: nodes (or layers) it holds, nested sub-models included.
        layer_params: the nonzero parameter count of each top-level layer
            (or node), sorted: what a weights file for it must hold.
        weight_bytes: bytes of weight data its archive stores (0 for a spec).
        load_bytes: bytes held in memory while Keras loads its files, beyond
            the model's own variables (the weights file, a second model).
        run: output shapes for given input shapes (archives: Keras runs the
            layers again on the shapes the sub-model is called with).
        checked: a spec sub-model's own check result (``static.check.Checked``),
            which the build stage builds from without checking it again;
            None for an archive.
    """

    path: Path
    kind: str
    inputs: dict[str, Shape]
    outputs: dict[str, Shape]
    trainable: int
    non_trainable: int
    nodes: int = 1
    layer_params: tuple[int, ...] = ()
    weight_bytes: int = 0
    load_bytes: int = 0
    run: Callable[[Mapping[str, Shape]], dict[str, Shape]] | None = field(default=None, compare=False, repr=False)
    checked: Any = field(default=None, compare=False, repr=False)

    @property
    def params(self) -> int:
        return self.trainable + self.non_trainable


def fits(want: Shape, got: Shape) -> bool:
    """Whether a tensor of shape ``got`` may be given where ``want`` is declared (None matches any size)."""
    return len(want) == len(got) and all(a is None or b is None or a == b for a, b in zip(want, got, strict=True))


def show(value: Any) -> str:
    """A JSON value for a message, cut to 60 characters."""
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def brief_text(text: str) -> str:
    """``text`` cut to 160 characters."""
    return text if len(text) <= 160 else text[:157] + "..."


def brief(exc: BaseException) -> str:
    """An exception as ``Type: message``, cut to 200 characters."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 200 else text[:197] + "..."
