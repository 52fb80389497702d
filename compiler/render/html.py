"""The interactive HTML review page: one self-contained file, no network.

``page(views, data)`` inlines the Graphviz SVG of every view, the page's CSS
and script (``render/page/``: page.html, page.css, page.js with panel.js) and
the node data as JSON into one UTF-8 HTML file that works from ``file://``. A Content-Security-Policy forbids every
network request and runs only the page's own script (pinned by its hash).

Safety: the SVGs come from ``dot`` with every spec string already escaped by
``render.style.esc``; the data is embedded as ``<script type="application/json">``
with ``<``, ``>``, ``&``, U+2028 and U+2029 escaped, so no spec string can
close the script or inject markup; the script only ever writes spec strings
with ``textContent``. Each view's element ids get the view's name as a prefix
(``main-n3``), so two views can live in one document.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .style import esc

ASSETS = Path(__file__).with_name("page")
VIEW_NAME = re.compile(r"[a-z][a-z0-9]*")
_PROLOGUE = re.compile(r"<\?xml[^>]*\?>|<!DOCTYPE[^>]*>|<!--.*?-->", re.S)
_TAG = re.compile(r"<[^<>]*>")
_ID_ATTR = re.compile(r'(\s(?:id|xlink:href|href)=")(#?)([^"]*)"')
_URL_REF = re.compile(r"url\(#([^)]*)\)")
_SVG_ROOT_ATTR = re.compile(r'\s(?:width|height|xmlns(?::\w+)?)="[^"]*"')  # HTML gives inline SVG its namespaces
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_JSON_UNSAFE = re.compile("[<>&\u2028\u2029]")
_SLOT = re.compile(r"\{\{(\w+)\}\}")


def embed_json(data: Any) -> str:
    """``data`` as JSON text safe inside ``<script type="application/json">``.

    Args:
        data: plain JSON data (str, int, float, bool, None, list, dict).

    Returns:
        Compact JSON with ``< > &`` and the line and paragraph separators as
        ``\\uXXXX`` escapes: the text can never contain ``</script`` or ``<!--``.
    """
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return _JSON_UNSAFE.sub(lambda m: _JSON_ESCAPES[m[0]], text)


def inline_svg(svg: str, view: str) -> str:
    """One Graphviz SVG made ready to sit inside an HTML page beside others.

    Args:
        svg: the SVG text ``dot -Tsvg`` wrote.
        view: the view's name; every ``id`` (and every reference to one) gets
            the prefix ``view-``.

    Returns:
        The ``<svg>`` element without the XML prologue, DOCTYPE and comments,
        sized by the page (its width and height attributes become 100%).
    """
    body = _PROLOGUE.sub("", svg).strip()
    prefix = f"{view}-"

    def attr(a: re.Match[str]) -> str:
        if a[1].endswith('id="') or a[2]:
            return f'{a[1]}{a[2]}{prefix}{a[3]}"'
        return ""  # a link out of the page: never drawn by fusec, dropped if present

    def ids(m: re.Match[str]) -> str:
        return _URL_REF.sub(lambda u: f"url(#{prefix}{u[1]})", _ID_ATTR.sub(attr, m[0]))

    body = _TAG.sub(ids, body)
    start = body.find("<svg")
    if start < 0:
        raise ValueError("not an SVG document: no <svg> element")
    end = body.index(">", start)
    head = _SVG_ROOT_ATTR.sub("", body[start:end])
    return f'{head} width="100%" height="100%" preserveAspectRatio="xMidYMid meet"{body[end:]}'


def _asset(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


def _script() -> str:
    """page.js with panel.js inlined at its marker (one closure: they share its variables)."""
    main, marker = _asset("page.js"), "  /* panel.js */\n"
    if marker not in main:
        raise RuntimeError("page.js lost its /* panel.js */ marker")
    return main.replace(marker, _asset("panel.js"), 1)


def _csp(script: str) -> str:
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )


def _count(n: int, what: str) -> str:
    return f"{n:,} {what}{'' if n == 1 else 's'}"


def _stats(data: Mapping[str, Any]) -> str:
    totals = data.get("totals") or {}
    params = int(totals.get("params", 0))
    trainable = int(totals.get("trainable", 0))
    frozen = int(totals.get("non_trainable", 0))
    nodes = int(data.get("nodes_count", len(data.get("nodes") or {})))
    problems = len(data.get("problems") or [])
    parts = [f"{params:,} params ({trainable:,} trainable, {frozen:,} non-trainable)", _count(nodes, "node")]
    if problems:
        parts.append(_count(problems, "problem"))
    return " · ".join(parts)


def _views(views: Mapping[str, str]) -> str:
    if "main" not in views:
        raise ValueError("the page needs a 'main' view")
    out = []
    for name, svg in views.items():
        if not VIEW_NAME.fullmatch(name):
            raise ValueError(f"view name {name!r} is not a lower-case identifier")
        hidden = "" if name == "main" else " hidden"
        out.append(f'<div class="view" id="view-{name}" data-view="{name}"{hidden}>{inline_svg(svg, name)}</div>')
    return "\n".join(out)


def page(views: Mapping[str, str], data: Mapping[str, Any]) -> bytes:
    """The review page: one self-contained UTF-8 HTML file.

    Args:
        views: ``{"main": svg}`` and, when ×N groups exist, ``{"unfolded": svg}``
            (SVG text from ``dot -Tsvg``, with the DOM ids of docs/render.md).
        data: the page data (docs/render.md, "The review page"): plain JSON.

    Returns:
        The HTML bytes: inline SVGs, CSS, script and data; no external URL.

    Raises:
        ValueError: ``views`` lacks "main", a view name is not an identifier,
            or a view is not SVG.
    """
    script = _script()
    name = str(data.get("name") or "model")
    slots = {
        "csp": _csp(script),
        "title": esc(f"{name} · fusec"),
        "name": esc(name),
        "doc": esc(data.get("doc") or "", 300),
        "stats": esc(_stats(data)),
        "css": _asset("page.css"),
        "views": _views(views),
        "data": embed_json(dict(data)),
        "script": script,
    }
    text = _SLOT.sub(lambda m: slots[m[1]], _asset("page.html"))
    return text.encode("utf-8")
