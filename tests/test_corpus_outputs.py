"""Hostile outputs: what ``compile -o`` and ``render -o`` must refuse, with nothing outside the output touched.

The committed cases (``tests/corpus/cases_outputs.json``: devices, paths under
a device, folders that are not fusec's) run with the rest of the corpus in
test_corpus.py. The cases here need files made at test time: FIFOs, sockets,
links, hard links, the spec and its sub-models as the output, names too long
for the file system, and earlier outputs whose ownership record is forged,
signed with another key, nested 100,000 deep, oversized, or whose folder
holds a file fusec did not write. Each runs through ``run_case``: the exit
code, the message (text and ``--json``), and a working folder byte-identical
afterwards, with the ``keep`` paths' bytes checked too. Races (a file created
between fusec's last check and its rename) are in test_atomic.py (compile)
and test_render.py (render).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from corpus_kit import Case, spec, write

from conftest import ROOT
from fusec.cli import cli

PARTS = ROOT / "specs" / "parts"


pytestmark = pytest.mark.usefixtures("state_dir")  # a fresh ownership key for each test (conftest.py)


def _base(tmp: Path, name: str = "good.json") -> Path:
    return write(tmp / name, spec())


def _render(cid: str, spec_path: Path, out: Path | str, fragment: str, *keep: Path, fmt: str = "dot") -> Case:
    return Case(
        cid, spec_path, 1, "$", fragment, "output", ("render",), out_args=("-o", str(out), "--format", fmt), keep=keep
    )


def _compile(cid: str, spec_path: Path, out: Path, fragment: str, *keep: Path) -> Case:
    return Case(cid, spec_path, 1, "$", fragment, "output", ("compile",), out_args=("-o", str(out)), keep=keep)


def _owned(folder: Path, files: dict[str, bytes] | None = None) -> Path:
    """A folder as a compile leaves it: files, and an ownership record signed with this user's key."""
    import fusec.keras.save

    if files is None:
        files = {"fusec.json": b'{"fusec": "0.1.0"}\n', "saved_model/saved_model.pb": b"pb", "tiny.keras": b"k"}
    for rel, data in files.items():
        write(folder / rel, data)
    fusec.keras.save.owner.write_owner(folder, fusec.keras.save.user_key(create=True))
    return folder


# --- render: only regular files, never an input ------------------------------------------


def _render_fifo(tmp: Path) -> Case:
    os.mkfifo(tmp / "diagram.dot")  # opening it to write would block; replacing it would lose it
    return _render("render_out_fifo", _base(tmp), tmp / "diagram.dot", "is a FIFO (named pipe), not a regular file")


def _render_socket(tmp: Path) -> Case:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    here = Path.cwd()
    os.chdir(tmp)  # a relative bind keeps the address short
    try:
        sock.bind("s.dot")
    finally:
        os.chdir(here)
        sock.close()
    return _render("render_out_socket", _base(tmp), tmp / "s.dot", "is a socket, not a regular file")


def _render_link_to_device(tmp: Path) -> Case:
    (tmp / "null.dot").symlink_to("/dev/null")
    return _render("render_out_link_to_device", _base(tmp), tmp / "null.dot", "is a symbolic link")


def _render_link_to_spec(tmp: Path) -> Case:
    good = _base(tmp)
    (tmp / "d.dot").symlink_to(good)
    return _render("render_out_link_to_spec", good, tmp / "d.dot", "is a symbolic link", good)


def _render_dangling_link(tmp: Path) -> Case:
    (tmp / "d.dot").symlink_to(tmp / "elsewhere" / "new.dot")
    return _render("render_out_dangling_link", _base(tmp), tmp / "d.dot", "is a symbolic link")


def _render_spec_itself(tmp: Path) -> Case:
    good = _base(tmp)
    return _render("render_out_is_the_spec", good, good, "is the spec being drawn", good)


def _render_hard_link_to_spec(tmp: Path) -> Case:
    good = _base(tmp)
    os.link(good, tmp / "alias.dot")
    return _render("render_out_hard_link_to_spec", good, tmp / "alias.dot", "is the spec being drawn", good)


def _render_spec_through_linked_folder(tmp: Path) -> Case:
    good = _base(tmp / "specs")
    (tmp / "view").symlink_to(tmp / "specs", target_is_directory=True)
    out = tmp / "view" / "good.json"
    return _render("render_out_spec_via_linked_folder", good, out, "is the spec being drawn", good)


def _sub_model_spec(tmp: Path) -> Path:
    shutil.copy(PARTS / "image_classifier.keras", tmp / "cnn.keras")
    write(tmp / "text.json", json.loads((PARTS / "text_classifier.json").read_text()))
    doc = spec(
        inputs={"image": {"shape": [32, 32, 3]}, "tokens": {"shape": [24], "dtype": "int32"}},
        nodes={
            "cnn": {"model": "cnn.keras", "inputs": "image", "trainable": False},
            "txt": {"model": "text.json", "inputs": "tokens"},
            "both": {"merge": "concat", "inputs": ["cnn", "txt"]},
            "y": {"layer": "Dense", "config": {"units": 1}, "inputs": "both"},
        },
    )
    return write(tmp / "fused.json", doc)


def _render_sub_model_archive(tmp: Path) -> Case:
    fused = _sub_model_spec(tmp)
    cnn = tmp / "cnn.keras"
    return _render("render_out_is_a_sub_model", fused, cnn, "is a file the spec reads", cnn)


def _render_sub_model_spec(tmp: Path) -> Case:
    fused = _sub_model_spec(tmp)
    txt = tmp / "text.json"
    return _render("render_out_is_a_nested_spec", fused, txt, "is a file the spec reads", txt)


def _render_default_name_too_long(tmp: Path) -> Case:
    long = write(tmp / ("n" * 252 + ".j"), spec())  # a legal name; `<stem>.svg` is 256 bytes
    return Case(
        "render_default_name_too_long", long, 1, "$", "the default output name", "output", ("render",),
        out_args=("--format", "svg"), keep=(long,),
    )  # fmt: skip


def _render_name_too_long(tmp: Path) -> Case:
    return _render("render_out_name_too_long", _base(tmp), tmp / ("x" * 300 + ".dot"), "the file name is 304 bytes")


# --- compile: only folders fusec provably wrote ---------------------------------------------


def _compile_fifo(tmp: Path) -> Case:
    os.mkfifo(tmp / "model")
    return _compile("compile_out_fifo", _base(tmp), tmp / "model", "exists and is not a folder (it is a FIFO")


def _compile_forged_record(tmp: Path) -> Case:
    """Another tool's folder dressed as fusec's: a plausible manifest and a record with a made-up MAC."""
    import fusec.keras.save

    fusec.keras.save.user_key(create=True)  # this user has compiled before: the key exists
    out = tmp / "home"
    manifest = write(out / "fusec.json", {"fusec": "0.1.0", "name": "tiny", "spec_sha256": "0" * 64})
    thesis = write(out / "thesis.tex", "months of work\n")
    listed = [
        [p.name, "f", p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest()] for p in sorted((manifest, thesis))
    ]
    record = write(
        out / "fusec.owner.json", {"version": 1, "token": "0" * 32, "mac": "ab" * 32, "entries": listed}
    )  # fmt: skip
    return _compile(
        "compile_out_forged_record", _base(tmp), out, "is not signed with your key", manifest, thesis, record
    )


def _compile_other_key(tmp: Path) -> Case:
    """A genuine-looking record, signed with a key that is not this user's."""
    import fusec.keras.save

    fusec.keras.save.user_key(create=True)
    out = tmp / "shared"
    notes = write(out / "notes.txt", "mine\n")
    listed, _ = fusec.keras.save.owner.listing(out)
    payload = {"version": 1, "token": "1" * 32, "entries": listed}
    record = write(out / "fusec.owner.json", {**payload, "mac": fusec.keras.save.owner.sign(os.urandom(32), payload)})
    return _compile("compile_out_signed_by_another_key", _base(tmp), out, "is not signed with your key", notes, record)


def _compile_nested_record(tmp: Path) -> Case:
    out = tmp / "out"
    record = write(out / "fusec.owner.json", "[" * 100_000 + "]" * 100_000)
    return _compile("compile_out_nested_record", _base(tmp), out, "is not a fusec ownership record", record)


def _compile_huge_record(tmp: Path) -> Case:
    out = tmp / "out"
    record = write(out / "fusec.owner.json", b"{" + b" " * (5 << 20) + b"}")
    return _compile("compile_out_huge_record", _base(tmp), out, "is larger than 4,194,304 bytes", record)


def _compile_record_is_a_link(tmp: Path) -> Case:
    real = _owned(tmp / "real")
    out = tmp / "out"
    out.mkdir()
    (out / "fusec.owner.json").symlink_to(real / "fusec.owner.json")
    return _compile("compile_out_record_is_a_link", _base(tmp), out, "cannot be read", real / "fusec.owner.json")


def _compile_extra_file(tmp: Path) -> Case:
    out = _owned(tmp / "out")
    notes = write(out / "saved_model" / "notes.txt", "added by hand\n")
    return _compile(
        "compile_out_holds_a_foreign_file", _base(tmp), out, "holds `saved_model/notes.txt`, which fusec did not write",
        notes, out / "fusec.owner.json",
    )  # fmt: skip


def _compile_changed_file(tmp: Path) -> Case:
    out = _owned(tmp / "out")
    edited = write(out / "fusec.json", '{"fusec": "0.1.0", "edited": true}\n')
    return _compile(
        "compile_out_changed_file", _base(tmp), out, "holds `fusec.json`, which changed after fusec wrote it", edited
    )


def _compile_output_holds_the_spec(tmp: Path) -> Case:
    """Compiling an output's own copy of its spec into that output."""
    out = _owned(tmp / "out", {"spec.json": json.dumps(spec()).encode(), "fusec.json": b"{}\n"})
    return _compile("compile_out_holds_the_spec", out / "spec.json", out, "which this compile reads", out / "spec.json")


def _compile_output_holds_a_sub_model(tmp: Path) -> Case:
    out = _owned(tmp / "out", {"fusec.json": b"{}\n"})
    fused = _sub_model_spec(tmp)
    moved = out / "cnn.keras"
    shutil.move(tmp / "cnn.keras", moved)
    (tmp / "cnn.keras").symlink_to(moved)  # the spec's folder links into the output
    return _compile(
        "compile_out_holds_a_sub_model", fused, out, "holds `", moved
    )  # the sub-model is not listed: refused as foreign or as an input, never replaced


GENERATED: list[Callable[[Path], Case]] = [
    _render_fifo,
    _render_socket,
    _render_link_to_device,
    _render_link_to_spec,
    _render_dangling_link,
    _render_spec_itself,
    _render_hard_link_to_spec,
    _render_spec_through_linked_folder,
    _render_sub_model_archive,
    _render_sub_model_spec,
    _render_default_name_too_long,
    _render_name_too_long,
    _compile_fifo,
    _compile_forged_record,
    _compile_other_key,
    _compile_nested_record,
    _compile_huge_record,
    _compile_record_is_a_link,
    _compile_extra_file,
    _compile_changed_file,
    _compile_output_holds_the_spec,
    _compile_output_holds_a_sub_model,
]


@pytest.fixture
def work(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("make", GENERATED, ids=[g.__name__.lstrip("_") for g in GENERATED])
def test_generated_output_case(make: Callable[[Path], Case], corpus_run: Any) -> None:
    corpus_run(make)


def test_committed_output_cases_are_in_their_table() -> None:
    """The committed half of this corpus: one case file per case, named for what it covers."""
    table = json.loads((ROOT / "tests" / "corpus" / "cases_outputs.json").read_text())
    assert len(table) + len(GENERATED) >= 12 + 9
    for entry in table:
        assert entry["file"] == f"{entry['id']}.json" and entry["id"].startswith(("out_", "render_"))
        assert entry["code"] == "output" and entry["path"] == "$" and entry["exit"] == 1


def test_nothing_is_written_where_a_refused_render_points(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused before Graphviz runs: no temporary file is ever made beside a refused output."""
    monkeypatch.chdir(work)
    os.mkfifo(work / "d.svg")
    monkeypatch.setenv("PATH", str(work / "no-graphviz-here"))
    result = CliRunner().invoke(cli, ["render", str(_base(work)), "-o", str(work / "d.svg")])
    assert result.exit_code == 1 and "is a FIFO" in result.stderr and "Graphviz" not in result.stderr
    assert sorted(p.name for p in work.iterdir()) == ["d.svg", "good.json"]
