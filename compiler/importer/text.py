"""A spec document as text: one node (shared layer, input, output) per line, blocks spelled out."""

from __future__ import annotations

import json
from typing import Any

#: Sections written one entry per line.
_ROWS = ("inputs", "shared", "nodes", "outputs")


def spec_text(doc: dict[str, Any]) -> str:
    """The spec's text: ``fusec.spec.fold.write_spec_text`` when it exists, else one entry per line."""
    try:
        from ..spec.fold import write_spec_text  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return _text(doc)
    return str(write_spec_text(doc))


def _text(doc: dict[str, Any]) -> str:
    lines = ["{"]
    items = list(doc.items())
    for i, (key, value) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        lines.extend(_entry(key, value, "  ", comma))
    lines.append("}")
    return "\n".join(lines) + "\n"


def _entry(key: str, value: Any, pad: str, comma: str) -> list[str]:
    """One key of the document (or of a block): a row section, the blocks, or one line."""
    head = f"{pad}{json.dumps(key)}: "
    if key in _ROWS and isinstance(value, dict) and value:
        return [head + "{", *_rows(value, pad + "  "), f"{pad}}}{comma}"]
    if key == "blocks" and isinstance(value, dict) and value:
        out = [head + "{"]
        names = list(value)
        for j, name in enumerate(names):
            block = value[name]
            out.append(f"{pad}  {json.dumps(name)}: {{")
            keys = list(block)
            for k, inner in enumerate(keys):
                out.extend(_entry(inner, block[inner], pad + "    ", "," if k < len(keys) - 1 else ""))
            out.append(f"{pad}  }}" + ("," if j < len(names) - 1 else ""))
        out.append(f"{pad}}}{comma}")
        return out
    return [head + json.dumps(value) + comma]


def _rows(section: dict[str, Any], pad: str) -> list[str]:
    names = list(section)
    return [
        f"{pad}{json.dumps(n)}: {json.dumps(section[n])}" + ("," if i < len(names) - 1 else "")
        for i, n in enumerate(names)
    ]
