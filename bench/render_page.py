"""The HTML review page (`fusec render --format html`): its size, and how soon it is interactive in Chromium.

Pages: Keras's own NASNetMobile (770 nodes), converted layer by layer into a
fusec spec (the converter of ``render_compare.py``; TensorFlow loads once, in
a child process), and the 199-node fan-in of ``gen_specs.py`` (three ×64
groups, so the page holds two views). Each page is written by the ``fusec
render`` command, then loaded ``--page-loads`` times in a fresh headless
Chromium context (Debian's ``/usr/bin/chromium`` through Playwright) from a
file:// URL. "Interactive" is ``window.__fusecReady``: the page's script sets
it to ``performance.now()`` (milliseconds since navigation start) once every
handler is attached and the view is fitted. Targets: under 2 s and under 3 MB.
"Pan and zoom frames" drives a gesture from inside the page, one input event
per animation frame (as a 60 Hz pointer would): a 60-step drag, a burst of 40
wheel steps (zoom in ×11, then out) and a 40-step drag, then 30 idle frames;
the row is the 95th percentile of the intervals between animation frames over
``--page-loads`` fresh loads (target: under 50 ms).
Without Chromium or Playwright the rows say why they were skipped.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
from pathlib import Path
from statistics import median, quantiles

from render_compare import CONVERT_SCRIPT

from gen_specs import make_spec
from harness import PY, Row, checked_child, fusec, print_rows

NAME = "render_page"
TITLE = "fusec render --format html: page size (<= 3 MB) and time to interactive in Chromium (<= 2 s)"
CHROMIUM = Path("/usr/bin/chromium")
READY_S = 2.0
SIZE_MB = 3.0
FRAME_MS = 50.0
GESTURE_JS = """() => new Promise((done) => {
  const steps = [], at = (x, y) => document.elementFromPoint(x, y) || document.body;
  const ptr = (type, x, y) => () => at(x, y).dispatchEvent(new PointerEvent(type, {bubbles: true, cancelable: true,
    pointerId: 1, pointerType: "mouse", isPrimary: true, button: 0, buttons: type === "pointerup" ? 0 : 1,
    clientX: x, clientY: y}));
  const wheel = (x, y, dy) => () => at(x, y).dispatchEvent(new WheelEvent("wheel",
    {bubbles: true, cancelable: true, clientX: x, clientY: y, deltaY: dy}));
  const drag = (x0, y0, dx, dy, n) => {
    steps.push(ptr("pointerdown", x0, y0));
    for (let i = 1; i <= n; i++) steps.push(ptr("pointermove", x0 + dx * i, y0 + dy * i));
    steps.push(ptr("pointerup", x0 + dx * n, y0 + dy * n));
  };
  drag(700, 450, 4, 2, 60);
  for (let i = 0; i < 40; i++) steps.push(wheel(600 + 3 * i, 400, i < 20 ? -60 : 60));
  drag(820, 400, -5, -2, 40);
  const frames = [];
  let last = 0, k = 0, idle = 0;
  const tick = (t) => {
    if (last) frames.push(t - last);
    last = t;
    if (k < steps.length) steps[k++](); else idle += 1;
    if (idle < 30) requestAnimationFrame(tick); else done(frames);
  };
  requestAnimationFrame(tick);
})"""


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--page-loads", type=int, help="fresh loads of each page (default 5; --quick 2)")
    group.add_argument("--page-no-nasnet", action="store_true", help="skip NASNetMobile (needs TensorFlow)")


def pages(folder: Path, nasnet: bool) -> list[tuple[str, Path]]:
    """(title, page file) for every case, each written by ``fusec render``."""
    specs = []
    if nasnet:
        spec = folder / "nasnet_mobile.json"
        count = checked_child([PY, "-c", CONVERT_SCRIPT, str(spec)]).stdout.strip()
        specs.append((f"Keras NASNetMobile, {count} nodes", spec))
    fan = folder / "fanin_199.json"
    fan.write_text(json.dumps(make_spec("fanin", 199)))
    specs.append(("fan-in, 199 nodes (×64 groups)", fan))
    out = []
    for title, spec in specs:
        html = spec.with_suffix(".html")
        checked_child(fusec("render", str(spec), "-o", str(html)))
        out.append((title, html))
    return out


def load_times(html: Path, loads: int) -> tuple[list[float], list[float]]:
    """Seconds from navigation start to ``window.__fusecReady``, one fresh context per load,
    and the intervals (ms) between animation frames while each load's gesture runs."""
    from playwright.sync_api import sync_playwright

    times: list[float] = []
    frames: list[float] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM))
        try:
            for _ in range(loads):
                ctx = browser.new_context(viewport={"width": 1400, "height": 900})
                ctx.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort())
                page = ctx.new_page()
                page.goto(html.as_uri(), wait_until="load")
                page.wait_for_function("window.__fusecReady !== undefined", timeout=30_000)
                times.append(float(page.evaluate("window.__fusecReady")) / 1000)
                page.wait_for_timeout(300)
                frames += [float(f) for f in page.evaluate(GESTURE_JS)]
                ctx.close()
        finally:
            browser.close()
    return times, frames


def run(args: argparse.Namespace) -> list[Row]:
    """Three rows per page: its size, its time to interactive (median of fresh loads), frame p95."""
    if not CHROMIUM.exists() or importlib.util.find_spec("playwright") is None:
        return [Row(NAME, "skipped: /usr/bin/chromium or playwright missing (.ci/setup)", [], [], "s", "exp")]
    loads = args.page_loads or (2 if args.quick else 5)
    nasnet = not args.page_no_nasnet and importlib.util.find_spec("tensorflow") is not None
    rows = []
    with tempfile.TemporaryDirectory(prefix="fusec-bench-page-") as tmp:
        for title, html in pages(Path(tmp), nasnet):
            mb = html.stat().st_size / 1e6
            rows.append(Row(NAME, f"{title}: page size", [mb], [], "MB", "exp", hi=SIZE_MB))
            times, frames = load_times(html, loads)
            note = f"{loads} fresh loads, headless Chromium"
            rows.append(Row(NAME, f"{title}: load to interactive", times, [], "s", "exp", hi=READY_S, note=note))
            p95 = quantiles(frames, n=20)[-1]
            note = f"p95 of {len(frames)} frame intervals while dragging and zooming; median {median(frames):.1f} ms"
            rows.append(
                Row(NAME, f"{title}: pan and zoom frames (p95)", [p95], [], "ms", "exp", hi=FRAME_MS, note=note)
            )
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    add_arguments(ap.add_argument_group(NAME))
    print_rows(run(ap.parse_args()))
