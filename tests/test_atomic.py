"""Nothing is lost: outputs are replaced only on success, and builds are deterministic.

A compile writes into a staging folder (``.fusec-stage-<pid>-*``, in the system
temp folder when it shares the output's filesystem) and swaps it into place in
one rename. These tests kill a compile with SIGKILL while it writes, make a
save fail half-way, and check that the earlier output is still there, byte for
byte and loadable, that no partial folder is left beside it, and that the next
compile removes what the killed one left in the temp folder.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fusec.cli import cli
from helpers import spec, write

STAGE = ".fusec-stage-"


pytestmark = pytest.mark.usefixtures("state_dir")  # a fresh ownership key for each test (conftest.py)


#: a small model, and a different, slower-to-export one that replaces it
FIRST = spec(name="first")
SECOND = spec(
    name="second",
    inputs={"img": {"shape": [16, 16, 3]}},
    nodes={
        "c1": {"layer": "Conv2D", "config": {"filters": 8, "kernel_size": 3, "activation": "relu"}, "inputs": "img"},
        "c2": {"layer": "Conv2D", "config": {"filters": 8, "kernel_size": 3, "activation": "relu"}, "inputs": "c1"},
        "r": {"layer": "LSTM", "config": {"units": 8}, "inputs": "seq"},
        "seq": {"layer": "Reshape", "config": {"target_shape": [12, 96]}, "inputs": "c2"},
        "y": {"layer": "Dense", "config": {"units": 1}, "inputs": "r"},
    },
)


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``root`` (folders as "dir")."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def stages(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"{STAGE}*"))


def compile_in_process(spec_path: Path, out: Path) -> Any:
    result = CliRunner().invoke(cli, ["compile", str(spec_path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return result


def assert_loadable(out: Path, keras: Any, name: str) -> None:
    manifest = json.loads((out / "fusec.json").read_text())
    assert manifest["name"] == name
    model = keras.models.load_model(out / f"{name}.keras", compile=False)
    assert sorted(t.name for t in model.inputs) == sorted(manifest["signature"]["inputs"])


def test_sigkill_midway_leaves_the_earlier_output(tmp_path: Path, private_tmp: Path, keras: Any) -> None:
    out = tmp_path / "models" / "net"
    compile_in_process(write(tmp_path, FIRST, "first.json"), out)
    before = tree_digest(out)
    second = write(tmp_path, SECOND, "second.json")

    env = {**os.environ, "TMPDIR": str(private_tmp), "TF_CPP_MIN_LOG_LEVEL": "3"}
    exe = Path(sys.executable).with_name("fusec")
    proc = subprocess.Popen(
        [str(exe), "compile", str(second), "-o", str(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 240
        mine = f"{STAGE}{proc.pid}-"
        while time.monotonic() < deadline and proc.poll() is None:
            # midway: the staging folder exists and the SavedModel export has begun
            if any(s.name.startswith(mine) and any(s.iterdir()) for s in stages(private_tmp)):
                break
            time.sleep(0.002)
        assert proc.poll() is None, f"the compile ended before it could be killed: {proc.stderr.read()!r}"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()

    assert tree_digest(out) == before, "the earlier output changed"
    assert_loadable(out, keras, "first")
    assert stages(out.parent) == [], "a partial folder was left beside the output"
    assert sorted(p.name for p in out.parent.iterdir()) == ["net"]
    left = stages(private_tmp)
    assert [p.name.startswith(f"{STAGE}{proc.pid}-") for p in left] == [True], left

    # The next compile replaces the output and removes the dead process's staging folder.
    compile_in_process(second, out)
    assert stages(private_tmp) == []
    assert json.loads((out / "fusec.json").read_text())["name"] == "second"
    assert (out / "spec.json").read_bytes() == second.read_bytes()
    assert_loadable(out, keras, "second")


def test_failed_save_keeps_the_earlier_output(
    tmp_path: Path, private_tmp: Path, keras: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A save that raises half-way (after the SavedModel is written) changes nothing."""
    import fusec.keras.save

    out = tmp_path / "net"
    compile_in_process(write(tmp_path, FIRST, "first.json"), out)
    before = tree_digest(out)
    second = write(tmp_path, SECOND, "second.json")

    def fail(*args: Any, **kwargs: Any) -> None:
        assert any(stages(private_tmp)), "the failure should come mid-way, after staging began"
        raise RuntimeError("simulated crash while saving")

    monkeypatch.setattr(fusec.keras.save.swap, "swap_into_place", fail)
    result = CliRunner().invoke(cli, ["compile", str(second), "-o", str(out)])
    assert result.exit_code == 3  # an unexpected exception: reported as a bug, cleanly
    assert "Traceback" not in result.output and "simulated crash" in result.output
    assert tree_digest(out) == before
    assert stages(private_tmp) == [] and stages(out.parent) == []
    assert_loadable(out, keras, "first")


def test_disk_full_is_a_clean_error(
    tmp_path: Path, private_tmp: Path, keras: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An OSError while writing (disk full) is exit 1 with the reason, the earlier output intact."""
    import fusec.keras.save

    out = tmp_path / "net"
    compile_in_process(write(tmp_path, FIRST, "first.json"), out)
    before = tree_digest(out)

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fusec.keras.save.swap, "swap_into_place", full)
    result = CliRunner().invoke(cli, ["compile", str(write(tmp_path, SECOND, "second.json")), "-o", str(out)])
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: output `{out}`: cannot be written: No space left on device")
    assert tree_digest(out) == before
    assert stages(private_tmp) == []


def test_new_parent_folders_are_removed_on_failure(
    tmp_path: Path, private_tmp: Path, keras: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fusec.keras.save

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(fusec.keras.save.swap, "swap_into_place", full)
    out = tmp_path / "a" / "b" / "net"
    result = CliRunner().invoke(cli, ["compile", str(write(tmp_path, FIRST, "first.json")), "-o", str(out)])
    assert result.exit_code == 1
    assert not (tmp_path / "a").exists()


def test_stale_stages_of_dead_processes_only_are_removed(tmp_path: Path, private_tmp: Path, keras: Any) -> None:
    """Only staging folders fusec signed (with this user's key), of processes that are gone, are removed."""
    import fusec.keras.save

    key = fusec.keras.save.user_key(create=True)
    assert key is not None
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        signed = {f"{STAGE}{dead.pid}-abc", f"{STAGE}{alive.pid}-def"}
        for name in (*signed, f"{STAGE}{dead.pid}-unsigned", f"{STAGE}{dead.pid}-forged", f"{STAGE}notapid-x"):
            (private_tmp / name / "new" / "saved_model").mkdir(parents=True)
        for name in signed:
            (private_tmp / name / fusec.keras.save.swap.STAGE_MARK).write_text(
                fusec.keras.save.swap.mark(private_tmp / name, key)
            )
        (private_tmp / f"{STAGE}{dead.pid}-forged" / fusec.keras.save.swap.STAGE_MARK).write_text("0" * 64)
        compile_in_process(write(tmp_path, FIRST, "first.json"), tmp_path / "net")
        assert sorted(p.name for p in stages(private_tmp)) == sorted(
            [f"{STAGE}{alive.pid}-def", f"{STAGE}{dead.pid}-unsigned", f"{STAGE}{dead.pid}-forged", f"{STAGE}notapid-x"]
        )
    finally:
        alive.kill()
        alive.wait()


def test_replaces_its_own_output_only(tmp_path: Path, private_tmp: Path, keras: Any) -> None:
    out = tmp_path / "net"
    compile_in_process(write(tmp_path, FIRST, "first.json"), out)
    compile_in_process(write(tmp_path, FIRST, "first.json"), out)  # its own, unchanged: replaced
    assert sorted(p.name for p in out.iterdir()) == [
        "first.keras", "fusec.json", "fusec.owner.json", "saved_model", "spec.json", "spec.json.sha256",
    ]  # fmt: skip
    manifest = json.loads((out / "fusec.json").read_text())
    (out / "fusec.json").write_text(json.dumps({**manifest, "note": "edited"}))  # plausible, but not what fusec wrote
    before = tree_digest(out)
    result = CliRunner().invoke(cli, ["compile", str(tmp_path / "first.json"), "-o", str(out)])
    assert result.exit_code == 1
    assert "holds `fusec.json`, which changed after fusec wrote it" in result.output
    assert tree_digest(out) == before


def test_a_file_written_during_the_compile_is_never_taken(
    tmp_path: Path, private_tmp: Path, keras: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process adds a file to the output between fusec's last check and its swap: nothing is replaced."""
    import fusec.keras.save

    out = tmp_path / "net"
    spec_path = write(tmp_path, FIRST, "first.json")
    compile_in_process(spec_path, out)
    before = tree_digest(out)

    def intruder(stage: Path, target: Path) -> None:
        (target / "notes.txt").write_text("written by someone else\n")

    monkeypatch.setattr(fusec.keras.save.swap, "before_swap", intruder)
    result = CliRunner().invoke(cli, ["compile", str(spec_path), "-o", str(out)])
    assert result.exit_code == 1, result.output
    assert "changed while fusec was writing: `notes.txt` appeared in it" in result.output
    after = tree_digest(out)
    assert after.pop("notes.txt") == hashlib.sha256(b"written by someone else\n").hexdigest()
    assert after == before  # the earlier output, untouched
    assert stages(private_tmp) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.json", "net", "systemp"]


def test_an_output_created_during_the_compile_is_never_taken(
    tmp_path: Path, private_tmp: Path, keras: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The output path did not exist when checked; another process creates it before the swap: it stays."""
    import fusec.keras.save

    out = tmp_path / "net"

    def intruder(stage: Path, target: Path) -> None:
        target.write_text("precious\n")

    monkeypatch.setattr(fusec.keras.save.swap, "before_swap", intruder)
    result = CliRunner().invoke(cli, ["compile", str(write(tmp_path, FIRST, "first.json")), "-o", str(out)])
    assert result.exit_code == 1, result.output
    assert "changed while fusec was writing: something was created there" in result.output
    assert out.read_text() == "precious\n"
    assert stages(private_tmp) == []


def test_keras_user_warnings_do_not_leak(tmp_path: Path, private_tmp: Path, keras: Any) -> None:
    """Keras warns that Flatten drops the mask; fusec already said so, with the JSON path: one line, no source."""
    doc = spec(
        name="masked",
        inputs={"t": {"shape": [6], "dtype": "int32"}},
        nodes={
            "e": {"layer": "Embedding", "config": {"input_dim": 20, "output_dim": 4, "mask_zero": True}, "inputs": "t"},
            "f": {"layer": "Flatten", "inputs": "e"},
            "y": {"layer": "Dense", "config": {"units": 1}, "inputs": "f"},
        },
    )
    result = CliRunner().invoke(cli, ["compile", str(write(tmp_path, doc, "masked.json")), "-o", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and ": warning: $.nodes.f.inputs" in lines[0], lines
    assert "UserWarning" not in result.stderr and "warnings.warn" not in result.stderr


# --- ownership, without TensorFlow -------------------------------------------------------


def fake_output(folder: Path, files: dict[str, bytes] | None = None) -> Path:
    """A folder as fusec would leave it: files, and a record signed with this user's key."""
    import fusec.keras.save

    files = (
        files if files is not None else {"fusec.json": b"{}\n", "saved_model/saved_model.pb": b"pb", "m.keras": b"k"}
    )
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    fusec.keras.save.owner.write_owner(folder, fusec.keras.save.user_key(create=True))
    return folder


def refusal(out: Path, deep: bool = True) -> str:
    from fusec.errors import OutputError
    from fusec.keras.save import inspect_destination

    with pytest.raises(OutputError) as exc:
        inspect_destination(out, deep=deep)
    (problem,) = exc.value.problems
    assert problem.code == "output" and "\n" not in problem.message
    return f"{problem.message} ({problem.hint})"


def test_own_output_is_recognised(tmp_path: Path) -> None:
    from fusec.keras.save import inspect_destination

    out = fake_output(tmp_path / "out")
    dest = inspect_destination(out, deep=True)
    assert dest.kind == "owned" and sorted(dest.entries) == [
        "fusec.json", "fusec.owner.json", "m.keras", "saved_model", "saved_model/saved_model.pb",
    ]  # fmt: skip
    (out / "m.keras").unlink()  # a listed entry removed by hand: replacing the rest loses nothing
    assert inspect_destination(out, deep=True).kind == "owned"


def test_key_is_private_and_made_once(state_dir: Path) -> None:
    import stat as st

    from fusec.keras.save import KeyUnavailable, user_key

    first = user_key(create=True)
    assert first is not None and len(first) == 32 and user_key(create=False) == first
    assert st.S_IMODE((state_dir / "key").stat().st_mode) == 0o600
    (state_dir / "key").chmod(0o644)  # anyone may have read it: it signs nothing any more
    with pytest.raises(KeyUnavailable, match="not a private 32-byte file of yours"):
        user_key(create=True)


def test_a_key_others_can_read_is_not_trusted(tmp_path: Path, state_dir: Path) -> None:
    out = fake_output(tmp_path / "out")
    (state_dir / "key").chmod(0o640)
    assert "cannot tell whether it wrote this folder" in refusal(out)


def test_a_record_signed_with_another_key_is_refused(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = fake_output(tmp_path / "out")
    monkeypatch.setenv("FUSEC_STATE_DIR", str(tmp_path_factory.mktemp("another_user")))
    import fusec.keras.save

    fusec.keras.save.user_key(create=True)
    assert "not signed with your key" in refusal(out)


def test_a_forged_record_is_refused(tmp_path: Path) -> None:
    """The record of a real output, copied with an extra entry and a made-up MAC."""
    out = fake_output(tmp_path / "out")
    record = json.loads((out / "fusec.owner.json").read_text())
    record["entries"].append(["thesis.tex", "f", 5, hashlib.sha256(b"work\n").hexdigest()])
    record["mac"] = hashlib.sha256(b"guess").hexdigest()
    (out / "fusec.owner.json").write_text(json.dumps(record))
    (out / "thesis.tex").write_text("work\n")
    assert "not signed with your key" in refusal(out)
    assert (out / "thesis.tex").read_text() == "work\n"


@pytest.mark.parametrize(
    ("make", "named"),
    [
        (lambda o: (o / "notes.txt").write_text("mine"), "notes.txt"),
        (lambda o: (o / "saved_model" / "extra.pb").write_text("mine"), "saved_model/extra.pb"),
        (lambda o: (o / "empty").mkdir(), "empty"),
        (lambda o: os.mkfifo(o / "pipe"), "pipe"),
        (lambda o: (o / "link").symlink_to("/etc/passwd"), "link"),
    ],
    ids=["file", "nested-file", "folder", "fifo", "symlink"],
)
def test_a_foreign_entry_is_named(tmp_path: Path, make: Any, named: str) -> None:
    out = fake_output(tmp_path / "out")
    make(out)
    message = refusal(out)
    assert f"holds `{named}`, which fusec did not write" in message and "move it out" in message


def test_a_changed_entry_is_refused(tmp_path: Path) -> None:
    out = fake_output(tmp_path / "out")
    (out / "m.keras").write_bytes(b"K")  # same size: only the content check sees it
    refusal_deep = refusal(out, deep=True)
    assert "holds `m.keras`, which changed after fusec wrote it" in refusal_deep
    (out / "m.keras").unlink()
    (out / "m.keras").symlink_to(tmp_path)  # a link where a file was
    assert "holds `m.keras`, which changed after fusec wrote it" in refusal(out, deep=False)


BAD_RECORDS = [
    ("nested", b"[" * 100_000 + b"]" * 100_000, "is not a fusec ownership record"),
    ("huge", b" " * (5 << 20), "is larger than 4,194,304 bytes"),
    ("not-utf8", b"\xff\xfe{}", "is not a fusec ownership record"),
    ("a-list", b"[]", "is not a fusec ownership record"),
    ("plausible-manifest", b'{"fusec": "0.1.0", "spec_sha256": "ab"}', "is not a fusec ownership record"),
    (
        "escaping-entry",
        json.dumps({"version": 1, "token": "t", "mac": "m", "entries": [["../x", "d"]]}).encode(),
        "is malformed",
    ),
    (
        "bool-size",
        json.dumps({"version": 1, "token": "t", "mac": "m", "entries": [["a", "f", True, ""]]}).encode(),
        "is malformed",
    ),
]


@pytest.mark.parametrize(("data", "fragment"), [b[1:] for b in BAD_RECORDS], ids=[b[0] for b in BAD_RECORDS])
def test_bad_records_are_refused_cleanly(tmp_path: Path, data: bytes, fragment: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "fusec.owner.json").write_bytes(data)
    assert fragment in refusal(out)


def test_a_record_that_is_a_fifo_or_link_is_refused_without_blocking(tmp_path: Path) -> None:
    real = fake_output(tmp_path / "real")
    out = tmp_path / "out"
    out.mkdir()
    (out / "fusec.owner.json").symlink_to(real / "fusec.owner.json")
    assert "cannot be read" in refusal(out)
    (out / "fusec.owner.json").unlink()
    os.mkfifo(out / "fusec.owner.json")
    assert "is not a regular file" in refusal(out)


# --- the swap, raced (no TensorFlow: a staged folder made by hand) ----------------------------


def staged(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    import fusec.keras.save

    stage = tmp_path / "container" / "new"
    stage.mkdir(parents=True)
    (stage / "fusec.json").write_text('{"new": true}\n')
    return stage, fusec.keras.save.owner.write_owner(stage, fusec.keras.save.user_key(create=True))


def swap_setup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, exchange: bool
) -> tuple[Path, Path, dict[str, Any]]:
    """(out, stage, entries): an output path that is new, an empty folder or fusec's own, and a staged new one.

    Without ``exchange``, renameat2 is made unavailable: check, rename aside, verify, rename.
    """
    import fusec.keras.save

    if not exchange:
        monkeypatch.setattr(fusec.files, "renameat2", lambda a, b, flags: False)
    out = tmp_path / "out"
    if kind == "empty":
        out.mkdir()
    elif kind == "owned":
        fake_output(out)
    stage, entries = staged(tmp_path)
    return out, stage, entries


def swap(stage: Path, entries: dict[str, Any], out: Path, monkeypatch: pytest.MonkeyPatch, intruder: Any) -> str:
    """Swap ``stage`` into ``out`` with ``intruder`` run just before; return the error ("" on success)."""
    import fusec.keras.save
    from fusec.errors import OutputError

    dest = fusec.keras.save.inspect_destination(out)
    monkeypatch.setattr(fusec.keras.save.swap, "before_swap", lambda s, o: intruder(o))
    try:
        fusec.keras.save.swap.swap_into_place(stage, dest, entries)
    except OutputError as exc:
        return exc.problems[0].message
    return ""


INTRUSIONS = [
    ("new", lambda o: o.write_text("precious"), "something was created there"),
    ("new", lambda o: (o.mkdir(), (o / "a").write_text("precious")), "something was created there"),
    ("empty", lambda o: (o / "a").write_text("precious"), "`a` appeared in it"),
    ("owned", lambda o: (o / "a").write_text("precious"), "`a` appeared in it"),
    ("owned", lambda o: (o / "saved_model" / "a").write_text("precious"), "`saved_model/a` appeared in it"),
    ("owned", lambda o: (o / "m.keras").write_bytes(b"K"), "`m.keras` changed"),
    ("owned", lambda o: (o.rename(o.with_name("moved")), o.symlink_to(o.with_name("moved"))), "took its place"),
]


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
@pytest.mark.parametrize(
    ("kind", "intruder", "fragment"), INTRUSIONS, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(INTRUSIONS)]
)
def test_raced_swap_replaces_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, intruder: Any, fragment: str, exchange: bool
) -> None:
    out, stage, entries = swap_setup(tmp_path, monkeypatch, kind, exchange)
    snapshot: dict[Path, bytes] = {}

    def intrude(o: Path) -> None:  # then note everything outside the stage, as the intruder left it
        intruder(o)
        snapshot.update({p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and stage not in p.parents})

    message = swap(stage, entries, out, monkeypatch, intrude)
    assert message.startswith(f"output `{out}`: changed while fusec was writing") and fragment in message, message
    if kind == "new" or not exchange:  # ours was never moved: still staged (the caller removes the staging folder)
        assert json.loads((stage / "fusec.json").read_text()) == {"new": True}
    else:  # swapped back, and ours (only what fusec listed) removed
        assert not stage.exists()
    assert snapshot and {p: p.read_bytes() for p in snapshot} == snapshot  # all still there, unchanged
    leftovers = [p.name for p in tmp_path.iterdir() if ".fusec-" in p.name]
    assert leftovers == []


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
@pytest.mark.parametrize("kind", ["new", "empty", "owned"])
def test_unraced_swap_replaces_exactly_the_old_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, exchange: bool
) -> None:
    out, stage, entries = swap_setup(tmp_path, monkeypatch, kind, exchange)
    assert swap(stage, entries, out, monkeypatch, lambda o: None) == ""
    assert sorted(p.name for p in out.iterdir()) == ["fusec.json", "fusec.owner.json"]
    assert not stage.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["container", "out"]
    from fusec.keras.save import inspect_destination

    assert inspect_destination(out, deep=True).kind == "owned"


def test_a_file_appearing_while_the_old_output_is_removed_is_kept_beside_it(tmp_path: Path) -> None:
    import fusec.keras.save

    out = fake_output(tmp_path / "out")
    entries, _ = fusec.keras.save.verify_owned(out)
    (out / "saved_model" / "late.txt").write_text("written during the removal\n")
    assert not fusec.keras.save.swap.remove_listed(out, entries)
    aside = fusec.keras.save.swap.keep_aside(out, tmp_path / "out")
    assert aside.name.startswith("out.fusec-kept-") and aside.parent == tmp_path
    assert (aside / "saved_model" / "late.txt").read_text() == "written during the removal\n"
    assert sorted(p.relative_to(aside).as_posix() for p in aside.rglob("*")) == ["saved_model", "saved_model/late.txt"]


# --- determinism --------------------------------------------------------------------


def test_same_spec_same_weights_and_signature(tmp_path: Path, private_tmp: Path, keras: Any) -> None:
    """Two compiles of one spec: identical initial weights, manifest and signature."""
    import numpy as np

    src = write(tmp_path, SECOND, "second.json")
    outs = [tmp_path / "one", tmp_path / "two"]
    for out in outs:
        compile_in_process(src, out)
    manifests = [json.loads((out / "fusec.json").read_text()) for out in outs]
    assert manifests[0] == manifests[1]
    assert manifests[0]["signature"]["inputs"] == {"img": {"shape": [None, 16, 16, 3], "dtype": "float32"}}
    weights = [keras.models.load_model(out / "second.keras", compile=False).get_weights() for out in outs]
    assert len(weights[0]) == len(weights[1]) > 0
    for a, b in zip(*weights, strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert (outs[0] / "spec.json").read_bytes() == (outs[1] / "spec.json").read_bytes()


def test_render_twice_gives_identical_bytes(tmp_path: Path) -> None:
    from conftest import SPECS

    for path in sorted(SPECS.glob("*.json")):
        runs = [CliRunner().invoke(cli, ["render", str(path), "--format", "dot", "-o", "-"]) for _ in range(2)]
        assert all(r.exit_code == 0 for r in runs), runs[0].output
        assert runs[0].stdout_bytes == runs[1].stdout_bytes and runs[0].stdout_bytes.startswith(b"digraph")
