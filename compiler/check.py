"""The static pipeline, end to end: load, schema, graph, shapes.

``check_spec`` is what ``fusec check``, ``summary`` and ``render`` run, and
what ``compile`` runs before it imports TensorFlow. It never imports
TensorFlow itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from .blocks import expand_blocks
from .graph import build_graph, topo_order
from .load import Spec, load_spec
from .schema import validate_schema
from .shapes import DEFAULT_MAX_PARAMS, NodeInfo, Totals, infer_shapes, total_params
from .submodel import ModelContext


@dataclass(frozen=True)
class Checked:
    """A spec that passed every static check.

    Attributes:
        spec: the loaded file.
        graph: its dependency graph.
        order: node ids in deterministic topological order.
        info: static shape and parameter counts per node.
        totals: the model's parameter totals.
        flat: the spec with blocks expanded (what the graph was built from).
        scopes: for each node generated from a block, its chain of
            (instance id, block name), outermost first.
        models: how ``model`` nodes were resolved (reused by the build stage).
    """

    spec: Spec
    graph: nx.DiGraph
    order: list[str]
    info: dict[str, NodeInfo]
    totals: Totals
    flat: dict[str, Any] = field(default_factory=dict)
    scopes: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    models: ModelContext | None = None

    @property
    def doc(self) -> Any:
        return self.spec.doc

    @property
    def name(self) -> str:
        return str(self.spec.doc.get("name") or self.spec.path.stem.replace("-", "_"))


def check_spec(
    path: str | Path,
    max_params: int = DEFAULT_MAX_PARAMS,
    allowed: Sequence[str | Path] = (),
    _stack: tuple[Path, ...] = (),
) -> Checked:
    """Run every static check on a spec file.

    Args:
        path: the spec file.
        max_params: refuse models with more parameters than this.
        allowed: folders outside the spec's own that sub-model paths may
            point into.

    Returns:
        The checked spec.

    Raises:
        FusecError: a LoadError, SchemaError, GraphError or ShapeError with
            every problem found at the first stage that failed.

    Example:
        >>> checked = check_spec("specs/image_tag.json")  # doctest: +SKIP
        >>> checked.totals.params  # doctest: +SKIP
        70529
    """
    spec = load_spec(path)
    validate_schema(spec.doc, spec.file)
    flat = expand_blocks(spec.doc, spec.file)
    graph = build_graph(flat.doc, spec.file, flat.origins, flat.shared_origins)
    models = ModelContext(
        spec.path.parent,
        tuple(Path(a) for a in allowed),
        _stack or (spec.path.resolve(),),
        max_params,
    )
    info = infer_shapes(graph, spec.file, max_params, models)
    return Checked(spec, graph, topo_order(graph), info, total_params(info), flat.doc, flat.scopes, models)
