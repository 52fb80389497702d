"""The review page in a real browser: headless Chromium (Debian's package) driven by Playwright.

One browser per module, a fresh context per test; pages are files in a
temporary folder, opened by file:// URL. Every test also asserts that the page
logged no console error, raised nothing, opened no dialog and asked for
nothing but its own file.
"""

from __future__ import annotations

import json
import struct
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import browser_kit
import pytest
import test_page_kit as kit

from fusec.render.html import page

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
]
sync_api, CHROMIUM = browser_kit.require()


@dataclass
class Opened:
    """A loaded page and what it did."""

    page: Any
    url: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def check_clean(self) -> None:
        assert self.errors == []
        assert set(self.requests) <= {self.url}, self.requests

    def visible(self, dom: str, view: str = "main") -> bool:
        shown = "e => e.getBoundingClientRect().width > 0 && getComputedStyle(e).display !== 'none'"
        loc = self.page.locator(f"#{view}-{dom}")
        return loc.count() == 1 and bool(loc.evaluate(shown))

    def classes(self, dom: str, view: str = "main") -> list[str]:
        return list(self.page.evaluate(f"[...document.getElementById('{view}-{dom}').classList]"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM))
        yield b
        b.close()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pages")


@pytest.fixture(scope="module")
def demo_file(folder: Path) -> Path:
    path = folder / "demo.html"
    path.write_bytes(page(kit.svgs(), kit.data()))
    return path


@pytest.fixture
def opener(browser: Any) -> Iterator[Any]:
    contexts: list[Any] = []
    opened: list[Opened] = []

    def open_(path: Path, hash_: str = "") -> Opened:
        ctx = browser.new_context(viewport={"width": 1400, "height": 900})
        contexts.append(ctx)
        ctx.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort())
        pg = ctx.new_page()
        o = Opened(pg, path.as_uri())
        pg.on("request", lambda r: o.requests.append(r.url.split("#")[0]))
        pg.on("console", lambda m: o.errors.append(m.text) if m.type == "error" else None)
        pg.on("pageerror", lambda e: o.errors.append(str(e)))
        pg.on("dialog", lambda d: (o.errors.append("dialog: " + d.message), d.dismiss()))
        pg.goto(o.url + hash_)
        pg.wait_for_function("window.__fusecReady !== undefined")
        opened.append(o)
        return o

    yield open_
    for o in opened:
        o.check_clean()
    for ctx in contexts:
        ctx.close()


def test_click_shows_the_config(opener: Any, demo_file: Path) -> None:
    o = opener(demo_file)
    assert o.page.is_hidden("#panel")
    o.page.click("#main-n1")
    assert o.page.inner_text("#panel-title") == "t__conv"
    config = json.loads(o.page.inner_text("#panel-config"))
    assert config == kit.data()["nodes"]["n1"]["config"]
    text = o.page.inner_text("#panel")
    assert "Conv2D" in text and "$.nodes.t__conv" in text and "t__inner__pool" in text  # path and consumer
    assert "#node=t__conv" in o.page.url
    o.page.keyboard.press("Escape")
    assert o.page.is_hidden("#panel")


def test_input_links_jump(opener: Any, demo_file: Path) -> None:
    o = opener(demo_file)
    o.page.click("#main-n2")
    assert "pool_size must be positive" in o.page.inner_text("#panel .problems")
    o.page.click("#panel [data-jump=n1]")
    assert o.page.inner_text("#panel-title") == "t__conv" and "sel" in o.classes("n1")


@pytest.mark.parametrize(("query", "first"), [("T__INNER", "n2"), ("conv2d", "n1"), ("dense", "n4")])
def test_search_finds_by_id_and_op(opener: Any, demo_file: Path, query: str, first: str) -> None:
    o = opener(demo_file)
    o.page.keyboard.press("/")
    o.page.keyboard.type(query)
    o.page.keyboard.press("Enter")
    assert "cur" in o.classes(first)
    assert o.page.inner_text("#search-count").startswith("1 / ")
    o.page.keyboard.press("Escape")
    assert o.page.inner_text("#search-count") == "" and "cur" not in o.classes(first)


def test_search_reaches_other_view_and_folded_blocks(opener: Any, demo_file: Path) -> None:
    o = opener(demo_file)
    o.page.click("#btn-fold")
    assert not o.visible("n2")
    o.page.fill("#search", "branch_1")
    o.page.press("#search", "Enter")
    assert o.page.is_visible("#view-unfolded") and "cur" in o.classes("n8", "unfolded")
    o.page.fill("#search", "pool")
    o.page.press("#search", "Enter")
    assert o.visible("n2", "unfolded")  # its folded blocks opened


def test_block_folds_and_unfolds(opener: Any, demo_file: Path) -> None:
    o = opener(demo_file)
    o.page.click("#main-c0 > text")
    assert not o.visible("n1") and not o.visible("n2") and not o.visible("e1")
    assert o.visible("n0") and o.visible("e0")  # the crossing edge stays, ending at the box
    assert "t · tower" in (o.page.text_content("#view-main .fold-box") or "")
    o.page.click("#view-main .fold-box")
    assert o.visible("n1") and o.visible("n2") and o.visible("e1")
    o.page.click("#main-c1 > text")  # the inner block alone
    assert o.visible("n1") and not o.visible("n2")
    o.page.keyboard.press("f")
    assert not o.visible("n1") and o.page.locator("#view-main .fold-box:visible").count() == 1
    o.page.click("#btn-unfold")
    assert o.visible("n1") and o.visible("n2")


def test_repeat_switches_views(opener: Any, demo_file: Path) -> None:
    o = opener(demo_file)
    assert o.page.is_hidden("#view-unfolded") and o.page.is_visible("#btn-repeat")
    o.page.click("#main-r0")
    assert o.page.is_hidden("#view-main") and o.visible("n8", "unfolded")
    o.page.click("#unfolded-n8")
    assert o.page.inner_text("#panel-title") == "branch_1"
    o.page.click("#unfolded-r0 > text")
    assert o.page.is_visible("#view-main")


def test_shared_calls_highlight_together(opener: Any, demo_file: Path) -> None:
    o = opener(demo_file)
    o.page.hover("#main-n5")
    assert "hov" in o.classes("n4")
    o.page.click("#main-n4")
    assert "tie" in o.classes("n5") and "call 1 of 2" in o.page.inner_text("#panel")


def test_hash_selects_and_problems_list(opener: Any, demo_file: Path) -> None:
    o = opener(demo_file, "#node=t__inner__pool")
    assert o.page.inner_text("#panel-title") == "t__inner__pool" and "sel" in o.classes("n2")
    assert o.page.is_visible("#problems")
    items = o.page.locator("#problem-list li")
    assert items.count() == 2 and "line 9: pool_size must be positive" in items.nth(0).inner_text()
    o.page.locator("#problem-list button").nth(1).click()
    assert "shape mismatch" in o.page.inner_text("#panel")


def test_hostile_strings_stay_text(opener: Any, demo_file: Path) -> None:
    o = opener(demo_file)
    o.page.click("#main-n6")
    assert o.page.inner_text("#panel-title") == "x</script><script>alert(1)</script>\\u2028\\u202e"
    assert "adds <b>both</b>" in o.page.inner_text("#panel")
    assert o.page.evaluate("document.scripts.length") == 2


def test_diff_legend_and_changes(opener: Any, folder: Path) -> None:
    path = folder / "diff.html"
    path.write_bytes(page(kit.svgs(), kit.with_diff()))
    o = opener(path)
    assert "changed 1" in o.page.inner_text("#diff-legend")
    o.page.click("#main-n1")
    assert "filters: 8 -> 16" in o.page.inner_text("#panel")


_VIEW = """() => { const s = document.querySelector('#view-main svg');
  const r = document.getElementById('stage').getBoundingClientRect();
  const [x, y, w, h] = s.getAttribute('viewBox').split(' ').map(Number);
  const transform = document.getElementById('view-main').style.transform;
  return {x, y, w, h, left: r.left, top: r.top, width: r.width, transform}; }"""


def _settled(o: Opened) -> dict[str, Any]:
    o.page.wait_for_function("() => document.getElementById('view-main').style.transform === ''")
    return dict(o.page.evaluate(_VIEW))


def _under(v: dict[str, Any], cx: float, cy: float) -> tuple[float, float]:
    k = v["w"] / v["width"]
    return v["x"] + (cx - v["left"]) * k, v["y"] + (cy - v["top"]) * k


def test_zoom_and_pan_move_the_view_box(opener: Any, demo_file: Path) -> None:
    o = opener(demo_file)
    fitted = _settled(o)
    o.page.mouse.move(500, 400)
    o.page.mouse.wheel(0, -300)
    during = o.page.evaluate(_VIEW)
    assert during["transform"].startswith("translate(") and during["w"] == fitted["w"]  # moved by CSS only
    zoomed = _settled(o)
    assert zoomed["w"] < fitted["w"]
    assert _under(zoomed, 500, 400) == pytest.approx(_under(fitted, 500, 400), abs=1e-6)  # around the cursor
    o.page.mouse.down()
    o.page.mouse.move(600, 450, steps=4)
    assert o.page.evaluate(_VIEW)["transform"] != ""
    o.page.mouse.up()
    dragged = _settled(o)
    k = zoomed["w"] / zoomed["width"]
    assert (dragged["x"], dragged["y"]) == pytest.approx((zoomed["x"] - 100 * k, zoomed["y"] - 50 * k), abs=1e-6)
    assert o.page.is_hidden("#panel")
    o.page.keyboard.press("0")
    assert _settled(o) == fitted


def test_edge_click_shows_its_ends(opener: Any, demo_file: Path) -> None:
    o = opener(demo_file)
    box = o.page.locator("#main-e7 > path:not(.hit)").bounding_box()
    assert box is not None
    # 4 px beside the drawn line still hits the edge (its wide transparent twin)
    o.page.mouse.click(box["x"] + box["width"] / 2 + 4, box["y"] + box["height"] / 2)
    assert o.page.inner_text("#panel-title").startswith("edge ") and "sel" in o.classes("e7")
    text = o.page.inner_text("#panel")
    assert "(None, 4)" in text and "From → to" in text.replace("FROM", "From").replace("TO", "to")
    o.page.click("#panel [data-jump=o0]")
    assert o.page.inner_text("#panel-title") == "out"


def test_shared_call_shows_the_shared_layer(opener: Any, folder: Path) -> None:
    o = opener(_spec_page(folder, SPECS / "siamese.json"))
    dom = o.page.evaluate(
        "Object.entries(JSON.parse(document.getElementById('fusec-data').textContent).nodes)"
        ".find(([d, n]) => n.id === 'tower_b__conv')[0]"
    )
    o.page.click(f"#main-{dom}")
    assert json.loads(o.page.inner_text("#panel-config")) == {"shared": "tower__conv", "inputs": "item_b"}
    shared = json.loads(o.page.inner_text("#panel-shared"))
    assert shared["layer"] == "Conv2D" and shared["config"]["filters"] == 8
    assert "$.blocks.tower.nodes.conv" in o.page.inner_text("#panel")


def _pixels(png: bytes) -> list[bytes]:
    """The pixels of an 8-bit RGB or RGBA PNG, decoded in pure Python (chunks, zlib, row filters)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, head = 8, b"", b""
    while pos < len(png):
        n = struct.unpack(">I", png[pos : pos + 4])[0]
        kind, chunk = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + n]
        head = chunk if kind == b"IHDR" else head
        idat += chunk if kind == b"IDAT" else b""
        pos += 12 + n
    width, height, depth, colour = struct.unpack(">IIBB", head[:10])
    assert depth == 8 and colour in (2, 6), (depth, colour)
    bpp = 3 if colour == 2 else 4
    raw, stride, out, prev = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        kind_, row = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a, b = row[i - bpp] if i >= bpp else 0, prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            paeth = a if abs(p - a) <= min(abs(p - b), abs(p - c)) else b if abs(p - b) <= abs(p - c) else c
            row[i] = (row[i] + (0, a, b, (a + b) // 2, paeth)[kind_]) & 0xFF
        out.extend(bytes(row[x : x + 3]) for x in range(0, stride, bpp))
        prev = row
    return out


def test_screenshot_is_not_blank(opener: Any, demo_file: Path) -> None:
    o = opener(demo_file)
    o.page.click("#main-n1")
    pixels = _pixels(o.page.screenshot(clip={"x": 0, "y": 0, "width": 700, "height": 450}))
    inked = sum(p != b"\xff\xff\xff" for p in pixels) / len(pixels)
    assert len(set(pixels)) > 50 and inked > 0.05, (len(set(pixels)), inked)


def _spec_page(folder: Path, spec: Path) -> Path:
    from fusec.render import render
    from fusec.static.check import check_spec

    out = folder / (spec.stem + ".html")
    out.write_bytes(render(check_spec(spec, lenient=True), "html"))
    return out


def _first(o: Opened, kind: str) -> str:
    nodes = json.loads(o.page.text_content("#fusec-data") or "{}")["nodes"]
    return next(dom for dom, n in nodes.items() if n["kind"] == kind)


def test_bundled_specs_render_and_respond(opener: Any, folder: Path) -> None:
    blocks = opener(_spec_page(folder, SPECS / "inception_twice.json"))
    frame = blocks.page.locator("#view-main g.cluster > text").first
    cluster = frame.evaluate("t => t.parentNode.id.slice(5)")
    members = blocks.page.evaluate(
        f"JSON.parse(document.getElementById('fusec-data').textContent).groups['{cluster}'].members"
    )
    frame.click()
    assert not any(blocks.visible(m) for m in members)
    blocks.page.click("#view-main .fold-box")
    assert all(blocks.visible(m) for m in members)
    shared = opener(_spec_page(folder, SPECS / "siamese.json"))
    dom = _first(shared, "shared")
    shared.page.click(f"#main-{dom}")
    assert shared.page.locator("#view-main g.node.tie").count() >= 2
    assert "config" in shared.page.inner_text("#panel").lower()


def test_broken_spec_page_shows_its_problem(opener: Any, folder: Path) -> None:
    doc = json.loads((SPECS / "image_tag.json").read_text())
    first = next(iter(doc["nodes"]))
    doc["nodes"][first]["inputs"] = "nowhere"
    spec = folder / "broken.json"
    spec.write_text(json.dumps(doc, indent=2))
    o = opener(_spec_page(folder, spec))
    assert o.page.is_visible("#problems") and "nowhere" in o.page.inner_text("#problem-list")
    o.page.locator("#problem-list button").first.click()
    assert o.page.is_visible("#panel") and o.page.locator("#panel .problems li").count() >= 1


def test_fan_in_repeat_unfolds(opener: Any, folder: Path) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    from gen_specs import make_spec

    spec = folder / "fanin.json"
    spec.write_text(json.dumps(make_spec("fanin", 199)))
    o = opener(_spec_page(folder, spec))
    box = o.page.locator("#view-main g.node[id^='main-r']").first
    box.click()
    assert o.page.is_visible("#view-unfolded")
