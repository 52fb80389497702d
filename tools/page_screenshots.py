"""Remake the review page's docs screenshots (docs/img/review-*.png), 1400×900, headless Chromium.

review-page.png: specs/siamese.json with the shared call ``tower_b__conv`` selected.
review-broken.png: specs/image_tag.json with two errors put in (a typo'd config
key and a dangling reference), the problem list open and the first red node selected.
Run: ``.venv/bin/python tools/page_screenshots.py``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from fusec.render import render
from fusec.static.check import check_spec

ROOT = Path(__file__).resolve().parent.parent
IMG = ROOT / "docs" / "img"


def broken_spec(folder: Path) -> Path:
    """image_tag.json with a typo in a layer's config key and an input naming no node."""
    doc = json.loads((ROOT / "specs" / "image_tag.json").read_text())
    nodes = doc["nodes"]
    typo = next(n for n in nodes.values() if isinstance(n.get("config"), dict) and n["config"])
    key = next(iter(typo["config"]))
    typo["config"][key + "s"] = typo["config"].pop(key)
    list(nodes.values())[-1]["inputs"] = "nowhere"
    path = folder / "image_tag.json"
    path.write_text(json.dumps(doc, indent=2))
    return path


def shoot(browser: object, spec: Path, out: Path, select: str | None) -> None:
    """Write ``spec``'s page, open it, select a node (by id, or the first problem's), screenshot."""
    html = spec.with_suffix(".html")
    html.write_bytes(render(check_spec(spec, lenient=True), "html"))
    html = html.resolve()
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})  # type: ignore[attr-defined]
    page = ctx.new_page()
    page.goto(html.as_uri() + (f"#node={select}" if select else ""))
    page.wait_for_function("() => window.__fusecReady !== undefined")
    if select is None:
        page.locator("#problem-list button").first.click()
    page.wait_for_timeout(300)
    page.screenshot(path=str(out))
    ctx.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        os.chdir(tmp)  # the pages name their spec as a user's would: `siamese.json`, not a temporary path
        browser = p.chromium.launch(executable_path="/usr/bin/chromium")
        copy = Path("siamese.json")
        copy.write_text((ROOT / "specs" / "siamese.json").read_text())
        shoot(browser, copy, IMG / "review-page.png", "tower_b__conv")
        shoot(browser, broken_spec(Path()), IMG / "review-broken.png", None)
        browser.close()
    print("wrote", IMG / "review-page.png", IMG / "review-broken.png")


if __name__ == "__main__":
    main()
