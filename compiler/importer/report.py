"""What ``fusec import`` reports: its refusal (an error) and its result (``ImportReport``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import FusecError


class ImportRefused(FusecError):
    """The source cannot be imported: a file that cannot be read, or layers and settings fusec cannot express."""


@dataclass(frozen=True)
class ImportReport:
    """What ``import_source`` wrote.

    Attributes:
        spec: the spec file written.
        weights: the weights file written, or None (a source without weights).
        nodes: each Keras layer (``outer/inner`` for a nested model's) -> its
            node id in the expanded spec (a shared layer's shared id).
        layers: Keras layers imported (nested models' included).
        params: total parameter count; ``trainable`` and ``non_trainable``.
        lines: lines of the spec written; ``flat_lines``: of the spec before
            ``--blocks`` folded it (the same without ``--blocks``).
        renames: node id before folding -> after (empty without ``--blocks``).
    """

    spec: Path
    weights: Path | None
    nodes: dict[str, str]
    layers: int
    params: int
    trainable: int
    non_trainable: int
    lines: int
    flat_lines: int
    renames: dict[str, str] = field(default_factory=dict)
