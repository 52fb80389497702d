"""Completion: what may be written where the cursor is.

The cursor's place comes from ``Positions.path_at`` on the current text
(tolerant of a file being typed), corrected by the text just before the
cursor on its line: after ``"layer": `` the value has not begun yet, so the
scanner still places the cursor in the node; the key before the colon says
what comes. Offered, by place:

- ``layer`` / ``merge`` values: every layer or merge name, with its doc;
- ``shared`` / ``block`` values: the spec's shared layers and blocks;
- ``inputs`` (any form), an output's ``from``, a block's ``outputs``: the
  ids of that scope, block instance ports (``tower.embedding``) and a
  node's further outputs (``lstm.1``, from the last check);
- a ``config`` object: the keys of the node's layer or merge, each as a
  snippet with its true default (a required key: an example value);
- a config value: the key's closed choices (activations, enums, booleans);
- ``loss`` and ``metrics``: the loss and metric names, with their docs;
- inside ``nodes``: a whole new node of each layer and merge, as a snippet.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from lsprotocol import types

from ..vocab.rule import Rule
from .documents import DocState, JsonPath, View
from .lexicon import NAMES, choices, example_value, rule_markdown
from .references import TOP, id_definitions, scope_of
from .text import from_position, string_at, utf16_col

_KEY_BEFORE = re.compile(r'"((?:[^"\\]|\\.)*)"\s*:\s*(?:"(?:[^"\\]|\\.)*)?$')
_SNIPPET_ESCAPE = re.compile(r"([$}\\])")  # inside a placeholder
_SNIPPET_TEXT_ESCAPE = re.compile(r"([$\\])")  # outside one
Kind = types.CompletionItemKind


@dataclass(frozen=True)
class Cursor:
    """Where completion was asked: the path and side there, and the string token under the cursor."""

    state: DocState
    path: JsonPath
    where: str
    line: int  # 0-based
    col: int  # 0-based characters
    token: tuple[int, int] | None  # [start, end) of the string literal around the cursor

    @property
    def view(self) -> View:
        return self.state.view

    def edit_range(self, position: types.Position) -> types.Range:
        """The range an item replaces: the string being typed (quotes included), else nothing."""
        if self.token is None:
            return types.Range(start=position, end=position)
        text = self.view.lines[self.line]
        start = types.Position(line=self.line, character=utf16_col(text, self.token[0]))
        return types.Range(start=start, end=types.Position(line=self.line, character=utf16_col(text, self.token[1])))

    @property
    def before_colon(self) -> bool:
        """True when the key being typed already has its colon after it."""
        text = self.view.lines[self.line]
        rest = text[self.token[1] :] if self.token else text[self.col :]
        return rest.lstrip().startswith(":")


def locate(state: DocState, line: int, col: int) -> Cursor:
    """The cursor at 0-based (line, character column), with the key before it on its line folded in."""
    view = state.view
    path, where = view.positions.path_at(line + 1, col + 1)
    text = view.lines[line] if line < len(view.lines) else ""
    token = string_at(text, col)
    before = _KEY_BEFORE.search(text[:col])
    if before and where == "value" and (not path or path[-1] != before.group(1)):
        path = (*path, before.group(1))
    return Cursor(state, tuple(path), where, line, col, token)


def _item(
    cursor: Cursor,
    position: types.Position,
    label: str,
    kind: types.CompletionItemKind,
    text: str | None = None,
    detail: str | None = None,
    doc: str | None = None,
    snippet: bool = False,
) -> types.CompletionItem:
    new = text if text is not None else json.dumps(label)
    return types.CompletionItem(
        label=label,
        kind=kind,
        detail=detail,
        documentation=types.MarkupContent(kind=types.MarkupKind.Markdown, value=doc) if doc else None,
        filter_text=json.dumps(label),
        text_edit=types.TextEdit(range=cursor.edit_range(position), new_text=new),
        insert_text_format=types.InsertTextFormat.Snippet if snippet else types.InsertTextFormat.PlainText,
    )


def _names(cursor: Cursor, position: types.Position, field: str) -> list[types.CompletionItem]:
    table = NAMES[field]
    kind = Kind.Class if field in ("layer", "merge") else Kind.EnumMember
    return [
        _item(cursor, position, name, kind, detail=rule.doc, doc=rule_markdown(field, rule))
        for name, rule in table.items()
    ]


def _ids(cursor: Cursor, position: types.Position, scope: JsonPath, own: str | None) -> list[types.CompletionItem]:
    """The ids a reference in ``scope`` may name: inputs, nodes, instance ports, further outputs."""
    view, checked = cursor.view, cursor.state.checked
    items = []
    for name, where in id_definitions(view, scope).items():
        if name == own:
            continue
        detail = _id_detail(cursor, scope, name, where)
        items.append(
            _item(cursor, position, name, Kind.Variable if where[-2] == "inputs" else Kind.Reference, detail=detail)
        )
        block = view.string((*scope, "nodes", name, "block"))
        ports = view.keys(("blocks", block, "outputs")) if block else []
        items += [
            _item(cursor, position, f"{name}.{p}", Kind.Field, detail=f"output `{p}` of block {block}") for p in ports
        ]
        if scope == TOP and checked is not None:
            extra = checked.shapes.extras.get(name, ())
            items += [
                _item(cursor, position, f"{name}.{k}", Kind.Field, detail=f"output {k}: {show_shape(s)}")
                for k, s in enumerate(extra, start=1)
            ]
    return items


def show_shape(shape: Iterable[Any]) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _id_detail(cursor: Cursor, scope: JsonPath, name: str, where: JsonPath) -> str:
    view, checked = cursor.view, cursor.state.checked
    if where[len(scope)] == "inputs":
        op = "input"
    else:
        op = next(
            (v for f in ("layer", "merge", "shared", "block", "model") if (v := view.string((*where, f)))), "node"
        )
    info = checked.info.get(name) if checked is not None and scope == TOP else None
    return f"{op} → {show_shape(info.shape)}" if info is not None else op


def rule_of_node(view: View, node: JsonPath) -> Rule | None:
    """The layer or merge rule of the node (or shared layer) at ``node``."""
    for field in ("layer", "merge"):
        name = view.string((*node, field))
        if name is not None and name in NAMES[field]:
            return NAMES[field][name]
    shared = view.string((*node, "shared"))
    if shared is not None:
        return rule_of_node(view, ("shared", shared))
    return None


def _snippet_value(value: Any, placeholder: bool = True) -> str:
    """``value`` as JSON, escaped for a snippet (inside a placeholder ``}`` is escaped too)."""
    pattern = _SNIPPET_ESCAPE if placeholder else _SNIPPET_TEXT_ESCAPE
    return pattern.sub(r"\\\1", json.dumps(value))


def _config_keys(cursor: Cursor, position: types.Position, node: JsonPath) -> list[types.CompletionItem]:
    view = cursor.view
    rule = rule_of_node(view, node)
    if rule is None:
        return []
    present = set(view.keys((*node, "config")))
    items = []
    for p in rule.params:
        if p.name in present and cursor.where != "key":
            continue
        value = example_value(rule, p)
        if cursor.before_colon:
            text, snippet = json.dumps(p.name), False
        else:
            text, snippet = f'"{p.name}": ${{1:{_snippet_value(value)}}}', True
        need = "required" if p.required else f"default {json.dumps(p.default)}"
        items.append(_item(cursor, position, p.name, Kind.Property, text, f"{need}: {p.doc}", p.doc, snippet))
    return items


def _config_values(cursor: Cursor, position: types.Position, node: JsonPath, key: str) -> list[types.CompletionItem]:
    rule = rule_of_node(cursor.view, node)
    param = rule.param_index.get(key) if rule is not None else None
    if param is None:
        return []
    return [
        _item(cursor, position, json.dumps(v) if not isinstance(v, str) else v, Kind.Value, json.dumps(v))
        for v in choices(param)
    ]


def _node_snippets(cursor: Cursor, position: types.Position) -> list[types.CompletionItem]:
    """A whole new node of each layer and merge (a key position inside ``nodes``)."""
    items = []
    for field in ("layer", "merge"):
        for name, rule in NAMES[field].items():
            config = {p.name: example_value(rule, p) for p in rule.params if p.required}
            body = f'"{field}": "{name}"'
            if config:
                body += f', "config": {_snippet_value(config, placeholder=False)}'
            inputs = '"inputs": "${2}"' if field == "layer" else '"inputs": ["${2}", "${3}"]'
            text = f'"${{1:{name.lower()}}}": {{{body}, {inputs}}}'
            items.append(
                _item(
                    cursor, position, f"new {name} node", Kind.Snippet, text, rule.doc, rule_markdown(field, rule), True
                )
            )
    for item in items:
        item.filter_text = item.label
    return items


# --- which items, by place ----------------------------------------------------------------

Items = list[types.CompletionItem] | None


def node_path(path: JsonPath) -> tuple[JsonPath, JsonPath]:
    """(the node or shared layer the path is in, the rest of the path below it); ``((), path)`` if none."""
    scope = scope_of(path)
    tail = path[len(scope) :]
    if len(tail) >= 2 and tail[0] == "nodes":
        return (*scope, *tail[:2]), tail[2:]
    if len(path) >= 2 and path[0] == "shared":
        return path[:2], path[2:]
    return (), path


def _op_values(cursor: Cursor, position: types.Position) -> Items:
    node, rest = node_path(cursor.path)
    if not node or len(rest) != 1 or cursor.where != "value":
        return None
    field, view = rest[0], cursor.view
    if field in ("layer", "merge"):
        return _names(cursor, position, str(field))
    if field == "shared":
        return [
            _item(cursor, position, s, Kind.Class, detail=view.string(("shared", s, "layer")))
            for s in view.keys(("shared",))
        ]
    if field == "block":
        return [_item(cursor, position, b, Kind.Module, detail="block") for b in view.keys(("blocks",))]
    return None


def _references(cursor: Cursor, position: types.Position) -> Items:
    path = cursor.path
    scope = scope_of(path)
    tail = path[len(scope) :]
    if cursor.where != "value":
        return None
    if len(tail) >= 3 and tail[0] == "nodes" and tail[2] == "inputs":
        return _ids(cursor, position, scope, str(tail[1]))
    if scope == TOP and len(path) == 3 and path[0] == "outputs" and path[2] == "from":
        return _ids(cursor, position, TOP, None)
    if scope != TOP and len(tail) == 2 and tail[0] == "outputs":
        return _ids(cursor, position, scope, None)
    return None


def _objectives(cursor: Cursor, position: types.Position) -> Items:
    path = cursor.path
    if len(path) < 3 or path[0] != "outputs" or cursor.where != "value":
        return None
    if path[2] == "loss" and len(path) == 3:
        return _names(cursor, position, "loss")
    if path[2] == "metrics" and len(path) in (3, 4):
        return _names(cursor, position, "metrics")
    return None


def _config(cursor: Cursor, position: types.Position) -> Items:
    node, rest = node_path(cursor.path)
    if not node or not rest or rest[0] != "config":
        return None
    if (len(rest) == 1 and cursor.where == "value") or (len(rest) == 2 and cursor.where == "key"):
        return _config_keys(cursor, position, node)
    if len(rest) == 2:
        return _config_values(cursor, position, node, str(rest[1]))
    return None


def _new_node(cursor: Cursor, position: types.Position) -> Items:
    scope = scope_of(cursor.path)
    if cursor.path == (*scope, "nodes") and cursor.where == "value":
        return _node_snippets(cursor, position)
    return None


_HANDLERS: tuple[Callable[[Cursor, types.Position], Items], ...] = (
    _op_values,
    _references,
    _objectives,
    _config,
    _new_node,
)


def complete(state: DocState, position: types.Position) -> types.CompletionList:
    """The completion items at ``position`` (none where nothing fits)."""
    line, col = from_position(state.view.lines, position)
    cursor = locate(state, line - 1, col - 1)
    for handler in _HANDLERS:
        items = handler(cursor, position)
        if items is not None:
            return types.CompletionList(is_incomplete=False, items=items)
    return types.CompletionList(is_incomplete=False, items=[])
