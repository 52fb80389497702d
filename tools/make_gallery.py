"""Regenerate docs/gallery.md and docs/gallery/*.svg from every spec in specs/.

Usage (from the repository root; ``make gallery`` runs the same)::

    .venv/bin/python tools/make_gallery.py

Each spec is checked and drawn with ``fusec.render.render`` (no TensorFlow);
SVGs of specs that no longer exist are removed, so the folder always mirrors
``specs/``. The output is deterministic: running it twice changes nothing.
Exits 1 (after drawing the others) when a spec fails to check or render.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fusec.errors import FusecError
from fusec.render import render
from fusec.render.output import write_atomic
from fusec.static.check import check_spec

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
DOCS = ROOT / "docs"
GALLERY = DOCS / "gallery"

HEADER = """# Gallery

Every spec in [`specs/`](../specs) drawn by `fusec render`. The visual
language (shapes, colours, the legend, options) is described in
[render.md](render.md).

Regenerate after changing a spec or the renderer (no TensorFlow needed):

    make gallery        # or: .venv/bin/python tools/make_gallery.py

Draw one spec yourself:

    fusec render specs/image_tag.json -o image_tag.png
"""


def _doc_text(doc: object) -> str:
    if not isinstance(doc, str):
        return ""
    text = " ".join(doc.split())
    return text.replace("<", "&lt;").replace(">", "&gt;")


def _conformance_block() -> str:
    """The conformance section (tools/conformance.py writes it between markers): kept as it is."""
    path = DOCS / "gallery.md"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    start, end = text.find("<!-- conformance:start -->"), text.find("<!-- conformance:end -->")
    return text[start : end + len("<!-- conformance:end -->")] + "\n" if 0 <= start < end else ""


def main() -> int:
    GALLERY.mkdir(parents=True, exist_ok=True)
    sections = [HEADER]
    failures = []
    specs = sorted(SPECS.glob("*.json"))
    for spec in specs:
        try:
            checked = check_spec(spec)
            svg = render(checked, "svg")
        except FusecError as err:
            failures.append(f"{spec.name}: {err}")
            continue
        write_atomic(GALLERY / f"{spec.stem}.svg", svg)
        t = checked.totals
        shared = len(checked.graph.graph["shared"])
        merges = sorted({i.op for i in checked.info.values() if i.kind == "merge"})
        facts = [
            f"{len(checked.order)} nodes",
            f"{t.params:,} params ({t.trainable:,} trainable)",
            f"{len(checked.doc['outputs'])} output(s)",
        ]
        if merges:
            facts.append("merges: " + ", ".join(merges))
        if shared:
            facts.append(f"{shared} shared layer(s)")
        sections.append(
            f"## {checked.name}\n\n"
            f"[`specs/{spec.name}`](../specs/{spec.name}) · {' · '.join(facts)}\n\n"
            + (f"{_doc_text(checked.doc.get('doc'))}\n\n" if checked.doc.get("doc") else "")
            + f"![{checked.name}](gallery/{spec.stem}.svg)\n"
        )
    keep = {f"{s.stem}.svg" for s in specs}
    for old in sorted(GALLERY.glob("*.svg")):
        if old.name not in keep:
            old.unlink()
    kept = _conformance_block()
    if kept:
        sections.append(kept)
    write_atomic(DOCS / "gallery.md", "\n".join(sections).encode("utf-8"))
    drawn = len(specs) - len(failures)
    print(f"gallery: {drawn} of {len(specs)} specs drawn into {GALLERY.relative_to(ROOT)}/")
    for line in failures:
        print(f"error: {line}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
