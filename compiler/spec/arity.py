"""Input counts: how many inputs (and which named ones) each kind of node takes.

Checked by the graph stage with every other problem; a node whose inputs
do not fit its rule is marked ``broken`` so the shapes stage skips it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import PathPart, Problem, did_you_mean, quote_names
from ..vocab.layers import LAYERS
from ..vocab.merges import MERGES, MergeRule
from ..vocab.rule import LayerRule
from .refs import BROKEN, Ref, node_kind


def _layer_slot_problems(nid: str, rule: LayerRule, inputs: Any, path: tuple[PathPart, ...]) -> list[Problem]:
    """A layer with named inputs takes one id (all required slots) or an object of slots."""
    if isinstance(inputs, str):
        return []
    names = quote_names(list(rule.slots))
    if not isinstance(inputs, dict):
        return [
            Problem(
                path,
                f"node `{nid}` ({rule.name}) takes named inputs {names}, or one id for all of "
                f"{quote_names(list(rule.required_slots))}",
                'write {"query": ID, "value": ID}',
                "arity",
            )
        ]
    problems = []
    for slot, value in inputs.items():
        if slot not in rule.slots:
            near = did_you_mean(slot, rule.slots)
            hint = f"did you mean `{near[0]}`?" if near else f"its inputs: {names}"
            problems.append(Problem((*path, slot), f"{rule.name} has no input `{slot}`", hint, "arity"))
        elif not isinstance(value, str):
            problems.append(Problem((*path, slot), f"input `{slot}` takes one id", "", "arity"))
    for slot in rule.required_slots:
        if slot not in inputs:
            problems.append(Problem(path, f"node `{nid}` ({rule.name}) needs input `{slot}`", "", "arity"))
    return problems


def arity_problems(
    nid: str,
    node: Mapping[str, Any],
    refs: list[Ref],
    base: tuple[PathPart, ...],
    shared: Mapping[str, Any] | None = None,
) -> list[Problem]:
    """What is wrong with the number or the names of a node's inputs, for its kind (empty when nothing).

    Args:
        nid: the node's id, for messages.
        node: the node's spec.
        refs: its references, in order (``iter_refs``).
        base: the JSON path of the node.
        shared: the spec's shared layers (a call takes the inputs of the layer it calls).
    """
    kind = node_kind(node)
    path: tuple[PathPart, ...] = (*base, "inputs")
    inputs = node["inputs"]
    if kind in ("model", BROKEN):
        return []  # named inputs are matched against the sub-model's own in the shapes stage
    layer_name = node.get("layer") or (shared or {}).get(node.get("shared", ""), {}).get("layer")
    if layer_name in LAYERS and LAYERS[layer_name].slots:
        return _layer_slot_problems(nid, LAYERS[layer_name], inputs, path)
    if kind == "merge":
        rule = MERGES[node["merge"]]
        lo, hi = rule.arity
        if rule.slots is not None:
            return _slot_problems(nid, rule, inputs, path)
        if not isinstance(inputs, list):
            return [Problem(path, f"merge `{nid}` ({rule.name}) takes a list of inputs", 'write ["a", "b", ...]')]
        if len(refs) < lo or (hi is not None and len(refs) > hi):
            return [
                Problem(
                    path,
                    f"merge `{nid}` ({rule.name}) needs {_want(lo, hi)} inputs. Received: {len(refs)}",
                    "",
                    "arity",
                )
            ]
        return []
    if isinstance(inputs, dict) or len(refs) != 1:
        what = kind if kind == "layer" else "shared-layer call"
        return [
            Problem(
                path,
                f"a {what} node takes exactly one input. Received: {len(refs)}",
                "merge several inputs first (concat, add, ...), then feed the merge's id",
                "arity",
            )
        ]
    return []


def _want(lo: int, hi: int | None) -> str:
    return f"exactly {lo}" if lo == hi else f"at least {lo}" if hi is None else f"{lo} to {hi}"


def _slot_problems(nid: str, rule: MergeRule, inputs: Any, path: tuple[PathPart, ...]) -> list[Problem]:
    """Named inputs of a merge with slots: every slot given, each an id or a list as declared."""
    slots = rule.slots or {}
    subject = f"merge `{nid}` ({rule.name})"
    example = ", ".join(f'"{s}": ' + ('["a", "b", ...]' if k == "list" else '"c"') for s, k in slots.items())
    if not isinstance(inputs, dict):
        return [Problem(path, f"{subject} takes named inputs {quote_names(list(slots))}", f"write {{{example}}}")]
    problems = []
    for name in inputs:
        if name not in slots:
            near = did_you_mean(name, list(slots))
            hint = f"did you mean `{near[0]}`?" if near else f"valid: {quote_names(list(slots))}"
            problems.append(Problem((*path, name), f"{subject} has no input named `{name}`", hint, "arity"))
    for name, kind in slots.items():
        if name not in inputs:
            problems.append(Problem(path, f"{subject} is missing the input `{name}`", f"write {{{example}}}"))
            continue
        value = inputs[name]
        if kind == "one" and not isinstance(value, str):
            problems.append(
                Problem(
                    (*path, name),
                    f"{subject} takes one id as `{name}`. Received: a list of {len(value)}",
                    "",
                    "arity",
                )
            )
        elif kind == "list" and not isinstance(value, list):
            problems.append(
                Problem((*path, name), f"{subject} takes a list of ids as `{name}`", f'write ["{value}", ...]')
            )
        elif kind == "list":
            lo, hi = rule.arity
            if len(value) < lo or (hi is not None and len(value) > hi):
                problems.append(
                    Problem(
                        (*path, name),
                        f"{subject} needs {_want(lo, hi)} {name}. Received: {len(value)}",
                        "",
                        "arity",
                    )
                )
    return problems
