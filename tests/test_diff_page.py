"""The diff's review page in headless Chromium (Debian's package, driven by Playwright): no network."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import browser_kit
import pytest
from click.testing import CliRunner

from fusec.cli import cli

SPECS = Path(__file__).resolve().parent.parent / "specs"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
]
sync_api, CHROMIUM = browser_kit.require()


def _page(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    a, b, out = SPECS / "siamese.json", SPECS.parent / "examples" / "diff" / "siamese_wider.json", tmp_path / "d.html"
    new = json.loads(b.read_text())
    res = CliRunner().invoke(cli, ["diff", str(a), str(b), "-o", str(out)])
    assert res.exit_code == 1 and out.exists(), res.output
    return out, new


def test_panel_shows_a_changed_nodes_changes(tmp_path: Path) -> None:
    path, _ = _page(tmp_path)
    url = path.as_uri()
    requests: list[str] = []
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM))
        try:
            ctx = browser.new_context(viewport={"width": 1400, "height": 900})
            ctx.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort())
            pg = ctx.new_page()
            pg.on("request", lambda r: requests.append(r.url.split("#")[0]))
            pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            pg.on("pageerror", lambda e: errors.append(str(e)))
            pg.goto(url)
            pg.wait_for_function("window.__fusecReady !== undefined")
            assert "renamed" in pg.inner_text("#diff-legend")
            dom = pg.evaluate(
                "() => [...document.querySelectorAll('g.node')].find("
                "g => g.querySelector('title').textContent === 'left__embed').id"
            )
            pg.click(f"#{dom}")
            panel = pg.inner_text("#panel")
            assert "shared_layer.config.units 16 → 32" in panel and "renamed" in panel
            frame = pg.locator("g.cluster", has_text="tower_a → left · tower")
            assert frame.count() == 1
        finally:
            browser.close()
    assert errors == []
    assert set(requests) <= {url}, requests
