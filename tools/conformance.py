"""The keras.applications conformance suite: every member of every family, one fresh process each.

Usage (from the repository root; ``make conformance`` runs every model)::

    .venv/bin/python tools/conformance.py                      # every member of every family
    .venv/bin/python tools/conformance.py --representatives    # the smallest member of each family
    .venv/bin/python tools/conformance.py ResNet50 VGG16       # these models only

Each model runs in its own process (tests/conformance_kit.py: random weights,
``.keras`` -> ``fusec import`` -> check -> compile -> outputs and SavedModel
equal Keras's) in a temporary folder deleted afterwards, so memory and disk
stay bounded. The rows of the models run replace theirs in
docs/conformance.md's table (the others are kept); family representatives
are drawn into docs/gallery/conformance/ and shown in docs/gallery.md's
conformance section. Exits 1 when a model run fails.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from conformance_kit import (  # noqa: E402  (the kit lives beside the tests)
    ABSENT,
    BY_NAME,
    CLASSES,
    FAMILIES,
    MEMBERS,
    REPRESENTATIVES,
    TOLERANCE,
    Member,
    Result,
)

DOC = ROOT / "docs" / "conformance.md"
GALLERY_DOC = ROOT / "docs" / "gallery.md"
SVG_DIR = ROOT / "docs" / "gallery" / "conformance"
START, END = "<!-- conformance:start -->", "<!-- conformance:end -->"
COLUMNS = (
    "model", "family", "input", "layers", "nodes", "params",
    "import s", "check s", "compile s", "max abs diff", "SavedModel diff", "status",
)  # fmt: skip

HEADER = f"""# Conformance: keras.applications

Every model of every `keras.applications` family in Keras 3.15.1, built with
`weights=None`, the smallest input it accepts and {CLASSES} classes, given random
non-trivial weights from a fixed seed (every variable; batch-norm moving
statistics calibrated on a batch, then perturbed; the classifier scaled so its
softmax does not saturate), saved as `.keras`, then:

1. `fusec import` (``fusec.importer.import_source``) writes the spec and its weights file;
2. `fusec check`: every node's static shape equals the Keras layer's output
   shape, and the parameter total equals `model.count_params()`;
3. `fusec compile` into a temporary folder;
4. the compiled `.keras` gives Keras's outputs on a fixed random batch
   (max abs diff <= {TOLERANCE:g}), and its SavedModel, served by plain TensorFlow in
   a process that cannot import fusec, gives those of Keras's own SavedModel of
   the source (`model.export`) within the same tolerance ("SavedModel diff").
   A SavedModel is compared with a SavedModel because TensorFlow's graph
   execution differs from eager Keras by itself: Keras's own export of ResNet101
   differs from eager Keras by 3.2e-05 (ResNet152: 7.3e-05); the Notes list
   where fusec's SavedModel is over {TOLERANCE:g} from eager Keras, next to Keras's own.

Regenerate: `make conformance` (every model, one process each; an hour or more
on 2 cores), or `.venv/bin/python tools/conformance.py NAME ...` for some
(their rows replace the old ones). The test suite runs one representative per
family (`tests/test_conformance.py`, marked `slow`). Times are wall seconds on
the machine that ran them (shared, 2 cores): compare them within one run only.

Not in Keras 3 (so not here): {"; ".join(f"**{k}**: {v}" for k, v in ABSENT.items())}.
"""


def _fmt(value: object, column: str) -> str:
    if value is None:
        return "-"
    if column in ("max abs diff", "SavedModel diff"):
        return f"{value:.2g}" if isinstance(value, float) else str(value)
    if column.endswith(" s") and isinstance(value, float):
        return f"{value:.2f}"
    if column == "params" and isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _row(r: Result) -> str:
    status = "pass" if r.status == "pass" else (f"fail ({r.stage})" if r.stage else r.status)
    values = (
        r.model, r.family, f"{r.size}x{r.size}", r.layers or None, r.nodes or None, r.params or None,
        r.import_s, r.check_s, r.compile_s, r.max_diff, r.saved_diff, status,
    )  # fmt: skip
    return "| " + " | ".join(_fmt(v, c) for v, c in zip(values, COLUMNS, strict=True)) + " |"


def _number(text: str) -> float | None:
    return None if text in ("-", "") else float(text.replace(",", ""))


def read_doc(path: Path = DOC) -> dict[str, Result]:
    """The results in an earlier docs/conformance.md (its table rows and failure notes)."""
    results: dict[str, Result] = {}
    if not path.is_file():
        return results
    text = path.read_text(encoding="utf-8")
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != len(COLUMNS) or cells[0] not in BY_NAME:
            continue
        m = BY_NAME[cells[0]]
        num = [_number(c) for c in cells[3:11]]
        layers, nodes, params = (int(v or 0) for v in num[:3])
        r = Result(m.name, m.family, m.size, layers=layers, params=params, nodes=nodes)
        r.import_s, r.check_s, r.compile_s, r.max_diff, r.saved_diff = num[3:]
        r.status = "pass" if cells[11] == "pass" else ("not run" if cells[11] == "not run" else "fail")
        results[m.name] = r
    for match in re.finditer(r"^- \*\*(\w+)\*\*: (.*)$", text, re.MULTILINE):
        if match.group(1) in results:
            results[match.group(1)].notes.append(match.group(2))
    for match in re.finditer(r"^- \*\*(\w+)\*\* \((\w+)\): (.*)$", text, re.MULTILINE):
        if match.group(1) in results:
            results[match.group(1)].stage, results[match.group(1)].message = match.group(2), match.group(3)
    return results


def write_doc(results: dict[str, Result], path: Path = DOC) -> None:
    """docs/conformance.md: the header, the table (every member, in family order), the failures."""
    rows = [results.get(m.name) or Result(m.name, m.family, m.size) for m in MEMBERS]
    passed = sum(r.status == "pass" for r in rows)
    lines = [HEADER, f"**{passed} of {len(rows)} models pass.**\n"]
    lines.append("| " + " | ".join(COLUMNS) + " |")
    lines.append("|" + "|".join("---" if i < 3 else "--:" for i in range(len(COLUMNS) - 1)) + "|---|")
    lines.extend(_row(r) for r in rows)
    failed = [r for r in rows if r.status == "fail"]
    if failed:
        lines.append("\n## Failures\n\nThe first failing stage of each model and fusec's (or the kit's) message.\n")
        lines.extend(f"- **{r.model}** ({r.stage}): {' '.join(r.message.split())}" for r in failed)
    noted = [r for r in rows if r.notes]
    if noted:
        lines.append("\n## Notes\n")
        lines.extend(f"- **{r.model}**: {' '.join(n.split())}" for r in noted for n in r.notes)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_gallery_section(path: Path = GALLERY_DOC) -> None:
    """Replace (or append) docs/gallery.md's conformance section: one drawing per family representative."""
    parts = [
        START,
        "## Conformance: keras.applications\n",
        "One imported spec per `keras.applications` family (`fusec import`, the smallest member at the",
        "smallest input; see [conformance.md](conformance.md)), drawn by `fusec render`.\n",
    ]
    for m in REPRESENTATIVES:
        if (SVG_DIR / f"{m.name}.svg").is_file():
            parts.append(f"### {m.name} ({m.family})\n\n![{m.name}](gallery/conformance/{m.name}.svg)\n")
    parts.append(END)
    section = "\n".join(parts)
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    if START in text and END in text:
        text = text[: text.index(START)] + section + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text, encoding="utf-8")


def run_one(name: str, out_json: Path, svg: Path | None, serve: bool) -> int:
    """Run one model in this process; its Result as JSON in ``out_json``."""
    from conformance_kit import run_member

    from fusec.keras.tf import import_keras, quiet_environment

    quiet_environment()
    keras = import_keras()
    with tempfile.TemporaryDirectory(prefix="fusec-conformance-") as work:
        result = run_member(keras, BY_NAME[name], Path(work), svg=svg, serve=serve)
    out_json.write_text(json.dumps(result.to_json()), encoding="utf-8")
    return 0


def run_in_child(m: Member, serve: bool, timeout: float) -> Result:
    """One model in a fresh process; a crash or timeout becomes a failed Result."""
    with tempfile.TemporaryDirectory(prefix="fusec-conformance-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, __file__, "--one", m.name, "--json", str(out)]
        if m.representative:
            cmd += ["--svg", str(SVG_DIR / f"{m.name}.svg")]
        if not serve:
            cmd.append("--no-serve")
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
        except subprocess.TimeoutExpired:
            return Result(m.name, m.family, m.size, status="fail", stage="timeout", message=f"over {timeout:.0f} s")
        if proc.returncode != 0 or not out.is_file():
            tail = " | ".join(proc.stderr.strip().splitlines()[-3:]) or f"exit {proc.returncode}"
            return Result(m.name, m.family, m.size, status="fail", stage="crash", message=tail)
        data = json.loads(out.read_text(encoding="utf-8"))
        return Result(**data)


def _select(args: argparse.Namespace) -> list[Member]:
    if args.models:
        unknown = [n for n in args.models if n not in BY_NAME and n not in FAMILIES]
        if unknown:
            raise SystemExit(f"unknown model or family: {', '.join(unknown)} (known: {', '.join(BY_NAME)})")
        return [m for m in MEMBERS if m.name in args.models or m.family in args.models]
    return list(REPRESENTATIVES if args.representatives else MEMBERS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", help="model or family names (default: every model)")
    parser.add_argument("--representatives", action="store_true", help="the smallest member of each family only")
    parser.add_argument("--no-serve", action="store_true", help="skip the SavedModel served in a separate process")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per model")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--svg", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        return run_one(args.one, args.json, args.svg, not args.no_serve)
    results = read_doc()
    failed = 0
    for m in _select(args):
        start = time.perf_counter()
        r = run_in_child(m, not args.no_serve, args.timeout)
        results[m.name] = r
        failed += r.status != "pass"
        note = "" if r.status == "pass" else f"  {r.stage}: {r.message[:300]}"
        print(f"{m.name:<20} {r.status:<5} {time.perf_counter() - start:7.1f} s{note}", flush=True)
        write_doc(results)  # after each model, so an interrupted run keeps what it measured
    write_gallery_section()
    print(f"wrote {DOC.relative_to(ROOT)} and the conformance section of {GALLERY_DOC.relative_to(ROOT)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
