"""Render stage: a checked spec becomes a Graphviz diagram (DOT, SVG, PNG, PDF) or a review page (HTML).

``to_dot`` writes the DOT text itself, node by node in spec order, so the same
spec always gives the same bytes; ``render`` pipes that text through
Graphviz's ``dot`` program with a time limit. Node names in the DOT text are
the elements' DOM ids (``n0``, ``o0``, ``e0``...: ``plan.py``); every string
from the spec reaches Graphviz only inside an escaped HTML-like label, and the
SVG's titles are rewritten to the real (escaped) ids after layout
(``svg.py``). Never imports TensorFlow.

The pieces: ``plan.py`` (which element draws each node: frames, folded block
instances, ×N groups of repeated branches), ``faults.py`` (a broken spec's
problems mapped to nodes and edges), ``dot.py`` and ``diagram.py`` (the DOT
text), ``svg.py`` (titles), ``data.py`` (the review page's data).
"""

from __future__ import annotations

import re
import shutil
import subprocess

from ..errors import FusecError
from ..static.check import Checked
from .data import page_data as page_data
from .diagram import LARGE as LARGE
from .diagram import View, view
from .svg import retitle

FORMATS = ("svg", "png", "pdf", "dot", "html")
LARGE_PNG_DPI = 64
_PDF_DATE = re.compile(rb"(/(?:CreationDate|ModDate) \(D:)[0-9]{14}")
_INSTALL = "install Graphviz: `apt-get install graphviz` (Debian/Ubuntu) or `brew install graphviz` (macOS)"


def to_dot(
    checked: Checked, rankdir: str = "TB", collapse: bool = False, depth: int | None = None, unfold: bool = False
) -> str:
    """Write the diagram of a checked spec as DOT text.

    Args:
        checked: the spec, from ``check_spec`` (a lenient check's too: its
            problems are drawn in red).
        rankdir: ``TB`` (top to bottom) or ``LR`` (left to right).
        collapse: draw every block or sub-model as one node (same as depth 0).
        depth: expand nested blocks to this depth; deeper ones are one node.
        unfold: draw every branch of repeated parallel branches (default:
            each group is one "×N" box).

    Returns:
        DOT text, identical for identical specs.

    Raises:
        ValueError: rankdir is not TB or LR, or depth is negative.

    Example:
        >>> to_dot(check_spec("specs/image_tag.json"))[:16]  # doctest: +SKIP
        'digraph "image_t'
    """
    return view(checked, rankdir, collapse, depth, unfold).dot


def find_dot() -> str:
    """The path of Graphviz's ``dot`` program.

    Raises:
        FusecError: ``dot`` is not on PATH (the message says how to install it).
    """
    path = shutil.which("dot")
    if path is None:
        raise FusecError.single((), "Graphviz's `dot` program was not found on PATH", _INSTALL, code="render")
    return path


def render(
    checked: Checked,
    fmt: str = "svg",
    rankdir: str = "TB",
    collapse: bool = False,
    depth: int | None = None,
    timeout: float = 30.0,
    unfold: bool = False,
) -> bytes:
    """Draw a checked spec.

    Args:
        checked: the spec, from ``check_spec`` (a lenient check's too).
        fmt: ``svg``, ``png``, ``pdf``, ``dot`` (DOT text; needs no Graphviz)
            or ``html`` (the review page: ``html.py``).
        rankdir: ``TB`` or ``LR``.
        collapse: draw every block or sub-model as one node (not for html:
            the page folds blocks itself).
        depth: expand nested blocks to this depth (not for html).
        timeout: seconds ``dot`` may take (per view) before it is stopped.
        unfold: draw every branch of repeated parallel branches.

    Returns:
        The file's bytes (identical for identical specs, PDF included).

    Raises:
        FusecError: ``dot`` is missing, failed, or ran past ``timeout``.
        ValueError: an unknown format or rankdir.

    Example:
        >>> svg = render(check_spec("specs/image_tag.json"), "svg")  # doctest: +SKIP
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if fmt == "html":
        return _page(checked, rankdir, timeout)
    drawn = view(checked, rankdir, collapse, depth, unfold)
    if fmt == "dot":
        return drawn.dot.encode("utf-8")
    # A large PNG at 96 dpi is ~100 Mpx, and cairo takes seconds to compress it; 64 dpi keeps
    # 11-point text legible at less than half the pixels. (Vector formats do not depend on dpi.)
    return _laid_out(drawn, fmt, timeout)


def _laid_out(drawn: View, fmt: str, timeout: float) -> bytes:
    """One view through ``dot``; an SVG's titles made the real names."""
    dpi = LARGE_PNG_DPI if drawn.large and fmt == "png" else None
    out = run_dot(drawn.dot.encode("utf-8"), fmt, timeout, dpi=dpi)
    if fmt == "svg":
        return retitle(out.decode("utf-8"), drawn.titles).encode("utf-8")
    return out


def _page(checked: Checked, rankdir: str, timeout: float) -> bytes:
    """The review page: the main view (×N folded) and, when there are ×N groups, the unfolded one."""
    from .html import page

    main = view(checked, rankdir)
    views = {"main": _laid_out(main, "svg", timeout).decode("utf-8")}
    if main.layout.repeats:
        views["unfolded"] = _laid_out(view(checked, rankdir, unfold=True), "svg", timeout).decode("utf-8")
    return page(views, page_data(checked, main=main))


def run_dot(text: bytes, fmt: str, timeout: float = 30.0, dpi: int | None = None) -> bytes:
    """Lay out DOT text with Graphviz's ``dot`` and return the ``fmt`` output.

    Args:
        text: DOT text, UTF-8.
        fmt: a Graphviz output format (``svg``, ``png``, ``pdf``).
        timeout: seconds before ``dot`` is stopped.
        dpi: raster resolution for PNG (None: Graphviz's 96).

    Returns:
        The output file's bytes.

    Raises:
        FusecError: ``dot`` is missing, failed, or ran past ``timeout``.
    """
    cmd = [find_dot(), f"-T{fmt}", *([f"-Gdpi={dpi}"] if dpi else [])]
    try:
        proc = subprocess.run(cmd, input=text, capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise FusecError.single((), "Graphviz's `dot` program was not found", _INSTALL, code="render") from None
    except subprocess.TimeoutExpired:
        raise FusecError.single(
            (),
            f"Graphviz's `dot` took longer than {timeout:g} s to lay out the diagram and was stopped",
            "raise --timeout, draw blocks collapsed with --collapse, or write --format dot to lay out later",
            code="render",
        ) from None
    if proc.returncode != 0 or not proc.stdout:
        lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = lines[0] if lines else f"exit code {proc.returncode}"
        raise FusecError.single(
            (),
            f"Graphviz's `dot` failed: {detail}",
            "check the Graphviz install (`dot -V`); if it works, write --format dot and report the bug",
            code="render",
        )
    if fmt == "pdf":  # cairo stamps the time; a fixed date of the same length keeps offsets valid
        return _PDF_DATE.sub(lambda m: m.group(1) + b"19700101000000", proc.stdout)
    return proc.stdout
