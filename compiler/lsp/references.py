"""Every reference in a spec and what it points at, read from the tolerant view.

A spec names things in four ways: node and input ids (a node's
``inputs``, an output's ``from``, a block's ``outputs``), shared layers (a
node's ``shared``), blocks (a node's ``block``) and files (a node's
``model`` and ``weights``). Ids live in scopes: the top level (``inputs``
and ``nodes``) and each block definition (its ``inputs`` and ``nodes``),
so the same id may mean different nodes in two blocks. An id reference may
name an output port, ``enc.1`` or ``tower.embedding``: its node part is
what goes to a definition and what a rename changes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from .documents import JsonPath, View

#: The ids rule of the schema (nodes, inputs, shared layers, blocks).
ID = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
TOP: JsonPath = ()


@dataclass(frozen=True)
class Reference:
    """One string in the spec that names something.

    Attributes:
        path: where the string sits.
        text: the string as written (``enc.1``).
        kind: ``id``, ``shared``, ``block`` or ``file``.
        scope: ``()`` for the top level, ``("blocks", NAME)`` inside a block definition.
    """

    path: JsonPath
    text: str
    kind: str
    scope: JsonPath

    @property
    def name(self) -> str:
        """What it names: the node part of an id (``enc`` for ``enc.1``), else the whole text."""
        return self.text.partition(".")[0] if self.kind == "id" else self.text


def scopes(view: View) -> list[JsonPath]:
    """The top level and every block definition."""
    return [TOP, *(("blocks", b) for b in view.keys(("blocks",)))]


def scope_of(path: JsonPath) -> JsonPath:
    """The scope a path lies in."""
    return tuple(path[:2]) if len(path) >= 2 and path[0] == "blocks" else TOP


def strings_in(view: View, path: JsonPath) -> Iterator[tuple[JsonPath, str]]:
    """Every string at or inside ``path`` (``inputs`` values: a string, a list, an object of either)."""
    value = view.string(path)
    if value is not None:
        yield path, value
        return
    for child in view.items(path):
        yield from strings_in(view, child)


def iter_references(view: View) -> Iterator[Reference]:
    """Every reference in the document, in text order within each scope."""
    for scope in scopes(view):
        for nid in view.keys((*scope, "nodes")):
            node = (*scope, "nodes", nid)
            for path, text in strings_in(view, (*node, "inputs")):
                yield Reference(path, text, "id", scope)
            for field, kind in (("shared", "shared"), ("block", "block"), ("model", "file"), ("weights", "file")):
                value = view.string((*node, field))
                if value is not None:
                    yield Reference((*node, field), value, kind, scope)
        if scope == TOP:
            for name in view.keys(("outputs",)):
                value = view.string(("outputs", name, "from"))
                if value is not None:
                    yield Reference(("outputs", name, "from"), value, "id", TOP)
        else:
            for name in view.keys((*scope, "outputs")):
                value = view.string((*scope, "outputs", name))
                if value is not None:
                    yield Reference((*scope, "outputs", name), value, "id", scope)


def reference_at(view: View, path: JsonPath) -> Reference | None:
    """The reference whose string sits at ``path``, if one does."""
    scope = scope_of(path)
    text = view.string(path)
    if text is None or len(path) < 2:
        return None
    tail = path[len(scope) :]
    if tail[:1] == ("outputs",) and (tail[-1] == "from" if scope == TOP else len(tail) == 2):
        return Reference(path, text, "id", scope)
    if len(tail) >= 3 and tail[0] == "nodes":
        field = tail[2]
        if field == "inputs":
            return Reference(path, text, "id", scope)
        kinds = {"shared": "shared", "block": "block", "model": "file", "weights": "file"}
        if len(tail) == 3 and field in kinds:
            return Reference(path, text, kinds[str(field)], scope)
    return None


def input_names(view: View, scope: JsonPath) -> list[tuple[JsonPath, str]]:
    """The inputs of a scope: (path of the definition, id)."""
    if scope == TOP:
        return [(("inputs", i), i) for i in view.keys(("inputs",))]
    found = []
    for path in view.items((*scope, "inputs")):
        name = view.string(path)
        if name is not None:
            found.append((path, name))
    return found


def id_definitions(view: View, scope: JsonPath) -> dict[str, JsonPath]:
    """Every id of a scope (inputs and nodes) and where it is defined."""
    out = {name: path for path, name in input_names(view, scope)}
    for nid in view.keys((*scope, "nodes")):
        out.setdefault(nid, (*scope, "nodes", nid))
    return out


def definition_of(view: View, ref: Reference) -> JsonPath | None:
    """Where a reference's target is defined in this document (None: nowhere, or another file)."""
    if ref.kind == "id":
        return id_definitions(view, ref.scope).get(ref.name)
    if ref.kind == "shared":
        return ("shared", ref.name) if view.has(("shared", ref.name)) else None
    if ref.kind == "block":
        return ("blocks", ref.name) if view.has(("blocks", ref.name)) else None
    return None


def port_definition(view: View, ref: Reference) -> JsonPath | None:
    """For ``inst.port`` naming a block instance's output: that output in the block's definition."""
    node, _, port = ref.text.partition(".")
    if ref.kind != "id" or not port:
        return None
    block = view.string((*ref.scope, "nodes", node, "block"))
    if block is None or not view.has(("blocks", block, "outputs", port)):
        return None
    return ("blocks", block, "outputs", port)


def target_at(view: View, path: JsonPath, where: str) -> tuple[str, JsonPath, str] | None:
    """What the cursor names, for rename and definition: (kind, scope, name).

    On a definition (a node's, input's, shared layer's or block's key, a
    block input's name) or on a reference to one.
    """
    scope = scope_of(path)
    tail = path[len(scope) :]
    if where == "key" and len(tail) == 2 and tail[0] in ("nodes", "inputs") and isinstance(tail[1], str):
        return "id", scope, tail[1]
    if where == "key" and path[:1] in (("shared",), ("blocks",)) and len(path) == 2:
        return ("shared" if path[0] == "shared" else "block"), TOP, str(path[1])
    if scope != TOP and len(tail) == 2 and tail[0] == "inputs" and isinstance(tail[1], int):
        name = view.string(path)
        return ("id", scope, name) if name else None
    ref = reference_at(view, path)
    if ref is None or ref.kind == "file":
        return None
    return ref.kind, (ref.scope if ref.kind == "id" else TOP), ref.name
