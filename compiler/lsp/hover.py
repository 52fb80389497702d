"""Hover: what fusec knows about the name under the cursor.

On a node or input id (its definition or any reference to it): its op,
output shape, parameters and input shapes, from the last check that
passed (the shapes of a file with an error elsewhere stay those of its
last good version, and say so). On a layer, merge, loss or metric name:
its doc and config keys. On a config key: its doc and default.
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types

from ..static.check import Checked
from .completion import node_path, rule_of_node, show_shape
from .documents import DocState, JsonPath, View
from .lexicon import param_markdown, rule_markdown, rule_of
from .references import TOP, reference_at, scope_of, strings_in
from .text import from_position, to_range

_OPS = ("layer", "merge", "shared", "block", "model")


def _op(view: View, node: JsonPath) -> str:
    for field in _OPS:
        value = view.string((*node, field))
        if value is not None:
            return f"{value} ({field})" if field in ("layer", "merge") else f"{field} `{value}`"
    return "node"


def _shape_of(checked: Checked, source: str) -> str:
    try:
        return show_shape(checked.shapes.of(source))
    except (KeyError, IndexError, ValueError):
        return "?"


def _node_text(state: DocState, scope: JsonPath, name: str, port: str = "") -> str | None:
    """The hover of a node or input id in ``scope``."""
    view, checked = state.view, state.checked
    is_input = scope == TOP and view.has(("inputs", name))
    node = (*scope, "nodes", name)
    if not is_input and not view.has(node):
        return None
    shown = f"{name}.{port}" if port else name
    lines = [f"**{shown}**: " + ("input" if is_input else _op(view, node))]
    if scope != TOP:
        lines.append(f"Inside block `{scope[1]}`: shapes depend on each instance.")
        return "\n\n".join(lines)
    info = checked.info.get(name) if checked is not None else None
    if checked is None or info is None:
        lines.append("Shapes are known once the spec checks.")
        return "\n\n".join(lines)
    facts = [f"- output shape: `{_shape_of(checked, shown)}`"]
    if info.params:
        facts.append(f"- parameters: {info.params:,} ({info.trainable:,} trainable)")
    if info.shared:
        facts.append(f"- call {info.call} of shared layer `{info.shared}`")
    sources = [text for _, text in strings_in(view, (*node, "inputs"))]
    facts += [f"- input `{s}`: `{_shape_of(checked, s)}`" for s in sources]
    if checked.spec.text != view.text:
        facts.append("\n*(from the last version that checked)*")
    return "\n\n".join(lines) + "\n\n" + "\n".join(facts)


def _name_text(view: View, path: JsonPath, where: str) -> str | None:
    """The hover of a layer, merge, loss or metric name, or of a config key."""
    node, rest = node_path(path)
    if node and rest and rest[0] == "config" and len(rest) == 2 and where == "key":
        rule = rule_of_node(view, node)
        param = rule.param_index.get(str(rest[1])) if rule is not None else None
        return param_markdown(rule, param) if rule is not None and param is not None else None
    if where != "value":
        return None
    name = view.string(path)
    if name is None:
        return None
    field: Any = path[-1] if node and len(rest) == 1 else None
    if path[:1] == ("outputs",) and len(path) >= 3:
        field = path[2] if path[2] in ("loss", "metrics") else None
    rule = rule_of(str(field), name) if field else None
    return rule_markdown(str(field), rule) if rule is not None else None


def hover(state: DocState, position: types.Position) -> types.Hover | None:
    """The hover at ``position``, or None where there is nothing to say."""
    view = state.view
    line, col = from_position(view.lines, position)
    path, where = view.positions.path_at(line, col)
    scope = scope_of(path)
    tail = path[len(scope) :]
    text = None
    if where == "key" and len(tail) == 2 and tail[0] in ("nodes", "inputs"):
        text = _node_text(state, scope, str(tail[1]))
    elif where == "value" and (ref := reference_at(view, path)) is not None and ref.kind == "id":
        text = _node_text(state, ref.scope, ref.name, ref.text.partition(".")[2])
    else:
        text = _name_text(view, path, where)
    if text is None:
        return None
    span = view.key_span(path) if where == "key" else view.value_span(path)
    return types.Hover(
        contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text),
        range=to_range(view.lines, span) if span is not None else None,
    )
