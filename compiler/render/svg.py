"""SVG after layout: each element's ``<title>`` (what a browser shows on hover) becomes its real name.

Graphviz writes a node's DOT name (``n0``) as its title, an edge's as
``n0&#45;&gt;n1`` and a frame's as ``cluster_c0``. Every element carries its
DOM id (``<g id="n0" class="node">``), so the title right after it is replaced
by the escaped name ``dot.py`` recorded: the node's id, ``a → b`` for an edge,
``instance · block`` for a frame. No spec string ever passes through a DOT
attribute other than an escaped HTML-like label.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_TITLE = re.compile(r'(<g id="([^"]+)" class="(?:node|edge|cluster)">\s*<title>)([^<]*)(</title>)')


def retitle(svg: str, titles: Mapping[str, str]) -> str:
    """``svg`` with the title of every element whose DOM id is in ``titles`` replaced (titles are escaped)."""
    return _TITLE.sub(lambda m: m[1] + titles.get(m[2], m[3]) + m[4], svg)
