"""keras.applications conformance: one representative per family, imported, checked, compiled, equal.

Each family's smallest member, at the smallest input it accepts, with random
non-trivial weights (tests/conformance_kit.py): ``fusec import`` -> ``check``
(every node's shape and the parameter total equal Keras's) -> ``compile`` ->
the compiled ``.keras`` and its SavedModel (served without fusec) give
Keras's outputs within 1e-5. A failing family fails its own test with the
importer's or checker's message. Every member of every family: ``make
conformance`` (tools/conformance.py, docs/conformance.md).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from conformance_kit import ABSENT, FAMILIES, MEMBERS, REPRESENTATIVES, TOLERANCE, Member, run_member

from conftest import ROOT


@pytest.mark.slow
@pytest.mark.parametrize("member", REPRESENTATIVES, ids=lambda m: m.family)
def test_family_conforms(member: Member, keras: Any, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    try:
        result = run_member(keras, member, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # archives, weights and compiled models are large
    if result.status != "pass":
        pytest.fail(f"{member.name} ({member.family}) fails at {result.stage}: {result.message}", pytrace=False)
    assert result.max_diff is not None and result.max_diff <= TOLERANCE
    assert result.saved_diff is not None and result.saved_diff <= TOLERANCE


@pytest.mark.slow
def test_the_suite_covers_every_application(keras: Any) -> None:
    """Every model function in keras.applications is a member; RegNet and ResNetRS are not in Keras 3."""
    shipped = {n for n in dir(keras.applications) if n[0].isupper() and callable(getattr(keras.applications, n))}
    assert shipped == {m.name for m in MEMBERS}
    for family in ABSENT:
        assert not any(n.startswith(family) for n in shipped), family


def test_families_and_representatives() -> None:
    """One representative per family, the family's first (smallest) member; the doc lists every member."""
    assert [m.family for m in REPRESENTATIVES] == list(FAMILIES)
    assert all(m.name == FAMILIES[m.family][0][0] for m in REPRESENTATIVES)
    doc = (ROOT / "docs" / "conformance.md").read_text(encoding="utf-8")
    missing = [m.name for m in MEMBERS if f"| {m.name} | {m.family} |" not in doc]
    assert missing == [], f"docs/conformance.md lacks rows for {missing}: run tools/conformance.py"
