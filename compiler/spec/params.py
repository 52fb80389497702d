"""Block parameters: declared by a definition, given by each instance, substituted at expansion.

A definition declares ``params`` (each with an optional ``default``); any
value inside a config of one of its nodes may be ``{"$param": NAME}``, and an
instance nested in a definition may pass a parameter through
(``"params": {"filters": {"$param": "width"}}``). Every bound value keeps
the place it was written (an instance's ``params.NAME``, or a default), so
an error in a substituted config points there and says which definition
node and key received it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import PathPart, Problem, did_you_mean, json_path, quote_names
from .refs import BROKEN
from .schema.problems import node_problems

Path = tuple[PathPart, ...]
KEY = "$param"


@dataclass(frozen=True)
class Bound:
    """One parameter's value for one instance, and where that value was written."""

    value: Any
    origin: Path
    name: str


Params = Mapping[str, Bound]


def is_ref(value: Any) -> bool:
    """Whether ``value`` is a parameter reference (well formed or not): an object with a ``$param`` key."""
    return isinstance(value, dict) and KEY in value


def references(value: Any, at: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every ``{"$param": ...}`` inside ``value``: (its path below ``value``, the reference)."""
    if is_ref(value):
        yield at, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from references(v, (*at, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from references(v, (*at, i))


def substitute(value: Any, params: Params, at: Path = ()) -> tuple[Any, list[tuple[Path, Bound]]]:
    """``value`` with each reference replaced by its parameter's value, and where each one went.

    A reference to a parameter not in ``params`` is left as it is (the
    definition check reports it).
    """
    if is_ref(value):
        bound = params.get(value[KEY]) if isinstance(value[KEY], str) else None
        return (value, []) if bound is None else (copy.deepcopy(bound.value), [(at, bound)])
    used: list[tuple[Path, Bound]] = []
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out[k], found = substitute(v, params, (*at, k))
            used += found
        return out, used
    if isinstance(value, list):
        items = []
        for i, v in enumerate(value):
            item, found = substitute(v, params, (*at, i))
            items.append(item)
            used += found
        return items, used
    return value, used


# long: one pass over the instance's given parameters, then the declared ones it left out.
def bind(
    name: str, block: Mapping[str, Any], node: Mapping[str, Any], path: Path, outer: Params | None
) -> tuple[dict[str, Bound], list[Problem]]:
    """The parameters of one instance of block ``name``: given, passed through, or defaulted.

    Args:
        name: the block.
        block: its definition.
        node: the instance.
        path: the instance's JSON path.
        outer: the enclosing instance's parameters (None at the top level).

    Returns:
        The bound parameters and the problems (unknown, missing, a pass-through
        outside a definition); the instance is expanded only when there are none.
    """
    declared: Mapping[str, Any] = block.get("params", {})
    given: Mapping[str, Any] = node.get("params", {})
    bound: dict[str, Bound] = {}
    problems: list[Problem] = []
    for key, value in given.items():
        where = (*path, "params", key)
        if key not in declared:
            near = did_you_mean(key, list(declared))
            hint = f"did you mean `{near[0]}`?" if near else _declared_hint(name, declared)
            problems.append(Problem(where, f"block `{name}` has no param `{key}`", hint, "reference"))
        elif is_ref(value) and outer is None:
            message = f'{{"$param": ...}} passes a parameter of the enclosing block, but `{path[-1]}` is in no block'
            problems.append(Problem(where, message, "write the value itself", "reference"))
        elif is_ref(value) and isinstance(value[KEY], str) and value[KEY] in (outer or {}):
            bound[key] = (outer or {})[value[KEY]]
        elif not is_ref(value):
            bound[key] = Bound(substitute(value, outer or {})[0], where, key)
    for key, spec in declared.items():
        if key not in given and isinstance(spec, dict):
            if "default" in spec:
                bound[key] = Bound(copy.deepcopy(spec["default"]), ("blocks", name, "params", key, "default"), key)
            else:
                where = (*path, "params") if "params" in node else path
                example = f'"params": {{"{key}": VALUE}}'
                message = f"block `{name}` needs param `{key}` (it has no default)"
                problems.append(Problem(where, message, example, "arity"))
    return bound, problems


def _declared_hint(name: str, declared: Mapping[str, Any]) -> str:
    if not declared:
        return f"block `{name}` declares no params"
    return f"its params: {quote_names(list(declared))}"


def configured(
    node: Mapping[str, Any], params: Params, flat: str, origin: Path, block: str
) -> tuple[dict[str, Any], list[Problem]]:
    """A block node with its parameters substituted, checked by the plain-node schema.

    Args:
        node: the node as the definition writes it.
        params: the instance's parameters.
        flat: the expanded node's id.
        origin: the definition node's path (``blocks.B.nodes.N``).
        block: the block's name.

    Returns:
        The node (a ``broken`` placeholder when the check fails) and the
        problems: one from a parameter points at where its value was written
        and names the definition key that received it; any other at the
        definition.
    """
    if "config" not in node or not any(True for _ in references(node["config"])):
        return dict(node), []
    config, used = substitute(node["config"], params)
    out = {**node, "config": config}
    if any(True for _ in references(config)):  # an undeclared or malformed reference: said by check_definitions
        return {BROKEN: True, "inputs": node["inputs"]}, []
    found = node_problems(out, ("nodes", flat))
    if not found:
        return out, []
    problems = [_placed(p, used, origin, block) for p in found]
    return {BROKEN: True, "inputs": node["inputs"]}, problems


def _placed(p: Problem, used: list[tuple[Path, Bound]], origin: Path, block: str) -> Problem:
    """A problem of a substituted node, moved to the parameter that caused it, or else to the definition."""
    rest = p.path[2:]  # ("nodes", flat, ...) -> what lies below the node
    below = rest[1:] if rest[:1] == ("config",) else None
    if below is not None:
        for at, bound in used:
            if below[: len(at)] == at or at[: len(below)] == below:
                key = json_path((*origin, "config", *at))
                message = f"{p.message} (the value of param `{bound.name}`, received by `{key}` in block `{block}`)"
                return Problem(bound.origin, message, p.hint, p.code, p.severity)
    return Problem((*origin, *rest), p.message, p.hint, p.code, p.severity)


def check_definitions(blocks: Mapping[str, Any]) -> tuple[list[Problem], list[Problem]]:
    """Parameter rules every definition must keep, used or not: (errors, warnings).

    Errors: a ``$param`` naming no declared parameter, a malformed one, params
    on a block with shared weights. Warnings: a declared parameter never used.
    """
    errors: list[Problem] = []
    warnings: list[Problem] = []
    for name, block in blocks.items():
        if not isinstance(block, dict) or BROKEN in block:
            continue
        declared = block.get("params", {})
        if declared and block.get("shared_weights", False):
            message = f"block `{name}` has shared weights, so its instances cannot differ by params"
            errors.append(Problem(("blocks", name, "params"), message, "remove `params` or `shared_weights`", "schema"))
        used: set[str] = set()
        for nid, node in block["nodes"].items():
            for key in ("config", "params"):
                for at, ref in references(node.get(key)):
                    where = ("blocks", name, "nodes", nid, key, *at)
                    bad = _bad_reference(name, ref, declared, where)
                    if bad is None:
                        used.add(ref[KEY])
                    else:
                        errors.append(bad)
        for key in declared:
            if key not in used:
                message = f"param `{key}` of block `{name}` is never used"
                hint = f'use it as {{"{KEY}": "{key}"}} in a node\'s config, or remove it'
                warnings.append(Problem(("blocks", name, "params", key), message, hint, "unused", "warning"))
    return errors, warnings


def _bad_reference(name: str, ref: dict[str, Any], declared: Mapping[str, Any], where: Path) -> Problem | None:
    """What is wrong with one ``{"$param": ...}`` in block ``name`` (None when it names a declared param)."""
    target = ref[KEY]
    if set(ref) != {KEY} or not isinstance(target, str):
        return Problem(where, 'a parameter reference is {"$param": NAME} and nothing else', "", "schema")
    if target in declared:
        return None
    near = did_you_mean(target, list(declared))
    declare = f'declare it: "blocks": {{"{name}": {{"params": {{"{target}": {{}}}}}}}}'
    hint = f"did you mean `{near[0]}`?" if near else declare
    return Problem((*where, KEY), f"block `{name}` declares no param `{target}`", hint, "reference")
