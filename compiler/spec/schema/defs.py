"""Repeated parameter schemas, written once under ``$defs``.

Many layers take the same kind of parameter: a regularizer object, an
initializer or activation name, a kernel size. Written out in every config
that takes one, they made the schema half again as long. ``hoist_repeated``
moves each parameter schema that occurs more than once (and is at least
MIN_LINES long) into ``$defs``; each place that used it keeps its own title
and description next to a ``$ref``.

Validation is unchanged: the annotations that stay behind never change a
verdict, and the validating keywords move together, in their order. Only
schemas that are identical, key order included, share a definition.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

#: Keys that stay at each use: they document the place, and never change a verdict.
ANNOTATIONS = frozenset({"title", "description", "default", "examples", "$comment"})

#: A repeated schema shorter than this (in lines of the committed file) stays where it is.
MIN_LINES = 12


def json_lines(value: Any) -> int:
    """How many lines ``value`` takes in ``json.dumps(value, indent=2)``."""
    if isinstance(value, dict) and value:
        return 2 + sum(json_lines(v) for v in value.values())
    if isinstance(value, list) and value:
        return 2 + sum(json_lines(v) for v in value)
    return 1


def _core(schema: dict[str, Any]) -> dict[str, Any]:
    """The validating part of a schema: what a shared definition holds."""
    return {k: v for k, v in schema.items() if k not in ANNOTATIONS}


def _sites(schema: Any, owner: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(owner, name, schema)`` for every parameter schema (a value of a ``properties`` map) in ``schema``."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "properties" and isinstance(value, dict):
                for name, sub in value.items():
                    if isinstance(sub, dict) and "$ref" not in sub:
                        yield owner, name, sub
            yield from _sites(value, owner)
    elif isinstance(schema, list):
        for value in schema:
            yield from _sites(value, owner)


def _common_suffix(names: Iterable[str]) -> str:
    """The ``_``-separated tail all ``names`` share (``kernel_regularizer``, ``bias_regularizer``: ``regularizer``)."""
    parts = [name.split("_") for name in names]
    tail: list[str] = []
    for words in zip(*(reversed(p) for p in parts), strict=False):
        if len(set(words)) != 1:
            break
        tail.insert(0, words[0])
    return "_".join(tail)


@dataclass
class _Hoister:
    """The definitions made so far, by name and by their JSON text."""

    defs: dict[str, Any]
    by_text: dict[str, str] = field(default_factory=dict)

    def name(self, uses: list[tuple[str, str]]) -> str:
        """A readable, unused name for a definition used at ``uses`` (owner, parameter name).

        The ending every use's name shares (``regularizer``), else the first
        use's place (``Conv2D.kernel_size``, also used for ``strides``).
        """
        owner, first = uses[0]
        for name in (_common_suffix(n for _, n in uses), f"{owner}.{first}"):
            if name and name not in self.defs:
                return name
        n = 2
        while f"{owner}.{first}_{n}" in self.defs:
            n += 1
        return f"{owner}.{first}_{n}"

    def plan(self, scope: Iterable[str]) -> dict[str, str]:
        """JSON text -> definition name, for every repeated schema worth sharing in ``scope``."""
        uses: dict[str, list[tuple[str, str]]] = {}
        cores: dict[str, dict[str, Any]] = {}
        for owner in scope:
            for site_owner, name, sub in _sites(self.defs[owner], owner):
                core = _core(sub)
                text = json.dumps(core)
                uses.setdefault(text, []).append((site_owner, name))
                cores.setdefault(text, core)
        repeated = [t for t, u in uses.items() if len(u) > 1 and t not in self.by_text]
        repeated = [t for t in repeated if json_lines(cores[t]) >= MIN_LINES]
        repeated.sort(key=lambda t: -len(uses[t]))  # the most used gets the plainest name
        plan = dict(self.by_text)
        for text in repeated:
            name = self.name(uses[text])
            plan[text] = name
            self.by_text[text] = name
            self.defs[name] = cores[text]
        return plan

    def rewrite(self, schema: Any, plan: dict[str, str]) -> Any:
        """``schema`` with each planned parameter schema replaced by a ``$ref`` (a copy: the input is not changed)."""
        if isinstance(schema, list):
            return [self.rewrite(v, plan) for v in schema]
        if not isinstance(schema, dict):
            return schema
        out = {}
        for key, value in schema.items():
            if key == "properties" and isinstance(value, dict):
                out[key] = {name: self._use(sub, plan) for name, sub in value.items()}
            else:
                out[key] = self.rewrite(value, plan)
        return out

    def _use(self, sub: Any, plan: dict[str, str]) -> Any:
        if isinstance(sub, dict) and "$ref" not in sub:
            name = plan.get(json.dumps(_core(sub)))
            if name is not None:
                return {"$ref": f"#/$defs/{name}", **{k: v for k, v in sub.items() if k in ANNOTATIONS}}
        return self.rewrite(sub, plan)


def hoist_repeated(defs: dict[str, Any], scope: Iterable[str]) -> None:
    """Share the parameter schemas repeated across the definitions named by ``scope``.

    Args:
        defs: the schema's ``$defs``; the shared definitions are added to it,
            and the definitions in ``scope`` are replaced by rewritten copies
            (the objects they were built from are not changed).
        scope: the definitions whose parameter schemas may be shared.
    """
    hoister = _Hoister(defs)
    names = list(scope)
    while True:
        before = len(defs)
        plan = hoister.plan(names)
        added = list(defs)[before:]
        if not added:
            return
        names += added  # a shared schema may hold another one: rewritten too, and searched on the next pass
        for name in names:
            defs[name] = hoister.rewrite(defs[name], plan)
