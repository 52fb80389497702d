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

from ..errors import FusecError, GraphError, Problem, SchemaError, ShapeError, suggestion_budget
from ..spec.blocks import expand_blocks
from ..spec.graph import BROKEN, flat_refs, graph_problems, topo_order
from ..spec.load import Spec, load_spec
from ..spec.schema import REF_PATTERN, derive_name, ecma_regex, input_case_problems, schema_problems
from ..vocab.losses import output_problems
from .archive import ModelContext, SubModel
from .archive.trusted import trusting
from .budget import DEFAULT_MAX_PARAMS
from .shapes import NodeInfo, Shapes, Totals, infer_shapes, total_params
from .training import training_problems

_P = ParamSpec("_P")
_R = TypeVar("_R")

_REF = ecma_regex(REF_PATTERN)


@dataclass(frozen=True)
class Checked:
    """A spec that passed every static check: the record the build, save and render stages read.

    Attributes:
        spec: the loaded file; ``spec.doc`` is the document as written.
        graph: its dependency graph.
        order: node ids in deterministic topological order.
        shapes: the shapes stage's record: static shape and parameter
            counts per node, further outputs, resolved sub-models.
        totals: the model's parameter totals.
        doc: the document every stage after the check reads: blocks
            expanded (what the graph was built from); its inputs, outputs and
            training section are the file's.
        scopes: for each node generated from a block, its chain of
            (instance id, block name), outermost first.
        models: how ``model`` nodes were resolved (reused by the build stage).
        warnings: problems of severity ``warning``: the spec compiles, but
            will probably not train or serve as meant.
        problems: the errors a lenient check (``check_spec(..., lenient=True)``)
            found and let pass, each with its place; always empty otherwise.
            Such a record is for drawing and comparing only, never for building.
    """

    spec: Spec
    graph: nx.DiGraph
    order: list[str]
    shapes: Shapes
    totals: Totals
    doc: dict[str, Any] = field(default_factory=dict)
    scopes: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    models: ModelContext | None = None
    warnings: tuple[Problem, ...] = ()
    problems: tuple[Problem, ...] = ()

    def __post_init__(self) -> None:
        if not self.doc:  # built by hand (tests, tools): the file's document is the expanded one
            object.__setattr__(self, "doc", dict(self.spec.doc))

    @property
    def info(self) -> dict[str, NodeInfo]:
        """Static shape and parameter counts per node, in topological order."""
        return self.shapes.info

    @property
    def optimizer(self) -> str:
        """The optimizer the spec trains with (Keras's name)."""
        return str(self.doc.get("training", {}).get("optimizer", "adam"))

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
    trust: Sequence[str] = (),
    source: str | None = None,
    lenient: bool = False,
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
        trust: packages whose classes `model` nodes naming them (``"trust"``)
            may load, as the CLI's ``--trust`` (none by default).
        source: the spec's text, checked as if it were the file at ``path``
            (an editor's unsaved buffer; sub-model paths resolve beside ``path``).
        lenient: return what could be checked instead of raising for problems inside entries
            (``render`` draws a broken spec, ``diff`` compares one): the errors are in
            ``Checked.problems``, failed entries are ``BROKEN`` placeholder nodes, nodes whose
            shape is unknown have no ``info``, and nodes on cycles come last in ``order``.
            Problems that leave nothing to draw (unreadable JSON, a wrong version, a missing
            section) still raise.

    Returns:
        The checked spec, with its warnings, each with its line and column.

    Raises:
        FusecError: every problem found, in one run (a problem in one node does not hide those in
            nodes it does not feed); the class names the first stage that failed. Each problem of
            this file carries its line and column (``Problem.span``).

    Example: ``check_spec("specs/image_tag.json").totals.params`` is 70,529.
    """
    if trust:
        with trusting(tuple(trust)):
            return check_spec(path, max_params, allowed, _stack, strict, max_memory, source=source, lenient=lenient)
    with suggestion_budget():
        return _check_spec(path, max_params, allowed, _stack, strict, max_memory, source, lenient)


def _check_spec(
    path: str | Path,
    max_params: int,
    allowed: Sequence[str | Path],
    _stack: tuple[Path, ...],
    strict: bool,
    max_memory: int | None,
    source: str | None = None,
    lenient: bool = False,
) -> Checked:
    """``check_spec``'s stages, inside one did-you-mean budget; problems and warnings get their places."""
    spec = load_spec(path, source)
    try:
        checked = _stages(spec, max_params, allowed, _stack, strict, max_memory, lenient)
    except FusecError as err:
        raise spec.locate(err) from None
    if checked.problems:
        checked = replace(checked, problems=spec.located(checked.problems))
    return replace(checked, warnings=spec.located(checked.warnings)) if checked.warnings else checked


# long: the stages in order, each adding its problems to the run.
def _stages(
    spec: Spec,
    max_params: int,
    allowed: Sequence[str | Path],
    _stack: tuple[Path, ...],
    strict: bool,
    max_memory: int | None,
    lenient: bool = False,
) -> Checked:
    """Schema, blocks, graph, shapes, weights and training checks of a loaded spec."""
    run = _Run(spec, problems=schema_problems(spec.doc) + input_case_problems(spec.doc))
    doc = usable_doc(spec.doc, run.problems)
    if doc is None:
        raise SchemaError(run.problems, file=spec.file)
    flat = expand_blocks(doc, spec.file)
    run.reach(GraphError)
    run.problems += flat.problems
    graph, found = graph_problems(flat.doc, flat.origins, flat.shared_origins, reach=not run.problems)
    said = {p.path for p in flat.problems if p.code == "reference"}  # a wrong port, said once by expansion
    run.problems += [p for p in found if not (p.code == "reference" and p.path in said)]
    folders = tuple(Path(a) for a in allowed)
    models = ModelContext(
        spec.path.parent,
        folders,
        _stack or (spec.path.resolve(),),
        max_params,
        max_memory=max_memory,
        check_nested=_nested_check(max_params, folders),
    )
    shapes = Shapes()
    acyclic = _acyclic(graph)
    run.shapes(acyclic, max_params, models, shapes, str(flat.doc.get("training", {}).get("optimizer", "adam")))
    if "weights" in spec.doc and not run.problems:  # the spec's weights file (fusec import): headers only
        from .weightsfile import weights_problems

        run.reach(ShapeError)
        run.problems += weights_problems(spec.doc["weights"], spec.path.parent, shapes.info, folders)[0]
    # What would not train or serve, for every node that got a shape: reported with the rest.
    warnings = [
        *flat.warnings,
        *training_problems(acyclic, shapes, topo_order(acyclic), flat.doc["outputs"], output_problems),
    ]
    found = [replace(p, severity="error") for p in warnings] if strict else warnings
    if lenient:  # what could be checked, for drawing and comparing: the errors ride along
        errors = (*run.problems, *(p for p in found if p.severity == "error"))
        rest = tuple(p for p in found if p.severity != "error")
        order = topo_order(acyclic) + [n for n in graph.nodes if n not in acyclic]
        totals = total_params(shapes.info)
        return Checked(spec, graph, order, shapes, totals, flat.doc, flat.scopes, models, rest, errors)
    run.finish(found)
    order = topo_order(graph)
    return Checked(
        spec, graph, order, shapes, total_params(shapes.info), flat.doc, flat.scopes, models, tuple(warnings)
    )


@dataclass
class _Run:
    """The problems of one check so far, and the stage whose error class reports them."""

    spec: Spec
    problems: list[Problem]
    stage: type[FusecError] = SchemaError

    def reach(self, stage: type[FusecError]) -> None:
        """A later stage starts: it names the error if every stage before it passed."""
        if not self.problems:
            self.stage = stage

    def shapes(self, g: nx.DiGraph, max_params: int, models: ModelContext, into: Shapes, optimizer: str) -> None:
        """The shapes stage, on the graph without its cycles: its problems join the rest."""
        try:
            infer_shapes(g, self.spec.file, max_params, models, into, optimizer)
        except ShapeError as err:
            self.reach(ShapeError)
            self.problems += err.problems

    def finish(self, found: Sequence[Problem]) -> None:
        """Raise with every problem, the training checks' errors included; return when there are none."""
        errors = any(p.severity == "error" for p in found)
        if errors and not self.problems:
            self.stage = ShapeError
        if self.problems or errors:
            raise self.stage([*self.problems, *found], file=self.spec.file)


def _nested_check(max_params: int, allowed: tuple[Path, ...]) -> Callable[[Path, tuple[Path, ...]], SubModel]:
    """How a ``model`` node's fusec spec is checked: this check again, nested, to a ``SubModel``."""

    def check_nested(path: Path, stack: tuple[Path, ...]) -> SubModel:
        return spec_submodel(check_spec(path, max_params, allowed=allowed, _stack=stack))

    return check_nested


def spec_submodel(checked: Checked) -> SubModel:
    """The signature of a checked fusec spec used as a sub-model (its check result kept for the build)."""
    shapes = checked.shapes
    nested = checked.models.tally[0] if checked.models is not None else 0
    return SubModel(
        checked.spec.path,
        "spec",
        {i: shapes.info[i].shape for i in checked.doc["inputs"]},
        {name: shapes.of(ref.source) for name, ref in checked.graph.graph["outputs"].items()},
        checked.totals.trainable,
        checked.totals.non_trainable,
        len(checked.order) + nested,
        tuple(sorted(i.params for i in shapes.info.values() if i.params)),
        checked=checked,
    )


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
