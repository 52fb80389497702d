"""The review page's HTML (fusec.render.html): one self-contained file, safe data, namespaced views.

Python-level checks only; tests/test_browser.py drives the page in Chromium.
"""

from __future__ import annotations

import base64
import hashlib
import html.parser
import json
import re
import shutil
from collections import Counter
from typing import Any

import pytest
import test_page_kit as kit

from fusec.render.html import embed_json, inline_svg, page

pytestmark = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")


class _Scan(html.parser.HTMLParser):
    """Every element's id, every URL-bearing attribute, and the scripts' text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: list[str] = []
        self.links: list[tuple[str, str, str]] = []
        self.scripts: list[tuple[str | None, str]] = []
        self._script: str | bool | None = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for k, v in attrs:
            if k == "id" and v is not None:
                self.ids.append(v)
            if k in ("src", "href", "xlink:href", "action", "srcset", "poster", "data"):
                self.links.append((tag, k, v or ""))
        if tag == "script":
            self._script = dict(attrs).get("type")

    def handle_data(self, data: str) -> None:
        if self._script is not False:
            self.scripts.append((self._script if isinstance(self._script, str) else None, data))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = False


@pytest.fixture(scope="module")
def views() -> dict[str, str]:
    return kit.svgs()


@pytest.fixture(scope="module")
def demo(views: dict[str, str]) -> str:
    return page(views, kit.data()).decode("utf-8")


def scan(text: str) -> _Scan:
    s = _Scan()
    s.feed(text)
    s.close()
    return s


def test_one_self_contained_file(demo: str) -> None:
    assert demo.startswith("<!DOCTYPE html>")
    assert not re.search(r"(?i)https?:|ftp:|data:[a-z]|@import|<link|<img|<iframe|<object|<embed", demo)
    assert not re.search(r"url\((?!#)", demo)
    s = scan(demo)
    assert s.links == []  # no src, href or action anywhere
    assert demo.count("<svg") == 2 and "<?xml" not in demo and "<!DOCTYPE svg" not in demo and "<!--" not in demo


def test_csp_forbids_network_and_pins_the_script(demo: str) -> None:
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', demo)
    assert csp is not None
    policy = dict(p.strip().split(" ", 1) for p in csp[1].split(";"))
    assert policy["default-src"] == "'none'" and policy["img-src"] == "data:"
    code = [t for kind, t in scan(demo).scripts if kind is None]
    assert len(code) == 1
    digest = base64.b64encode(hashlib.sha256(code[0].encode()).digest()).decode()
    assert policy["script-src"] == f"'sha256-{digest}'"


def test_data_round_trips_and_cannot_close_the_script(demo: str) -> None:
    assert demo.count("</script") == 2  # the data's and the code's own end tags only
    assert "\u2028" not in demo and "\u2029" not in demo and "<script><script>" not in demo
    blobs = [t for kind, t in scan(demo).scripts if kind == "application/json"]
    assert len(blobs) == 1 and json.loads(blobs[0]) == kit.data()
    assert kit.EVIL not in demo


@pytest.mark.parametrize("text", ["</script>", "<!--", "a&b", "\u2028\u2029", "<\u2028>", "é 漢 🙂"])
def test_embed_json_escapes(text: str) -> None:
    out = embed_json({"k": [text]})
    assert not set(out) & set("<>&\u2028\u2029")
    assert json.loads(out) == {"k": [text]}


def test_views_are_namespaced(demo: str, views: dict[str, str]) -> None:
    ids = scan(demo).ids
    dup = [i for i, n in Counter(ids).items() if n > 1]
    assert dup == []
    for dom in ("n0", "n1", "c0", "c1", "e0", "o0", "r0"):
        assert f"main-{dom}" in ids and f"unfolded-{dom}" in ids
    assert "main-n7" not in ids and "unfolded-n7" in ids
    one = inline_svg(views["main"], "v")
    assert one.startswith("<svg") and 'width="100%"' in one and "xmlns" not in one
    assert ["v-" + i.removeprefix("main-") for i in ids if i.startswith("main-")] == re.findall(r'\sid="([^"]*)"', one)


def test_inline_svg_prefixes_references_and_drops_links() -> None:
    svg = (
        '<?xml version="1.0"?><!DOCTYPE svg><svg width="9pt" height="9pt" viewBox="0 0 9 9" '
        'xmlns="http://www.w3.org/2000/svg"><defs><linearGradient id="l_0"/></defs>'
        '<g id="n1" fill="url(#l_0)"><a xlink:href="https://example.com/x"><use href="#l_0"/></a>'
        "<text>id=&quot;n1&quot; &lt;g id=&quot;z&quot;&gt;</text></g></svg>"
    )
    out = inline_svg(svg, "main")
    assert 'id="main-l_0"' in out and "url(#main-l_0)" in out and 'href="#main-l_0"' in out
    assert "example.com" not in out and "http" not in out
    assert "id=&quot;n1&quot; &lt;g id=&quot;z&quot;&gt;" in out  # text is never touched


def test_header_shows_escaped_name_and_totals(views: dict[str, str]) -> None:
    data: dict[str, Any] = {**kit.data(), "name": "<b>m</b>\u202e", "doc": "d & <i>"}
    text = page(views, data).decode()
    assert "<title>&lt;b&gt;m&lt;/b&gt;\\u202e · fusec</title>" in text
    assert '<h1 id="model-name">&lt;b&gt;m&lt;/b&gt;\\u202e</h1>' in text
    assert "140 params (140 trainable, 0 non-trainable) · 11 nodes · 2 problems" in text
    assert "d &amp; &lt;i&gt;" in text


def test_bad_views_are_refused(views: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="'main' view"):
        page({"unfolded": views["main"]}, kit.data())
    with pytest.raises(ValueError, match="identifier"):
        page({"main": views["main"], 'x" onload="': views["main"]}, kit.data())
    with pytest.raises(ValueError, match="not an SVG"):
        page({"main": "<html></html>"}, kit.data())


def test_same_input_same_bytes(views: dict[str, str]) -> None:
    assert page(views, kit.data()) == page(views, kit.data())
