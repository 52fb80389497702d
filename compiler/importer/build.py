"""One ``.keras`` archive imported: read (collecting every refusal), written as a spec, weights copied."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import Problem, RuleError
from ..spec.schema.generate import SCHEMA_ID
from ..static.archive.base import MAX_ARCHIVE_BYTES, WEIGHTS, brief
from ..static.archive.classes import scan_config
from ..static.archive.graph import Ctx, Graph
from ..static.archive.members import member_view, open_members
from ..static.archive.parse import parse_model
from ..static.archive.run import run_graph
from .emit import Emitter, Scope, refusal
from .names import Ids, sanitise
from .report import ImportRefused, ImportReport
from .text import spec_text
from .weights import read_weights
from .write import write_outputs

SCHEMA_URL = SCHEMA_ID  # the schema's own $id: editors that know it validate the spec


def _refused(label: str, errors: list[RuleError]) -> ImportRefused:
    """Every refusal, one problem each, naming the source."""
    hint = "fusec's vocabulary does not cover it: see docs/import.md for what maps to what"
    problems = [Problem((), refusal(e), hint, "import") for e in errors]
    return ImportRefused(problems, file=label)


def read_config(path: Path, label: str) -> tuple[dict[str, Any], Any]:
    """The archive's config.json, and its weights file's bytes (None when it stores none).

    Raises:
        ImportRefused: not a readable .keras archive.
    """
    try:
        with open(path, "rb") as fh:
            if os.fstat(fh.fileno()).st_size > MAX_ARCHIVE_BYTES:
                raise RuleError(f"`{label}` is over {MAX_ARCHIVE_BYTES >> 30} GiB", "source")
            zf, infos = open_members(fh, label, "source")
            with zf:
                config = json.loads(zf.read(infos["config.json"]))
                info = infos.get(WEIGHTS)
                data = member_view(fh, zf, info, label, "source").read() if info is not None else None
    except RuleError as err:
        raise _refused(label, [err]) from None
    except OSError as exc:
        raise ImportRefused.single(
            (), f"cannot read it: {exc.strerror or exc}", "give a .keras file", "import", label
        ) from None
    except Exception as exc:  # a hostile archive can break zipfile or json in many ways
        raise ImportRefused.single(
            (), f"not a readable .keras archive ({brief(exc)})", "give a file saved by model.save", "import", label
        ) from None
    if not isinstance(config, dict):
        raise ImportRefused.single((), "its config.json is not a Keras model config", "", "import", label)
    return config, data


def read_graph(config: dict[str, Any], label: str) -> tuple[Graph, Ctx, dict[int, dict[str, tuple[int, int]]]]:
    """The model's graph, every unsupported layer and setting listed at once; and each graph's counts."""
    ctx = Ctx(label, "source", collect=[])
    try:
        graph = parse_model(config, ctx, 0)
    except RuleError as err:
        raise _refused(label, [*(ctx.collect or []), err]) from None
    if ctx.collect:
        raise _refused(label, ctx.collect)
    try:
        scan_config(config, label, "source")
        counts: dict[int, dict[str, tuple[int, int]]] = {}
        _run_all(graph, ctx, counts)
    except RuleError as err:
        raise _refused(label, [err]) from None
    return graph, ctx, counts


def _run_all(graph: Graph, ctx: Ctx, counts: dict[int, dict[str, tuple[int, int]]]) -> None:
    """Run the graph from its declared inputs (and each nested model from its own): every layer's counts."""
    declared = [graph.layers[r.layer].shape for _, r in graph.inputs]
    _, per_layer = run_graph(graph, [s for s in declared if s is not None], ctx, 0, built=True)
    counts[id(graph)] = per_layer
    for layer in graph.layers.values():
        if layer.model is not None and id(layer.model) not in counts:
            _run_all(layer.model, ctx, counts)


def _doc(graph: Graph, emitter: Emitter, label: str, name: str | None) -> tuple[dict[str, Any], Scope]:
    """The spec document of the top-level graph."""
    scope = Scope(graph, Ids(), shared={})
    inputs: dict[str, Any] = {}
    for n, ref in graph.inputs:
        layer = graph.layers[ref.layer]
        ident = scope.ids.take(n, is_input=True)
        assert layer.shape is not None
        entry: dict[str, Any] = {"shape": list(layer.shape[1:])}
        if layer.dtype != "float32":
            entry["dtype"] = layer.dtype
        inputs[ident] = entry
        scope.tensors[(ref.layer, 0)] = [ident]
    emitter.scope(scope, "", "layers/", "", False)
    out_ids = Ids()
    outputs = {out_ids.take(n): {"from": emitter._ref(scope, ref)} for n, ref in graph.outputs}
    doc: dict[str, Any] = {
        "$schema": SCHEMA_URL,
        "fusec": 1,
        "name": sanitise(name or graph.name),
        "doc": f"Imported by `fusec import` from {Path(label).name} (Keras model `{graph.name[:64]}`).",
    }
    doc["inputs"] = inputs
    if scope.shared:
        doc["shared"] = scope.shared
    if emitter.blocks:
        doc["blocks"] = emitter.blocks
    doc["nodes"] = scope.nodes
    doc["outputs"] = outputs
    return doc, scope


# long: one straight pipeline, each step a call
def import_archive(path: Path, label: str, out: Path, *, blocks: bool = False, name: str | None = None) -> ImportReport:
    """Import one archive (see ``fusec.importer.import_source``)."""
    config, data = read_config(path, label)
    graph, ctx, counts = read_graph(config, label)
    emitter = Emitter(ctx, counts)
    try:
        doc, _ = _doc(graph, emitter, label, name)
    except RuleError as err:
        raise _refused(label, [err]) from None
    arrays = read_weights(data, emitter.placed, label) if data is not None else {}
    flat = spec_text(doc)
    renames: dict[str, str] = {}
    if blocks:
        doc, renames = _fold(doc)
        arrays = {_rekey(k, renames): v for k, v in arrays.items()}
    weights = out.with_name(_weights_name(out)) if arrays else None
    if weights is not None:
        doc = _ordered({**doc, "weights": weights.name})
    text = spec_text(doc)
    write_outputs(out, text, weights, arrays, [path])
    trainable = sum(t for t, _ in _all_counts(graph, counts))
    non_trainable = sum(n for _, n in _all_counts(graph, counts))
    return ImportReport(
        out,
        weights,
        {k: renames.get(v, v) for k, v in emitter.names.items()},
        graph.size,
        trainable + non_trainable,
        trainable,
        non_trainable,
        text.count("\n"),
        flat.count("\n"),
        renames,
    )


def _all_counts(graph: Graph, counts: dict[int, dict[str, tuple[int, int]]]) -> list[tuple[int, int]]:
    """Every top-level layer's counts (a nested model's are its call's, computed by the run)."""
    return list(counts[id(graph)].values())


_ORDER = ("$schema", "fusec", "name", "doc", "weights", "inputs", "shared", "blocks", "nodes", "outputs")


def _ordered(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: doc[k] for k in (*_ORDER, *[k for k in doc if k not in _ORDER]) if k in doc}


def _weights_name(out: Path) -> str:
    """``<stem>.weights.npz`` for ``<stem>.json``."""
    stem = out.name[: -len(".json")] if out.name.endswith(".json") else out.name
    return f"{stem}.weights.npz"


def _rekey(key: str, renames: dict[str, str]) -> str:
    """A weights key with its node id renamed by folding."""
    node, _, k = key.rpartition("/")
    return f"{renames.get(node, node)}/{k}"


def _fold(doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """``--blocks``: the flat document folded by ``fusec.spec.fold.fold_blocks``."""
    try:
        from ..spec.fold import fold_blocks  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise ImportRefused.single((), "--blocks is not available in this fusec", "", "usage") from None
    folded, renames = fold_blocks(doc)
    return _ordered(folded), dict(renames)
