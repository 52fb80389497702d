"""Regenerate docs/gallery.md and docs/gallery/*.svg from every spec in specs/.

Usage (from the repository root; ``make gallery`` runs the same)::

    .venv/bin/python tools/make_gallery.py

Each spec is checked and drawn with ``fusec.render.render`` (no TensorFlow);
SVGs of specs that no longer exist are removed, so the folder always mirrors
``specs/`` (plus the few ``extra-*.svg`` drawings of the last section: a
folded shared-weights block, a 199-node fan-in folded into ×64 boxes, a spec
with errors drawn). The output is deterministic: running it twice changes nothing.
Exits 1 (after drawing the others) when a spec fails to check or render.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
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


#: A spec with errors, drawn as ``fusec render`` draws one (exit 1): the faults in red.
BROKEN = ROOT / "examples" / "broken_example.json"


def _extras(folder: Path) -> list[tuple[str, str, bytes]]:
    """(name, caption, svg) of the drawings that show what the options and faults look like."""
    fanin = folder / "fanin_199.json"
    gen = [sys.executable, str(ROOT / "bench" / "gen_specs.py"), "fanin", "199", "-o", str(fanin)]
    subprocess.run(gen, check=True, capture_output=True)
    return [
        (
            "extra-siamese-collapsed",
            "`fusec render specs/siamese.json --collapse`: each instance of the shared-weights tower is one box; "
            "the second shows `weights of instance 1`, and a dotted line in the block's colour ties them.",
            render(check_spec(SPECS / "siamese.json"), "svg", collapse=True),
        ),
        (
            "extra-fanin-199",
            "A 199-node fan-in (`python bench/gen_specs.py fanin 199`): each group of 64 identical parallel "
            "branches is one ×64 box (`--unfold` draws them all).",
            render(check_spec(fanin), "svg"),
        ),
        (
            "extra-broken",
            "`examples/broken_example.json`, a spec with three errors, drawn anyway (`fusec render` exits 1): "
            "the nodes, edges and output the problems name in red with their messages, `?` where a shape is unknown.",
            render(check_spec(BROKEN, lenient=True), "svg"),
        ),
    ]


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
    with tempfile.TemporaryDirectory() as tmp:
        extras = _extras(Path(tmp))
    sections.append("## Options and faults, drawn\n")
    for name, caption, svg in extras:
        write_atomic(GALLERY / f"{name}.svg", svg)
        sections.append(f"{caption}\n\n![{name}](gallery/{name}.svg)\n")
    keep = {f"{s.stem}.svg" for s in specs} | {f"{name}.svg" for name, _, _ in extras}
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
