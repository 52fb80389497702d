"""Quick fixes: apply a problem's "did you mean `x`?" hint.

Each diagnostic with such a hint carries, in its ``data``, the JSON path of
the value at fault and the suggestion. The fix is worked out from the
document as it is when the editor asks: the value at the path is replaced
when the message names it (a dangling reference, an unknown layer type),
else the key (an unknown config key, input slot or block parameter); a
reference with a port (``lstmm.2``) keeps its port. Nothing is offered
when neither is named any more, so a stale diagnostic never edits the
wrong place.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lsprotocol import types

from .documents import DocState, JsonPath, View
from .text import to_range


@dataclass(frozen=True)
class Fix:
    """One quick fix: replace the key or the value at ``path``, ``old`` by ``new``."""

    path: JsonPath
    target: str  # key or value
    old: str
    new: str


def _named(message: str, word: str) -> bool:
    """Whether ``message`` names ``word`` as a whole word."""
    return bool(word) and re.search(rf"(?<![\w.]){re.escape(word)}(?!\w)", message) is not None


def find_fix(view: View, path: JsonPath, message: str, new: str) -> Fix | None:
    """What applying the suggestion ``new`` to the problem at ``path`` replaces, in the current text."""
    if not path:
        return None
    value = view.string(path)
    if value is not None:
        node, dot, port = value.partition(".")
        if dot and "." not in new and _named(message, node):
            return Fix(path, "value", value, f"{new}.{port}")
        if _named(message, value):
            return Fix(path, "value", value, new)
    key = path[-1]
    if isinstance(key, str) and _named(message, key) and view.key_span(path) is not None:
        return Fix(path, "key", key, new)
    return None


def _edit(view: View, fix: Fix) -> types.TextEdit | None:
    span = view.key_span(fix.path) if fix.target == "key" else view.value_span(fix.path)
    if span is None:
        return None
    return types.TextEdit(range=to_range(view.lines, span), new_text=json.dumps(fix.new))


def quick_fixes(state: DocState, found: Sequence[types.Diagnostic]) -> list[types.CodeAction]:
    """One preferred quick fix per diagnostic whose hint names the fix."""
    actions = []
    for diagnostic in found:
        data = diagnostic.data
        if not isinstance(data, Mapping) or diagnostic.source not in (None, "fusec"):
            continue
        path, new = data.get("path"), data.get("suggestion")
        if not isinstance(path, list) or not isinstance(new, str):
            continue
        fix = find_fix(state.view, tuple(path), diagnostic.message, new)
        edit = _edit(state.view, fix) if fix is not None else None
        if fix is None or edit is None:
            continue
        actions.append(
            types.CodeAction(
                title=f"Change `{fix.old}` to `{fix.new}`",
                kind=types.CodeActionKind.QuickFix,
                diagnostics=[diagnostic],
                edit=types.WorkspaceEdit(changes={state.uri: [edit]}),
                is_preferred=True,
            )
        )
    return actions
