"""Where the browser tests find Chromium, Playwright and Graphviz.

Chromium is Debian's package (``.ci/setup`` installs it; Playwright's own
browser download is never used), found at ``FUSEC_CHROMIUM``, else
``/usr/bin/chromium``, else ``chromium`` or ``chromium-browser`` on PATH.
Where one of the three is missing the browser tests are skipped with the
reason, except under ``FUSEC_REQUIRE_BROWSER=1`` (what ``.ci/test`` sets):
there a missing browser fails the run instead of hiding the tests.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest


def _chromium() -> Path | None:
    given = os.environ.get("FUSEC_CHROMIUM")
    names = [given] if given else ["/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")]
    return next((Path(n) for n in names if n and Path(n).is_file()), None)


def require() -> tuple[Any, Path]:
    """``(playwright.sync_api, chromium)`` for a test module, or the module skipped (failed when required)."""
    chromium = _chromium()
    missing = [] if chromium else ["Chromium (.ci/setup installs Debian's chromium; or set FUSEC_CHROMIUM)"]
    if shutil.which("dot") is None:
        missing.append("Graphviz's dot")
    try:
        import playwright.sync_api as api
    except ImportError:
        api = None
        missing.append("playwright (.ci/setup installs it)")
    if missing or chromium is None:
        reason = "the browser tests need " + ", ".join(missing)
        if os.environ.get("FUSEC_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + " (FUSEC_REQUIRE_BROWSER=1)", pytrace=False)
        pytest.skip(reason, allow_module_level=True)
    return api, chromium
