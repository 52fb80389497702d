"""A ``.keras`` archive inspected as a whole, and the weights file of a spec sub-model.

The steps run in the order that keeps a hostile file cheap: the zip's
members (``members``), every class of ``config.json`` (``classes``), the
graph (``parse``) and its run through fusec's rules (``run``), the weights
file's metadata (``h5``); the computed counts must be what the weights
file stores, layer by layer.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ...errors import RuleError
from ...vocab.rule import Shape
from .base import MAX_ARCHIVE_BYTES, RESAVE, WEIGHTS, SubModel, brief
from .classes import scan_config
from .graph import Ctx, Graph
from .h5 import Weights, inspect_h5
from .members import member_view, open_members
from .parse import parse_model
from .run import run_graph

T = TypeVar("T")


@dataclass(frozen=True)
class KerasArchive:
    """A fully inspected .keras archive."""

    sub: SubModel
    weights: Weights


def read_archive(path: Path, label: str, key: str, vet: Callable[[Any], T]) -> tuple[T, Weights]:
    """An archive's vetted members: ``vet(config)`` on the parsed ``config.json``, then the weights' HDF5 metadata.

    ``vet`` runs before the weights member is parsed (the class scan comes first).

    Raises:
        RuleError: a file over the size limit, a bad zip (``members``), unreadable JSON or HDF5, or ``vet``'s.
    """
    try:
        with open(path, "rb") as fh:
            if os.fstat(fh.fileno()).st_size > MAX_ARCHIVE_BYTES:
                raise RuleError(f"`{label}` is over {MAX_ARCHIVE_BYTES >> 30} GiB", key)
            zf, infos = open_members(fh, label, key)
            with zf:
                vetted = vet(json.loads(zf.read(infos["config.json"])))
                info = infos[WEIGHTS]
                weights = inspect_h5(member_view(fh, zf, info, label, key), info.file_size, label, key)
    except RuleError:
        raise
    except Exception as exc:  # a hostile archive can break zipfile, json or h5py in many ways
        raise RuleError(f"`{label}` is not a readable .keras archive ({brief(exc)})", key, RESAVE) from None
    return vetted, weights


def inspect_archive(path: Path, label: str, key: str = "model") -> KerasArchive:
    """Inspect a ``.keras`` archive statically, as fully as Keras will read it (see the package doc).

    Raises:
        RuleError: anything refused, naming the archive and the fix.
    """

    def vet(config: Any) -> tuple[Graph, Ctx]:
        scan_config(config, label, key)  # before the graph is read or any weights parsed
        if not isinstance(config, dict):
            raise RuleError(f"`{label}`'s config.json is not a Keras model config", key, RESAVE)
        ctx = Ctx(label, key)
        return parse_model(config, ctx, 0), ctx

    (graph, ctx), weights = read_archive(path, label, key, vet)
    try:
        return KerasArchive(_signature(path, graph, ctx, weights), weights)
    except RuleError:
        raise
    except Exception as exc:  # a structure no Keras writes, met while running the graph
        raise ctx.malformed(brief(exc)) from None


def inspect_keras(path: Path) -> SubModel:
    """A ``.keras`` sub-model's signature and counts, computed from its layers and checked against its weights."""
    return inspect_archive(path, path.name).sub


def _signature(path: Path, graph: Graph, ctx: Ctx, weights: Weights) -> SubModel:
    """The archive's inputs, outputs and counts, run from its declared inputs; its weights must be those counts."""
    for what, named in (("inputs", graph.inputs), ("outputs", graph.outputs)):
        if len({n for n, _ in named}) != len(named):
            raise ctx.fail(
                f"has two {what} of one name ({', '.join(f'`{n[:64]}`' for n, _ in named)})",
                f"name the {what}: save the model with a dict of {what}",
            )
    declared = [graph.layers[r.layer].shape for _, r in graph.inputs]
    inputs = {n: s for (n, _), s in zip(graph.inputs, declared, strict=True) if s is not None}
    outs, counts = run_graph(graph, list(inputs.values()), ctx)
    outputs = dict(zip([n for n, _ in graph.outputs], outs, strict=True))
    trainable = sum(t for t, _ in counts.values())
    non_trainable = sum(n for _, n in counts.values())
    layer_params = tuple(sorted(t + n for t, n in counts.values() if t + n))
    stored = tuple(sorted(v for v in weights.per_layer.values() if v))
    if weights.values != trainable + non_trainable or stored != layer_params:
        raise ctx.fail(
            f"its weights file holds {weights.values:,} values in {len(stored)} layers, but its layers, "
            f"computed from config.json, need {trainable + non_trainable:,} in {len(layer_params)}",
            "the archive's weights do not belong to its config; " + RESAVE,
        )
    _check_layout(graph, counts, weights, ctx)
    names = list(inputs)

    def run(shapes: Mapping[str, Shape]) -> dict[str, Shape]:
        call_ctx = Ctx(ctx.label, ctx.key)
        got, again = run_graph(graph, [shapes[n] for n in names], call_ctx, built=False)
        if sum(t + n for t, n in again.values()) != trainable + non_trainable:
            raise call_ctx.fail("is called on inputs its weights do not fit")
        return dict(zip([n for n, _ in graph.outputs], got, strict=True))

    return SubModel(
        path,
        "keras",
        inputs,
        outputs,
        trainable,
        non_trainable,
        max(1, graph.size),
        layer_params,
        weights.data_bytes,
        weights.file_bytes,
        run,
    )


def _check_layout(graph: Graph, counts: Mapping[str, tuple[int, int]], weights: Weights, ctx: Ctx) -> None:
    """Each layer's values must sit in the group Keras reads them from, layer by layer.

    Keras addresses a layer's weights by its class, not its name:
    ``layers/<class in snake case>[_<k>]``, numbered in the model's layer
    order (``keras.src.saving.saving_lib``). The counts per group must be the
    computed ones, so weights moved between layers, or stored under another
    group, are refused here rather than by Keras at compile time.

    Raises:
        RuleError: naming the first group that differs.
    """
    groups = weight_groups(graph)
    expected: dict[str, tuple[int, str]] = {}
    for layer in graph.layers.values():
        group = groups.get(layer.name)
        if group is None:
            continue
        total = sum(counts.get(layer.name, (0, 0)))
        if total:
            expected[group] = (total, layer.what)
    stored = {group: n for group, n in weights.per_layer.items() if n}
    for group in sorted(set(expected) | set(stored), key=lambda g: (g not in expected, g)):
        want, what = expected.get(group, (0, ""))
        got = stored.get(group, 0)
        if want != got:
            needs = f"{what} needs {want:,} values there" if want else "no layer reads it"
            raise ctx.fail(
                f"its weights file holds {got:,} values in group `layers/{group[:64]}`; {needs}",
                "the archive's weights do not belong to its config; " + RESAVE,
            )


def weight_groups(graph: Graph) -> dict[str, str]:
    """Each layer's group in its model's ``layers`` group of the weights file: ``<class in snake case>[_<k>]``.

    Keras ops (``x + 3``) are no layers and hold no weights: they are not counted.
    """
    used: dict[str, int] = {}
    out = {}
    for layer in graph.layers.values():
        if layer.op is not None:
            continue
        group = _snake(layer.cls)
        if group in used:
            used[group] += 1
            group = f"{group}_{used[group]}"
        else:
            used[group] = 0
        out[layer.name] = group
    return out


def _snake(cls: str) -> str:
    """A class name as Keras names its weights group (``keras.src.utils.naming.to_snake_case``)."""
    name = re.sub(r"\W+", "", cls)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def inspect_weights(path: Path, raw: str, sub: SubModel) -> int:
    """Inspect a spec sub-model's ``weights`` file as fully as Keras will read it; return its load bytes.

    A ``.keras`` archive gets the whole archive inspection (its classes, its
    members, its graph) and must compute to the spec's counts; a
    ``.weights.h5`` file gets the HDF5 inspection. Either way the values
    stored per layer must be the spec's, layer by layer.

    Raises:
        RuleError: at the node's ``weights`` key.
    """
    key = "weights"
    if path.suffix == ".keras":
        archive = inspect_archive(path, raw, key)
        found = archive.sub.layer_params
        total = archive.sub.params
        load = archive.weights.file_bytes + 2 * 4 * archive.sub.params  # a second model, and its weights copied
    else:
        weights = _inspect_h5_file(path, raw, key)
        found = tuple(sorted(v for v in weights.per_layer.values() if v))
        total = weights.values
        load = weights.file_bytes
    if total != sub.params or found != sub.layer_params:
        raise RuleError(
            f"`{raw}` holds {total:,} weight values in {len(found)} layers; the sub-model's spec has "
            f"{sub.params:,} in {len(sub.layer_params)}",
            key,
            "give the weights saved from this spec's compiled model (fusec compile, then its .keras archive)",
        )
    return load


def _inspect_h5_file(path: Path, raw: str, key: str) -> Weights:
    """A ``.weights.h5`` file on its own, within the size limit."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > MAX_ARCHIVE_BYTES:
                raise RuleError(f"`{raw}` is over {MAX_ARCHIVE_BYTES >> 30} GiB", key)
            return inspect_h5(fh, size, raw, key)
    except RuleError:
        raise
    except Exception as exc:  # h5py refuses a malformed file in many ways
        raise RuleError(f"`{raw}` is not a readable weights file ({brief(exc)})", key, RESAVE) from None
