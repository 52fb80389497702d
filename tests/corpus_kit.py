"""The corpus machinery shared by the hostile-input test files.

A case is a spec (or a path) and what fusec must answer: the exit code, the
JSON path and a fragment of the message. ``run_case`` runs it through the
commands it names, in text and ``--json``, and asserts that nothing in the
working folder or the private temp folder changed. The fixtures it needs
(``private_tmp``, ``validator``, ``no_network``) live in conftest.py.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fusec.cli import cli
from fusec.errors import printable
from helpers import spec as spec  # re-exported: the corpus files build their specs with it

CORPUS = Path(__file__).resolve().parent / "corpus"
COMMANDS = ("check", "compile", "render")


@dataclass(frozen=True)
class Case:
    """One broken spec and what fusec must answer."""

    id: str
    file: Path
    exit: int
    path: str | None
    fragment: str
    code: str | None = None
    commands: tuple[str, ...] = COMMANDS
    args: tuple[str, ...] = ()
    out_args: tuple[str, ...] = ()  # replaces the default -o for compile and render
    keep: tuple[Path, ...] = field(default_factory=tuple)  # paths that must stay byte-identical


def committed_cases() -> list[Case]:
    """Every case of every ``tests/corpus/cases*.json`` table, in file order."""
    cases = []
    for table_file in sorted(CORPUS.glob("cases*.json")):
        for c in json.loads(table_file.read_text(encoding="utf-8")):
            cases.append(
                Case(
                    c["id"],
                    CORPUS / c["file"],
                    c["exit"],
                    c["path"],
                    c["fragment"],
                    c.get("code"),
                    tuple(c.get("commands", COMMANDS)),
                    tuple(c.get("args", ())),
                )
            )
    return cases


def write(path: Path, doc: Any) -> Path:
    """Write ``doc`` (bytes, text or JSON-able) to ``path``, making its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(doc, bytes):
        path.write_bytes(doc)
    else:
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return path


def snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every path under ``root`` with its mode, size and (for small files) bytes."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            data = p.read_bytes() if p.is_file() and not p.is_symlink() and st.st_size < 1 << 16 else b""
            found[str(p.relative_to(root))] = (st.st_mode, st.st_size, data)
    return found


def argv_for(case: Case, command: str, work: Path, as_json: bool = False) -> list[str]:
    argv = [command, str(case.file)]
    if command != "check":
        default_out = ["-o", str(work / "out")] if command == "compile" else ["-o", str(work / "out.svg")]
        argv += list(case.out_args) or default_out
    argv += list(case.args)
    if as_json:
        argv.append("--json")
    return argv


def check_text(case: Case, result: Any) -> None:
    output = result.output
    assert "Traceback" not in output
    assert result.exit_code == case.exit, output
    if case.exit == 0:
        assert case.fragment in output
        return
    lines = result.stderr.splitlines()
    if lines and lines[0].startswith("rendered ") and lines[0].endswith(" in red)"):
        lines = lines[1:]  # render drew what it could of the broken spec (run_case checks the drawing)
    elif lines and lines[0].startswith("note: not drawn: "):
        lines = lines[1:]  # too large to draw with its errors: the errors follow
    assert lines, "an error must be reported"
    assert result.stdout == "", result.stdout
    if case.code == "output":
        assert all(line.startswith("error: ") for line in lines), result.stderr
        assert any(case.fragment in line for line in lines), result.stderr
        return
    assert all(error_line(line, case.file) for line in lines), result.stderr
    hits = [line for line in lines if error_line(line, case.file, case.path) and case.fragment in line]
    assert hits, f"no line at {case.path!r} with {case.fragment!r}:\n{result.stderr}"


def error_line(line: str, file: str | Path, path: str = "$") -> re.Match[str] | None:
    """The match of ``file:line:col: error: PATH...`` (``file: error: ...`` for a file with no place to point at).

    Every problem of a file fusec could read carries its line and column;
    only a file that cannot be read (code ``file``) or that is refused whole
    (a size limit) has none.
    """
    shown = re.escape(printable(str(file)))
    match = re.match(rf"{shown}(?::(\d+):(\d+))?: error: {re.escape(path)}", line)
    if match and match.group(1) is None:
        assert re.search(
            r"no such file|not a regular file|cannot read|permission|loop|too long|the limit is|"
            r"more than [\d,]+ JSON values|not UTF-8|is empty|nesting is deeper",
            line,
        ), f"no line:col on {line!r}"
    return match


def check_json(case: Case, result: Any, validator: Any) -> None:
    assert result.exit_code == case.exit, result.output
    payload = json.loads(result.stdout)
    errors = sorted(validator.iter_errors(payload), key=str)
    assert not errors, errors[0]
    if case.exit == 0:
        return
    assert payload["ok"] is False
    items = [e for f in payload["files"] for e in f["errors"]]
    match = [e for e in items if e["path"] == case.path and case.fragment in e["message"] + " " + e["hint"]]
    assert match, items
    if case.code:
        assert case.code in {e["code"] for e in match}, match
    placed = [
        e
        for e in items
        if e["code"] not in ("file", "limit", "output")
        and e["file"] == str(case.file)
        and (e["path"] != "$" or e["message"].startswith("not valid JSON"))
    ]
    assert all("line" in e for e in placed), [e for e in placed if "line" not in e]


def run_case(case: Case, work: Path, systemp: Path, validator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(work)
    keep = {p: p.read_bytes() for p in case.keep}
    for command in case.commands:
        before = snapshot(work)
        drawn: set[str] = set()
        for as_json in (False, True):
            result = CliRunner().invoke(cli, argv_for(case, command, work, as_json))
            assert not isinstance(result.exception, AssertionError), result.exception  # the network guard
            if as_json:
                check_json(case, result, validator)
                drawn |= _drawn(case, result, work)
            else:
                check_text(case, result)
        after = {p: v for p, v in snapshot(work).items() if p not in drawn}
        assert after == before, f"{command} wrote something"
        assert list(systemp.iterdir()) == [], f"{command} left a staging folder"
    for p, data in keep.items():
        assert p.read_bytes() == data


def _drawn(case: Case, result: Any, work: Path) -> set[str]:
    """The drawing ``render`` wrote of a spec with errors (it draws them in red, exit 1), checked whole.

    Only a new file, complete (its format's closing bytes), named in the JSON
    report's ``drawing``; never for a case about the output itself.
    """
    if case.exit == 0 or not result.stdout.startswith("{"):
        return set()
    drawing = json.loads(result.stdout).get("drawing")
    if drawing is None:
        return set()
    assert case.code not in ("output", "file"), drawing
    path = Path(drawing["output"])
    path = path if path.is_absolute() else work / path
    data = path.read_bytes()
    assert len(data) == drawing["bytes"]
    ends = {"svg": b"</svg>\n", "dot": b"}\n", "html": b"</html>\n", "png": b"IEND\xaeB`\x82", "pdf": b"%%EOF\n"}
    assert data.endswith(ends[drawing["format"]]), data[-40:]
    return {str(path.relative_to(work))}
