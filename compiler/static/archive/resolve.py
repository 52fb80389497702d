"""``model`` nodes: their files resolved and read once per check, their inputs bound, their output chosen.

The shapes stage calls ``infer_model_node`` with a ``ModelContext``. A
``.keras`` archive is inspected here (``inspect``); a nested fusec spec is
checked by ``ModelContext.check_nested``, which the check stage supplies, so
this package never imports the stages above it.
"""

from __future__ import annotations

import contextlib
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ...errors import FusecError, RuleError
from ...spec.load import load_spec
from ...vocab.rule import Shape, fmt_shape
from ..budget import DEFAULT_MAX_PARAMS
from .base import MAX_NESTING, MAX_NODES, RESAVE, SubModel, brief, fits
from .trusted import (
    KIND_PREFIX,
    declared_outputs,
    foreign_classes,
    inspect_trusted,
    read_config,
    trusted_packages,
    trusted_submodel,
)

#: Checks a nested spec and describes it as a sub-model: (its file, the spec files being checked, it last).
CheckNested = Callable[[Path, tuple[Path, ...]], SubModel]


def resolve_path(raw: str, spec_dir: Path, allowed: Sequence[Path], key: str = "model") -> Path:
    """Resolve a sub-model path under the spec's folder or an allowed folder.

    Raises:
        RuleError: the path escapes every allowed folder or does not exist.
    """
    try:
        candidate = Path(raw)
        full = candidate if candidate.is_absolute() else spec_dir / candidate
        resolved = full.resolve()
        roots = [spec_dir.resolve(), *(Path(a).resolve() for a in allowed)]
    except (OSError, ValueError, RuntimeError) as exc:  # NUL bytes, names too long, symlink loops
        raise RuleError(f"path `{raw}` cannot be resolved ({exc})", key, "check the path") from None
    if not any(resolved == r or r in resolved.parents for r in roots):
        raise RuleError(
            f"path `{raw}` leaves the spec's folder (it resolves to {resolved})",
            key,
            "keep sub-models beside the spec, or allow the folder with --allow-dir",
        )
    try:
        mode: int | None = resolved.stat().st_mode
    except (OSError, ValueError):
        mode = None
    if mode is None:
        raise RuleError(f"no file `{raw}` (looked for {resolved})", key, "check the path")
    if not stat.S_ISREG(mode):
        what = "a folder" if stat.S_ISDIR(mode) else "not a regular file (a device, a FIFO or a socket)"
        raise RuleError(f"`{raw}` is {what} (at {resolved})", key, "name the sub-model's file")
    return resolved


@dataclass(frozen=True)
class ModelContext:
    """What the shapes stage needs to resolve ``model`` nodes.

    Attributes:
        spec_dir: the folder of the spec being checked.
        allowed: further folders sub-model paths may point into.
        stack: the spec files being checked, outermost first (cycle guard).
        max_params: parameter budget passed on to nested specs.
        max_memory: the memory budget in bytes for compiling the outermost
            spec (None: ``budget.default_budget()``).
        check_nested: checks a nested fusec spec, given its path and the
            stack with it last, and returns it as a ``SubModel`` (with its
            ``checked`` result); supplied by the check stage. None: a
            ``.json`` sub-model cannot be resolved (an internal error).
        trust: the packages whose classes a ``model`` node with ``trust`` may
            load (``--trust``); by default those the running command trusts
            (``trusted.trusting``), none outside such a command.
    """

    spec_dir: Path
    allowed: tuple[Path, ...] = ()
    stack: tuple[Path, ...] = ()
    max_params: int = DEFAULT_MAX_PARAMS
    # Each sub-model file is read once per check, however many nodes (at any
    # depth) use it; the tally bounds the nodes all of them add up to. Without
    # both, ten nodes each using a spec of ten nodes each using ... is checked
    # ten to the power of the nesting depth times.
    cache: dict[Path, SubModel | RuleError] = field(default_factory=dict, compare=False, repr=False)
    tally: list[int] = field(default_factory=lambda: [0], compare=False, repr=False)
    max_memory: int | None = None
    weights: dict[tuple[Path, Path], int | RuleError] = field(default_factory=dict, compare=False, repr=False)
    check_nested: CheckNested | None = field(default=None, compare=False, repr=False)
    trust: frozenset[str] = field(default_factory=trusted_packages)


_CACHE: ContextVar[dict[Path, SubModel | RuleError] | None] = ContextVar("fusec_submodels", default=None)


def _cached(path: Path, ctx: ModelContext, read: Callable[[], SubModel]) -> SubModel:
    """``read()``, once per file for the outermost check and everything nested in it."""
    active = _CACHE.get()
    cache = ctx.cache if active is None else active
    if path not in cache:
        token = _CACHE.set(cache) if active is None else None
        try:
            cache[path] = read()
        except RuleError as err:
            cache[path] = err
        finally:
            if token is not None:
                _CACHE.reset(token)
    found = cache[path]
    if isinstance(found, RuleError):
        raise RuleError(found.message, found.key, found.hint)
    ctx.tally[0] += found.nodes
    if ctx.tally[0] > MAX_NODES:
        raise RuleError(
            f"the sub-models of this spec hold more than {MAX_NODES:,} nodes in all",
            "model",
            "use each sub-model fewer times, or nest them less deeply",
        )
    return found


def infer_model_node(
    node: Mapping[str, Any], refs: Sequence[Any], shapes: Mapping[str, Shape], ctx: ModelContext
) -> tuple[SubModel, str, dict[str, str]]:
    """Resolve a ``model`` node: its sub-model, chosen output, and input mapping.

    Returns:
        (sub-model, output name, {sub-model input name: source node id}).
        The sub-model's outputs are those of this call (an archive's layers
        run again on the shapes it is called with), and its ``load_bytes``
        include this node's weights file.

    Raises:
        RuleError: bad path, unreadable or refused file, a nested spec that
            does not check, weights that do not fit, inputs that do not
            match, or an ambiguous output.
    """
    raw = node["model"]
    path = resolve_path(raw, ctx.spec_dir, ctx.allowed)
    if "trust" in node or "shapes" in node:
        sub = _read_trusted(node, raw, path, ctx)
        given = {(str(r.slot[0]) if r.slot else "input"): shapes[r.source] for r in refs}
        sub = replace(sub, inputs=given, outputs=declared_outputs(raw, node.get("shapes")))
        return sub, _chosen_output(raw, sub, node.get("output")), _bind_inputs(raw, sub, refs)
    read = _READERS.get(path.suffix)
    if read is None:
        raise RuleError(
            f"`{raw}` is neither a .keras archive nor a .json fusec spec",
            "model",
            "name a .keras archive saved by Keras, or a fusec spec (.json)",
        )
    sub = read(node, raw, path, ctx)
    mapping = _bind_inputs(raw, sub, refs)
    for name, source in mapping.items():
        if not fits(sub.inputs[name], shapes[source]):
            raise RuleError(
                f"sub-model `{raw}` input `{name}` takes {fmt_shape(sub.inputs[name])}. "
                f"Received: {fmt_shape(shapes[source])} from `{source}`"
            )
    sub = _run_on(raw, sub, {n: shapes[s] for n, s in mapping.items()})
    return sub, _chosen_output(raw, sub, node.get("output")), mapping


def _read_archive(node: Mapping[str, Any], raw: str, path: Path, ctx: ModelContext) -> SubModel:
    """A ``.keras`` archive, inspected once per check (it carries its own weights)."""
    if "weights" in node:
        raise RuleError("`weights` applies to fusec-spec sub-models; a .keras archive has its own", "weights")
    from .inspect import inspect_keras  # the archive reader: loaded only when a spec has a `model` node

    try:
        sub = _cached(path, ctx, lambda: inspect_keras(path))
    except RuleError as err:
        raise _with_trust_hint(err, path, raw) from None
    if sub.kind != "keras":
        raise _both_ways(raw)
    return sub


def _with_trust_hint(err: RuleError, path: Path, raw: str) -> RuleError:
    """A refusal of classes from another package, with how to load them on trust when the user trusts it."""
    if "module `" not in err.message:
        return err
    try:
        packages = sorted({c.split(".")[0] for c in foreign_classes(read_config(path, raw)[0])})
    except RuleError:
        return err
    if not packages:
        return err
    pkg = packages[0]
    return RuleError(
        err.message,
        err.key,
        f"{err.hint}; or, if you trust `{pkg}`'s code (it runs when the model loads), add "
        f'"trust": "{pkg}" and its outputs\' "shapes" to the node and pass --trust {pkg}',
    )


def _both_ways(raw: str) -> RuleError:
    return RuleError(
        f"`{raw}` is used by one node on trust and by another without (or on trust of another package)",
        "trust",
        "give every node using this file the same `trust`",
    )


def _read_trusted(node: Mapping[str, Any], raw: str, path: Path, ctx: ModelContext) -> SubModel:
    """A ``.keras`` archive loaded on trust of the node's package, which the command line must trust too.

    Raises:
        RuleError: ``shapes`` without ``trust``, a file that is no archive,
            ``weights``, an untrusted package (naming the classes found and
            the flag to pass), or what ``trusted.inspect_trusted`` refuses.
    """
    package = node.get("trust")
    if not isinstance(package, str):
        raise RuleError(
            "`shapes` declares the outputs of a sub-model loaded on trust; this node has no `trust`",
            "shapes",
            'add "trust": PACKAGE when its classes come from a package you trust, or remove "shapes"',
        )
    if path.suffix != ".keras":
        raise RuleError(f"`trust` applies to .keras archives; `{raw}` is not one", "trust", "remove `trust`")
    if "weights" in node:
        raise RuleError("`weights` applies to fusec-spec sub-models; a .keras archive has its own", "weights")
    if package not in ctx.trust:
        classes = [c for c in foreign_classes(read_config(path, raw)[0]) if c.split(".")[0] == package]
        named = ", ".join(f"`{c}`" for c in classes[:3]) + (
            f" (and {len(classes) - 3} more)" if len(classes) > 3 else ""
        )
        raise RuleError(
            f"sub-model `{raw}` is to be loaded on trust of `{package}`"
            + (f" (it names {named})" if named else " (it names no class of it)")
            + f", and this command does not trust `{package}`",
            "trust",
            f"if you trust `{package}`'s code (it runs when the model loads), pass --trust {package}",
        )
    sub = _cached(path, ctx, lambda: trusted_submodel(path, package, inspect_trusted(path, raw, package)))
    if sub.kind != KIND_PREFIX + package:
        raise _both_ways(raw)
    return sub


def _read_spec(node: Mapping[str, Any], raw: str, path: Path, ctx: ModelContext) -> SubModel:
    """A nested spec, checked by ``ctx.check_nested`` (no cycles, bounded nesting), with its weights file."""
    if path in ctx.stack:
        chain = " -> ".join(p.name for p in (*ctx.stack[ctx.stack.index(path) :], path))
        raise RuleError(f"sub-model cycle: {chain}", "model", "a spec cannot contain itself")
    if len(ctx.stack) >= MAX_NESTING:
        raise RuleError(f"sub-models nest deeper than {MAX_NESTING} levels", "model")
    check = ctx.check_nested
    if check is None:
        raise RuntimeError(f"ModelContext.check_nested is not set, so the sub-model spec `{raw}` cannot be checked")

    def read() -> SubModel:
        try:
            return check(path, (*ctx.stack, path))
        except FusecError as err:
            first = err.problems[0].format(str(path)) if err.problems else str(err)
            raise RuleError(f"sub-model `{raw}` does not check: {first}", "model") from None

    sub = _cached(path, ctx, read)
    if "weights" not in node:
        return sub
    weights_raw = node["weights"]
    weights = resolve_path(weights_raw, ctx.spec_dir, ctx.allowed, "weights")
    if not (weights.name.endswith(".weights.h5") or weights.suffix == ".keras"):
        raise RuleError("`weights` must be a .weights.h5 file or a compiled .keras archive", "weights")
    load = _weights_load(weights, weights_raw, sub, ctx)
    return replace(sub, load_bytes=sub.load_bytes + load)


#: How a sub-model file is read, by its suffix.
_READERS: dict[str, Callable[[Mapping[str, Any], str, Path, ModelContext], SubModel]] = {
    ".keras": _read_archive,
    ".json": _read_spec,
}


def _bind_inputs(raw: str, sub: SubModel, refs: Sequence[Any]) -> dict[str, str]:
    """{sub-model input name: source node id}: one unnamed input, or every input by name."""
    names = list(sub.inputs)
    if len(refs) == 1 and refs[0].slot == ():
        if len(names) != 1:
            raise RuleError(
                f"sub-model `{raw}` has inputs {', '.join(f'`{n}`' for n in names)}; give them by name",
                hint='write "inputs": {' + ", ".join(f'"{n}": ID' for n in names) + "}",
            )
        return {names[0]: refs[0].source}
    mapping = {}
    for ref in refs:
        name = str(ref.slot[0]) if ref.slot else ""
        if name not in sub.inputs or len(ref.slot) != 1:
            raise RuleError(
                f"sub-model `{raw}` has no input `{name}`; its inputs: {', '.join(f'`{n}`' for n in names)}"
            )
        mapping[name] = ref.source
    missing = [n for n in names if n not in mapping]
    if missing:
        raise RuleError(f"sub-model `{raw}` needs input `{missing[0]}`")
    return mapping


def _run_on(raw: str, sub: SubModel, given: dict[str, Shape]) -> SubModel:
    """An archive called on shapes other than its declared ones: its layers run again, giving its outputs here."""
    if sub.run is None or all(sub.inputs[n] == s for n, s in given.items()):
        return sub
    try:
        outs = sub.run(given)
    except RuleError as err:
        raise RuleError(err.message, "model", err.hint) from None
    except Exception as exc:  # a structure no Keras writes, met on these shapes
        raise RuleError(f"`{raw}` cannot be run on these inputs ({brief(exc)})", "model", RESAVE) from None
    return replace(sub, outputs=outs)


def _chosen_output(raw: str, sub: SubModel, chosen: Any) -> str:
    """The node's ``output``, which the sub-model must have; none needed when it has one output."""
    outputs = list(sub.outputs)
    if chosen is None:
        if len(outputs) != 1:
            raise RuleError(
                f"sub-model `{raw}` has outputs {', '.join(f'`{o}`' for o in outputs)}; choose one",
                hint='add "output": NAME',
            )
        return outputs[0]
    if chosen not in sub.outputs:
        raise RuleError(
            f"sub-model `{raw}` has no output `{chosen}`; its outputs: {', '.join(f'`{o}`' for o in outputs)}",
            "output",
        )
    return str(chosen)


def _weights_load(path: Path, raw: str, sub: SubModel, ctx: ModelContext) -> int:
    """Inspect a spec sub-model's weights file once per (file, spec) pair and check."""
    key = (path, sub.path)
    if key not in ctx.weights:
        from .inspect import inspect_weights  # loaded only when a spec sub-model has a weights file

        try:
            ctx.weights[key] = inspect_weights(path, raw, sub)
        except RuleError as err:
            ctx.weights[key] = err
    found = ctx.weights[key]
    if isinstance(found, RuleError):
        raise RuleError(found.message, found.key, found.hint)
    return found


def input_files(checked: Any) -> list[Path]:
    """Every file a check of ``checked`` reads: the spec and its sub-model and weights files, nested ones too.

    No output may overwrite one of them (``fusec compile`` and ``fusec render``
    refuse an output path that holds one).

    Args:
        checked: a ``static.check.Checked`` (its spec, its expanded document, its ``models`` context).
    """
    files = [checked.spec.path]
    models = checked.models
    files += [p for p in (getattr(models, "cache", None) or {}) if isinstance(p, Path)]
    specs: list[tuple[Path, Any]] = [(checked.spec.path, checked.doc)]
    for path in files[1:]:
        if path.suffix == ".json":
            with contextlib.suppress(Exception):  # it was checked; anything odd now is the build's to report
                specs.append((path, load_spec(path).doc))
    allowed = getattr(models, "allowed", ())
    for path, doc in specs:
        for node in _model_nodes(doc):
            for key in ("model", "weights"):
                raw = node.get(key)
                if isinstance(raw, str):
                    with contextlib.suppress(Exception):
                        files.append(resolve_path(raw, path.parent, allowed, key))
    return list(dict.fromkeys(files))


def _model_nodes(doc: Any) -> Iterator[dict[str, Any]]:
    """The ``model`` nodes of a spec document, its blocks' included."""
    if not isinstance(doc, dict):
        return
    groups = [doc.get("nodes")]
    blocks = doc.get("blocks")
    if isinstance(blocks, dict):
        groups += [b.get("nodes") for b in blocks.values() if isinstance(b, dict)]
    for nodes in groups:
        if isinstance(nodes, dict):
            yield from (n for n in nodes.values() if isinstance(n, dict) and "model" in n)
