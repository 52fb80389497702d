"""The static pipeline, end to end: load, schema, graph, shapes.

``check_spec`` is what ``fusec check``, ``summary`` and ``render`` run, and
what ``compile`` runs before it imports TensorFlow. It never imports
TensorFlow itself.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import networkx as nx

from ..errors import FusecError, GraphError, Problem, SchemaError, ShapeError
from ..spec.blocks import expand_blocks
from ..spec.graph import BROKEN, flat_refs, graph_problems, topo_order
from ..spec.load import Spec, load_spec
from ..spec.schema import REF_PATTERN, derive_name, ecma_regex, input_case_problems, schema_problems
from .archive import ModelContext
from .shapes import DEFAULT_MAX_PARAMS, NodeInfo, Totals, infer_shapes, total_params
from .training import training_problems

_P = ParamSpec("_P")
_R = TypeVar("_R")

_REF = ecma_regex(REF_PATTERN)


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
        warnings: problems of severity ``warning``: the spec compiles, but
            will probably not train or serve as meant.
    """

    spec: Spec
    graph: nx.DiGraph
    order: list[str]
    info: dict[str, NodeInfo]
    totals: Totals
    flat: dict[str, Any] = field(default_factory=dict)
    scopes: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    models: ModelContext | None = None
    warnings: tuple[Problem, ...] = ()

    @property
    def doc(self) -> Any:
        return self.spec.doc

    @property
    def name(self) -> str:
        """The model's name: the spec's ``name``, else its file stem mapped onto the names rule."""
        return str(self.spec.doc.get("name") or derive_name(self.spec.path.stem))


def _gc_paused(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``fn`` with Python's cyclic garbage collector paused.

    A check allocates a few objects per JSON value and frees them together;
    with the collector on, its full passes over a growing heap made checking
    a 20,000-node spec superlinear (0.39 s against 0.23 s at 8,000 nodes).
    The limits bound what a check can allocate, and nothing it makes needs
    the collector: reference counting frees it when the check returns.
    """

    @functools.wraps(fn)
    def paused(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        if not gc.isenabled():
            return fn(*args, **kwargs)
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            gc.enable()

    return paused


@_gc_paused
def check_spec(
    path: str | Path,
    max_params: int = DEFAULT_MAX_PARAMS,
    allowed: Sequence[str | Path] = (),
    _stack: tuple[Path, ...] = (),
    strict: bool = False,
    max_memory: int | None = None,
) -> Checked:
    """Run every static check on a spec file.

    Args:
        path: the spec file.
        max_params: refuse models with more parameters than this.
        allowed: folders outside the spec's own that sub-model paths may
            point into.
        strict: refuse the spec for warnings too (what would compile but
            probably not train or serve as meant).
        max_memory: refuse models whose compile is estimated to need more
            memory than this many bytes (None: the default budget, budget.py).

    Returns:
        The checked spec, with its warnings.

    Raises:
        FusecError: every problem found, in one run: a problem in one node
            does not hide those in nodes it does not feed. The class is the
            first stage that failed (LoadError, SchemaError, GraphError or
            ShapeError).

    Example:
        >>> checked = check_spec("specs/image_tag.json")  # doctest: +SKIP
        >>> checked.totals.params  # doctest: +SKIP
        70529
    """
    spec = load_spec(path)
    problems = schema_problems(spec.doc) + input_case_problems(spec.doc)
    stage: type[FusecError] = SchemaError
    doc = usable_doc(spec.doc, problems)
    if doc is None:
        raise SchemaError(problems, file=spec.file)
    flat = expand_blocks(doc, spec.file)
    if not problems:
        stage = GraphError
    problems += flat.problems
    graph, found = graph_problems(flat.doc, flat.origins, flat.shared_origins, reach=not problems)
    said = {p.path for p in flat.problems if p.code == "reference"}  # a wrong port, said once by expansion
    problems += [p for p in found if not (p.code == "reference" and p.path in said)]
    models = ModelContext(
        spec.path.parent,
        tuple(Path(a) for a in allowed),
        _stack or (spec.path.resolve(),),
        max_params,
        max_memory=max_memory,
    )
    info: dict[str, NodeInfo] = {}
    graph.graph["training"] = flat.doc.get("training", {})  # the optimizer sizes the memory estimate
    acyclic = _acyclic(graph)
    try:
        infer_shapes(acyclic, spec.file, max_params, models, info)
    except ShapeError as err:
        if not problems:
            stage = ShapeError
        problems += err.problems
    # What would not train or serve, for every node that got a shape: reported with the rest.
    found = training_problems(acyclic, info, topo_order(acyclic), flat.doc["outputs"], _output_check())
    if strict:
        found = [replace(p, severity="error") for p in found]
    if any(p.severity == "error" for p in found) and not problems:
        stage = ShapeError
    if problems or any(p.severity == "error" for p in found):
        raise stage([*problems, *found], file=spec.file)
    return Checked(
        spec, graph, topo_order(graph), info, total_params(info), flat.doc, flat.scopes, models, tuple(found)
    )


def _output_check() -> Any:
    from ..vocab.losses import output_problems

    return output_problems


_SECTIONS = ("inputs", "shared", "blocks", "nodes", "outputs")


def usable_doc(doc: Any, problems: Sequence[Problem]) -> dict[str, Any] | None:
    """The document with each entry that failed the schema replaced by a placeholder.

    A schema problem inside one node (or input, shared layer, block, output)
    makes that entry a ``broken`` placeholder that keeps its references, so
    the later stages still check every other entry, and report what is wrong
    there in the same run, without tripping over the broken one.

    Returns:
        The document to go on with, or None when a problem is not inside one
        entry (a missing section, a wrong spec version, not an object at all):
        then nothing later is worth checking.
    """
    if not problems:
        return dict(doc)
    broken: dict[str, set[str]] = {s: set() for s in _SECTIONS}
    for p in problems:
        if p.code == "version" or not p.path:
            return None
        section = p.path[0]
        if section in _SECTIONS:
            if len(p.path) < 2:
                return None
            broken[str(section)].add(str(p.path[1]))
    if not isinstance(doc, dict) or any(not isinstance(doc.get(s, {}), dict) for s in _SECTIONS):
        return None
    out = dict(doc)
    for section, ids in broken.items():
        if not ids:
            continue
        entries = dict(doc[section])
        for key in ids:
            entry = entries.get(key)
            if section == "nodes":
                refs = flat_refs(entry.get("inputs") if isinstance(entry, dict) else None)
                entries[key] = {BROKEN: True, "inputs": [r for r in refs if _REF.match(r)]}
            elif section == "outputs":
                source = entry.get("from") if isinstance(entry, dict) else None
                if isinstance(source, str) and _REF.match(source):
                    entries[key] = {"from": source}
                else:
                    entries.pop(key, None)
            else:
                entries[key] = {BROKEN: True}
        out[section] = entries
    return out


def _acyclic(g: nx.DiGraph) -> nx.DiGraph:
    """``g`` without the nodes on cycles (reported by the graph stage), so shapes can still be inferred."""
    cyclic = [n for scc in nx.strongly_connected_components(g) if len(scc) > 1 for n in scc]
    cyclic += [n for n in g.nodes if g.has_edge(n, n)]
    if not cyclic:
        return g
    rest = g.copy()
    rest.remove_nodes_from(cyclic)
    return rest
