"""The static pipeline, end to end: load, schema, graph, shapes.

``check_spec`` is what ``fusec check``, ``summary`` and ``render`` run, and
what ``compile`` runs before it imports TensorFlow. It never imports
TensorFlow itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx

from .graph import build_graph, topo_order
from .load import Spec, load_spec
from .schema import validate_schema
from .shapes import DEFAULT_MAX_PARAMS, NodeInfo, Totals, infer_shapes, total_params


@dataclass(frozen=True)
class Checked:
    """A spec that passed every static check.

    Attributes:
        spec: the loaded file.
        graph: its dependency graph.
        order: node ids in deterministic topological order.
        info: static shape and parameter counts per node.
        totals: the model's parameter totals.
    """

    spec: Spec
    graph: nx.DiGraph
    order: list[str]
    info: dict[str, NodeInfo]
    totals: Totals

    @property
    def doc(self) -> Any:
        return self.spec.doc

    @property
    def name(self) -> str:
        return str(self.spec.doc.get("name") or self.spec.path.stem.replace("-", "_"))


def check_spec(path: str | Path, max_params: int = DEFAULT_MAX_PARAMS) -> Checked:
    """Run every static check on a spec file.

    Args:
        path: the spec file.
        max_params: refuse models with more parameters than this.

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
    graph = build_graph(spec.doc, spec.file)
    info = infer_shapes(graph, spec.file, max_params)
    return Checked(spec, graph, topo_order(graph), info, total_params(info))
