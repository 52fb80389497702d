"""Go to definition, rename and the document outline.

All three read the tolerant view of the current text (``references.py``),
so they work while the file does not parse. A rename changes the
definition and every reference in the same scope, ports included
(``enc.1`` becomes ``encoder.1``), and is refused, with the reason, when
the new name breaks the ids rule or is taken.
"""

from __future__ import annotations

import json

from lsprotocol import types

from ..errors import Span
from .documents import DocState, JsonPath, View
from .references import (
    ID,
    TOP,
    Reference,
    definition_of,
    id_definitions,
    iter_references,
    port_definition,
    reference_at,
    target_at,
)
from .text import to_range


class RenameRefused(Exception):
    """A rename the spec's rules refuse; the message says why."""


def _range(view: View, span: Span | None) -> types.Range | None:
    return to_range(view.lines, span) if span is not None else None


def _anchor(view: View, path: JsonPath) -> types.Range | None:
    """Where a definition is shown: its key, or (a list item) its value."""
    return _range(view, view.key_span(path) or view.value_span(path))


def definition(state: DocState, path: JsonPath) -> list[types.Location]:
    """Where what the reference at ``path`` names is defined (a file for ``model`` and ``weights``).

    A port of a block instance (``tower.embedding``) has two: the instance
    node and the output in the block's definition.
    """
    view = state.view
    ref = reference_at(view, path)
    if ref is None:
        return []
    if ref.kind == "file":
        target = (state.path.parent / ref.text).resolve()
        if not target.is_file():
            return []
        zero = types.Position(line=0, character=0)
        return [types.Location(uri=target.as_uri(), range=types.Range(start=zero, end=zero))]
    places = [definition_of(view, ref), port_definition(view, ref)]
    ranges = [_anchor(view, p) for p in places if p is not None]
    return [types.Location(uri=state.uri, range=r) for r in ranges if r is not None]


def _refs_to(view: View, kind: str, scope: JsonPath, name: str) -> list[Reference]:
    return [
        r for r in iter_references(view) if r.kind == kind and r.name == name and (kind != "id" or r.scope == scope)
    ]


def _taken(view: View, kind: str, scope: JsonPath) -> set[str]:
    if kind == "block":
        return set(view.keys(("blocks",)))
    names = set(id_definitions(view, scope))
    return names | set(view.keys(("shared",))) if scope == TOP else names


def _definition_edit(view: View, kind: str, scope: JsonPath, name: str, new: str) -> types.TextEdit | None:
    if kind == "id":
        place = id_definitions(view, scope).get(name)
    else:
        place = ("shared" if kind == "shared" else "blocks", name)
    if place is None:
        return None
    span = view.key_span(place) or view.value_span(place)
    if span is None:
        return None
    return types.TextEdit(range=to_range(view.lines, span), new_text=json.dumps(new))


def rename(state: DocState, path: JsonPath, where: str, new: str) -> types.WorkspaceEdit | None:
    """Every edit that renames what the cursor names to ``new``.

    Raises:
        RenameRefused: ``new`` is not a valid id, or is taken in that scope.
    """
    view = state.view
    target = target_at(view, path, where)
    if target is None:
        return None
    kind, scope, name = target
    if not ID.fullmatch(new):
        raise RenameRefused(f"`{new}` is not a valid id: a letter, then letters, digits or _ (64 at most)")
    if new != name and new in _taken(view, kind, scope):
        raise RenameRefused(f"`{new}` is already an id here; pick another name")
    edits = []
    first = _definition_edit(view, kind, scope, name, new)
    if first is not None:
        edits.append(first)
    for ref in _refs_to(view, kind, scope, name):
        span = view.value_span(ref.path)
        if span is not None:
            text = new + ref.text[len(name) :] if kind == "id" else new
            edits.append(types.TextEdit(range=to_range(view.lines, span), new_text=json.dumps(text)))
    return types.WorkspaceEdit(changes={state.uri: edits})


def prepare_rename(state: DocState, path: JsonPath, where: str) -> types.Range | None:
    """The range of the name under the cursor, when it can be renamed."""
    view = state.view
    if target_at(view, path, where) is None:
        return None
    return _range(view, view.key_span(path) if where == "key" else view.value_span(path))


# --- the outline -----------------------------------------------------------------------

_SECTIONS = (
    ("inputs", types.SymbolKind.Variable),
    ("shared", types.SymbolKind.Class),
    ("blocks", types.SymbolKind.Module),
    ("nodes", types.SymbolKind.Function),
    ("outputs", types.SymbolKind.Event),
)
_OPS = ("layer", "merge", "shared", "block", "model")


def _detail(view: View, path: JsonPath, section: str) -> str:
    """A symbol's one-line detail: a node's op, an input's shape, an output's source and loss."""
    if section == "inputs":
        shape = [view.scalar(p) for p in view.items((*path, "shape"))]
        return json.dumps(shape) if shape else ""
    if section == "outputs":
        source, loss = view.string((*path, "from")), view.string((*path, "loss"))
        return " ".join(part for part in (f"from {source}" if source else "", loss or "") if part)
    for field in _OPS:
        value = view.string((*path, field))
        if value is not None:
            return value if field in ("layer", "merge") else f"{field} {value}"
    return ""


def _symbol(view: View, path: JsonPath, kind: types.SymbolKind, detail: str) -> types.DocumentSymbol | None:
    whole, key = view.member_span(path), view.key_span(path)
    if whole is None:
        return None
    return types.DocumentSymbol(
        name=str(path[-1]),
        kind=kind,
        range=to_range(view.lines, whole),
        selection_range=to_range(view.lines, key or whole),
        detail=detail or None,
        children=[],
    )


def _entries(view: View, section: JsonPath, kind: types.SymbolKind, name: str) -> list[types.DocumentSymbol]:
    out = []
    for path in view.items(section):
        symbol = _symbol(view, path, kind, _detail(view, path, name))
        if symbol is None:
            continue
        if name == "blocks":
            for sub, sub_kind in (("nodes", types.SymbolKind.Function), ("outputs", types.SymbolKind.Event)):
                symbol.children = [*(symbol.children or []), *_entries(view, (*path, sub), sub_kind, sub)]
        out.append(symbol)
    return out


def symbols(state: DocState) -> list[types.DocumentSymbol]:
    """The outline: one group per section (inputs, shared, blocks, nodes, outputs), one symbol per entry."""
    view = state.view
    out = []
    for section, kind in _SECTIONS:
        group = _symbol(view, (section,), types.SymbolKind.Namespace, "")
        if group is None:
            continue
        group.children = _entries(view, (section,), kind, section)
        out.append(group)
    return out


__all__ = ["TOP", "RenameRefused", "definition", "prepare_rename", "rename", "symbols"]
