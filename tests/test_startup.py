"""Startup cost: what ``import fusec``, ``import fusec.cli`` and a first check load (sys.modules, never timings).

Every command pays for what the package imports, so the parts only some
specs or some failures need load on first use: the ``.keras`` archive reader
(a spec with a ``model`` node), the schema generator (the yes/no check reads
the committed schema), jsonschema and the messages (a failing spec), ctypes
(an output written), and the checker itself for ``import fusec``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import fusec
import fusec.spec.schema as schema_pkg
import fusec.static.archive as archive_pkg
from fusec.spec.schema.committed import SCHEMA_PATH, committed_schema

ROOT = Path(__file__).resolve().parents[1]

#: Modules a check of a valid spec without `model` nodes never needs.
DEFERRED = (
    *(
        f"fusec.static.archive.{m}"
        for m in ("inspect", "classes", "h5", "members", "parse", "run", "settings", "graph", "masks")
    ),
    *(f"fusec.spec.schema.{m}" for m in ("generate", "editor", "defs", "messages", "validator", "params", "training")),
    "jsonschema",
    "h5py",
    "ctypes",
    "tensorflow",
    "keras",
)


def _loaded(code: str) -> set[str]:
    """The modules in sys.modules after running ``code`` in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport json, sys; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_import_fusec_loads_no_stage() -> None:
    loaded = _loaded("import fusec")
    assert not {m for m in loaded if m.startswith(("fusec.static", "fusec.spec", "fusec.vocab"))}
    assert "networkx" not in loaded
    assert not loaded & set(DEFERRED)


def test_import_cli_defers_archive_reader_and_schema_generator() -> None:
    loaded = _loaded("import fusec.cli")
    assert not loaded & set(DEFERRED)


def test_check_of_plain_spec_defers_them_too() -> None:
    code = (
        "from pathlib import Path\nfrom fusec.static.check import check_spec\ncheck_spec(Path('specs/image_tag.json'))"
    )
    assert not _loaded(code) & set(DEFERRED)


def test_failing_spec_loads_messages_on_demand(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"fusec": 1, "name": "m", "inputs": {"x": {"shape": [4]}}, "nodes": {}, "outputs": {}}))
    code = (
        "from pathlib import Path\nfrom fusec.errors import FusecError\nfrom fusec.static.check import check_spec\n"
        f"try:\n    check_spec(Path({str(bad)!r}))\nexcept FusecError:\n    pass\n"
        "else:\n    raise SystemExit('no error')"
    )
    assert {"fusec.spec.schema.messages", "fusec.spec.schema.validator"} <= _loaded(code)


def test_lazy_names_resolve_to_their_modules() -> None:
    from fusec.spec.load import load_spec
    from fusec.spec.schema.generate import generate_schema
    from fusec.static.archive.inspect import inspect_keras
    from fusec.static.check import check_spec

    assert fusec.check_spec is check_spec and fusec.load_spec is load_spec
    assert schema_pkg.generate_schema is generate_schema
    assert archive_pkg.inspect_keras is inspect_keras
    for module in (fusec, schema_pkg, archive_pkg):
        with pytest.raises(AttributeError, match="no attribute"):
            module.no_such_name  # noqa: B018
        assert all(hasattr(module, name) for name in getattr(module, "__all__", ()))


def test_committed_schema_is_the_generated_one() -> None:
    from fusec.spec.schema import generate_schema

    assert committed_schema() == generate_schema()
    assert SCHEMA_PATH.name == "fusec-1.schema.json"
