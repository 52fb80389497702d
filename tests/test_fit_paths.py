"""``fusec fit``'s output paths: what it refuses, before any training, and what it never deletes.

Each numbered case of the review (``-o``, ``--backup-dir``, ``--tensorboard``,
``--serving-dir``, odd ``--data`` and number options) is a test here. The
refusals come before TensorFlow is imported, so those tests are fast; the
few that train are marked ``slow``.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from helpers import spec, write


def _cli(*args: Any) -> Any:
    from fusec.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def _sums(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` (links as their target's text), with a checksum of each file."""
    found = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        if p.is_symlink():
            found[rel] = "-> " + os.readlink(p)
        elif p.is_file():
            found[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            found[rel] = "dir" if p.is_dir() else "other"
    return found


@pytest.fixture
def proj(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny spec (``spec.json``) and data (``d.npz``) in the current folder, ``tmp_path``."""
    monkeypatch.chdir(tmp_path)
    write(tmp_path, spec())
    x = np.random.default_rng(0).normal(size=(16, 8)).astype("float32")
    np.savez(tmp_path / "d.npz", x=x, y=x[:, :1])
    return tmp_path


def _fit(*extra: Any, out: str = "out") -> Any:
    return _cli("fit", "spec.json", "--data", "d.npz", "--epochs", "1", "-o", out, *extra)


def _user_folder(path: Path) -> Path:
    (path / "sub").mkdir(parents=True)
    (path / "notes.txt").write_text("precious\n")
    (path / "sub" / "a.txt").write_text("more\n")
    return path


# 1, 2, 3, 5: folders fusec did not make are never used, emptied or removed ---------------------------


@pytest.mark.parametrize("restart", [False, True])
def test_1_backup_dir_naming_a_user_folder_is_refused(proj: Path, restart: bool) -> None:
    before = _sums(proj)
    _user_folder(proj / "userbk")
    kept = _sums(proj / "userbk")
    result = _fit("--backup-dir", "userbk", *(["--restart"] if restart else []))
    assert result.exit_code == 1, result.output
    assert "backup folder `userbk`" in result.output and "fusec did not make" in result.output
    assert "remove it yourself, or choose another --backup-dir" in result.output
    assert _sums(proj / "userbk") == kept
    assert {k: v for k, v in _sums(proj).items() if not k.startswith("userbk")} == before


def test_2_a_user_folder_at_the_default_backup_path_is_refused(proj: Path) -> None:
    _user_folder(proj / "out.fit-backup")
    kept = _sums(proj)
    result = _fit()
    assert result.exit_code == 1, result.output
    assert "backup folder" in result.output and "out.fit-backup" in result.output
    assert _sums(proj) == kept


def test_3_backup_dir_holding_the_spec_and_the_data_is_refused(proj: Path) -> None:
    (proj / "p").mkdir()
    for name in ("spec.json", "d.npz"):
        os.replace(proj / name, proj / "p" / name)
    kept = _sums(proj)
    result = _cli("fit", "p/spec.json", "--data", "p/d.npz", "-o", "out", "--backup-dir", "p")
    assert result.exit_code == 1, result.output
    assert "--backup-dir `p` holds `" in result.output
    assert _sums(proj) == kept


def test_3_backup_dir_holding_the_validation_data_is_refused(proj: Path) -> None:
    (proj / "v").mkdir()
    os.link(proj / "d.npz", proj / "v" / "val.npz")
    kept = _sums(proj)
    result = _fit("--validation", "v/val.npz", "--backup-dir", "v")
    assert result.exit_code == 1 and "holds `v/val.npz`, a file this fit reads" in result.output, result.output
    assert _sums(proj) == kept


def test_5_backup_dir_naming_a_link_is_refused(proj: Path) -> None:
    _user_folder(proj / "target")
    (proj / "linkbk").symlink_to("target")
    kept = _sums(proj)
    result = _fit("--backup-dir", "linkbk")
    assert result.exit_code == 1, result.output
    assert "is a symbolic link" in result.output and "does not follow links" in result.output
    assert _sums(proj) == kept


def test_a_forged_token_is_refused(proj: Path) -> None:
    from fusec.keras.save import user_key
    from fusec.train.backup import TOKEN

    user_key(create=True)
    _user_folder(proj / "bk")
    (proj / "bk" / TOKEN).write_text(json.dumps({"token": "0" * 32, "made": True, "mac": "0" * 64}))
    kept = _sums(proj)
    result = _fit("--backup-dir", "bk", "--restart")
    assert result.exit_code == 1 and "not signed with your fusec key" in result.output, result.output
    assert _sums(proj) == kept


def test_a_backup_made_with_another_key_is_used_when_it_holds_only_fusec_entries(proj: Path) -> None:
    """A restarted pod has a fresh key: its backup is still resumed, but never removed as a folder."""
    from fusec.keras.save import user_key
    from fusec.keras.save.owner import sign
    from fusec.train.backup import RUN_FILE, TOKEN, BackupError, verify_token

    user_key(create=True)
    bk = proj / "bk"
    (bk / "chief").mkdir(parents=True)
    (bk / RUN_FILE).write_text("{}")
    other = {"backup": "1" * 32, "made": True, "version": 1}
    (bk / TOKEN).write_text(json.dumps({"token": "1" * 32, "made": True, "mac": sign(b"another key" * 3, other)}))
    assert verify_token(bk)["made"] is False  # used, and the folder itself is never removed
    (bk / "notes.txt").write_text("precious\n")
    with pytest.raises(BackupError, match="which fusec does not write"):
        verify_token(bk)


# 4: the run's own folders never overlap ------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("-o", "bk/model", "--backup-dir", "bk"), "-o `bk/model` is inside the backup folder `bk`"),
        (
            ("-o", "m", "--backup-dir", "bk", "--serving-dir", "bk/serving"),
            "--serving-dir `bk/serving` is inside the backup folder `bk`",
        ),
        (
            ("-o", "m", "--backup-dir", "tb", "--tensorboard", "tb"),
            "--backup-dir `tb` and --tensorboard `tb` are the same",
        ),
        (("-o", "m", "--backup-dir", "m/bk"), "--backup-dir `m/bk` is inside the output folder `m`"),
        (
            ("-o", "m", "--serving-dir", "s", "--tensorboard", "s/tb"),
            "--tensorboard `s/tb` is inside the serving folder",
        ),
        (("-o", "m", "--tensorboard", "m.fit-backup"), "are the same folder"),
    ],
)
def test_4_output_folders_that_overlap_are_refused(proj: Path, args: tuple[str, ...], said: str) -> None:
    kept = _sums(proj)
    result = _cli("fit", "spec.json", "--data", "d.npz", *args)
    assert result.exit_code == 1, result.output
    assert said in result.output
    assert _sums(proj) == kept


# 6, 7, 8: output paths that are not folders -----------------------------------------------------


def _odd(proj: Path, kind: str) -> str:
    """A path to something that is not a folder: a regular file, /dev/null, a FIFO, a dangling link."""
    if kind == "file":
        return "d.npz"
    if kind == "fifo":
        os.mkfifo(proj / "fifo")
        return "fifo"
    if kind == "dangling":
        (proj / "dang").symlink_to("nowhere/x")
        return "dang"
    return "/dev/null"


_KINDS = {"file": "a regular file", "devnull": "a character device", "fifo": "a FIFO", "dangling": "symbolic link"}


@pytest.mark.parametrize("kind", list(_KINDS))
@pytest.mark.parametrize("option", ["--serving-dir", "--tensorboard"])
def test_6_8_serving_and_tensorboard_paths_are_checked_before_training(proj: Path, option: str, kind: str) -> None:
    import sys

    path = _odd(proj, kind)
    kept = _sums(proj)
    loaded = "tensorflow" in sys.modules  # another test in this worker may have imported it already
    result = _fit(option, path)
    assert result.exit_code == 1, result.output
    assert f"{option} `{path}`" in result.output and _KINDS[kind] in result.output
    assert _sums(proj) == kept
    assert loaded or "tensorflow" not in sys.modules  # refused before TensorFlow is imported


@pytest.mark.parametrize("restart", [False, True])
@pytest.mark.parametrize("kind", list(_KINDS))
def test_7_backup_dir_that_is_not_a_folder_is_refused(proj: Path, kind: str, restart: bool) -> None:
    path = _odd(proj, kind)
    kept = _sums(proj)
    result = _fit("--backup-dir", path, *(["--restart"] if restart else []))
    assert result.exit_code == 1, result.output
    if kind == "file":  # the data file itself
        assert "--backup-dir `d.npz` is a file this fit reads" in result.output
    else:
        assert f"backup folder `{path}`" in result.output and _KINDS[kind] in result.output
    assert _sums(proj) == kept


def test_7_backup_dir_naming_a_plain_file_is_refused(proj: Path) -> None:
    (proj / "notes.txt").write_text("precious\n")
    kept = _sums(proj)
    result = _fit("--backup-dir", "notes.txt", "--restart")
    assert result.exit_code == 1 and "backup folder `notes.txt` is a regular file, not a folder" in result.output
    assert _sums(proj) == kept


def test_7_backup_dir_under_a_file_is_refused(proj: Path) -> None:
    result = _fit("--backup-dir", "d.npz/bk")
    assert result.exit_code == 1 and "which is not a folder" in result.output, result.output


def test_output_paths_too_long_are_refused(proj: Path) -> None:
    long = "b" * 300
    for option in ("--backup-dir", "--tensorboard", "--serving-dir"):
        result = _fit(option, long)
        assert result.exit_code == 1, (option, result.output)
        assert "too long" in result.output, result.output


# 9-13: odd --data and number options ---------------------------------------------------------------


def test_9_a_data_name_too_long_is_bad_input(proj: Path) -> None:
    result = _cli("fit", "spec.json", "--data", "d" * 300 + ".csv", "-o", "out")
    assert result.exit_code == 1, result.output
    assert "File name too long" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ("--validation-split", "nan"),
        ("--validation-split", "inf"),
        ("--batch-size", "99999999999999999999"),
        ("--epochs", "99999999999999999999"),
        ("--epochs", str(2**31)),
        ("--early-stopping", str(2**31)),
        ("--backup-every", str(2**31)),
        ("--data", ""),
        ("--validation", ""),
    ],
)
def test_10_11_13_bad_option_values_are_usage_errors(proj: Path, args: tuple[str, str]) -> None:
    base = ["fit", "spec.json", "-o", "out"] + ([] if args[0] == "--data" else ["--data", "d.npz"])
    result = _cli(*base, *args)
    assert result.exit_code == 2, result.output
    assert args[0] in result.output
    assert not (proj / "out").exists()


def test_13_the_python_face_refuses_what_the_command_line_does(proj: Path) -> None:
    from fusec.data.findings import DataError
    from fusec.data.paths import resolve
    from fusec.train.fit import FitError, fit_spec

    with pytest.raises(DataError, match="empty path"):
        resolve("")
    for bad in ({"validation_split": float("nan")}, {"batch_size": 2**31}, {"epochs": 0}, {"epochs": True}):
        with pytest.raises(FitError):
            fit_spec("spec.json", "d.npz", output="out", **bad)
    assert not (proj / "out").exists()


def test_12_a_symlink_loop_as_data_says_so(proj: Path) -> None:
    (proj / "l1.csv").symlink_to("l2.csv")
    (proj / "l2.csv").symlink_to("l1.csv")
    (proj / "gone.csv").symlink_to("missing.csv")
    result = _cli("fit", "spec.json", "--data", "l1.csv", "-o", "out")
    assert result.exit_code == 1, result.output
    assert "symbolic link that never resolves: it loops" in result.output and "did you mean" not in result.output
    result = _cli("fit", "spec.json", "--data", "gone.csv", "-o", "out")
    assert result.exit_code == 1 and "link to `missing.csv`, which does not exist" in result.output, result.output


# Training: fusec's own backups are used and removed; an empty folder is used and kept ------------


def _fake_backup(folder: Path, run: dict[str, Any]) -> None:
    """A backup folder as fusec makes it (signed token), holding the record of another run."""
    from fusec.train.backup import Backup
    from fusec.train.cluster import cluster_from_env

    backup = Backup(folder, cluster_from_env(), run)
    backup.inspect()
    backup.start()


def test_a_fusec_backup_holding_a_link_is_refused(proj: Path) -> None:
    _fake_backup(proj / "bk", {"spec_sha256": "0" * 64})
    _user_folder(proj / "target")
    (proj / "bk" / "chief").symlink_to(proj / "target")
    kept = _sums(proj)
    result = _fit("--backup-dir", "bk", "--restart")
    assert result.exit_code == 1 and "holds `chief`, which is not a regular file or folder" in result.output
    assert _sums(proj) == kept


@pytest.mark.slow
def test_a_backup_of_another_run_is_refused_then_restarted(proj: Path) -> None:
    _fake_backup(proj / "out.fit-backup", {"spec_sha256": "0" * 64, "batch_size": 32})
    result = _fit()
    assert result.exit_code == 1 and "different run" in result.output and "--restart" in result.output
    (proj / "out.fit-backup" / "mine.txt").write_text("kept\n")  # not the backup's: stays, and so the folder
    result = _fit("--restart")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (proj / "out.fit-backup").iterdir()) == ["mine.txt"]
    assert (proj / "out" / "history.json").is_file()


@pytest.mark.slow
def test_an_empty_backup_folder_is_used_and_left_empty(proj: Path) -> None:
    (proj / "bk").mkdir()
    result = _fit("--backup-dir", "bk", "--tensorboard", "tb", "--serving-dir", "serving")
    assert result.exit_code == 0, result.output
    assert list((proj / "bk").iterdir()) == []
    assert (proj / "out" / "history.json").is_file() and (proj / "serving" / "tiny" / "1").is_dir()
    assert any((proj / "tb" / "train").iterdir())


@pytest.mark.slow
def test_14_resuming_prints_no_tensorflow_warning(proj: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fusec.train.fit as fit

    def killed(*args: Any) -> None:
        raise KeyboardInterrupt  # as if the run died once its epochs were backed up

    with monkeypatch.context() as patch:
        patch.setattr(fit, "_write_outputs", killed)
        with pytest.raises(KeyboardInterrupt):
            fit.fit_spec("spec.json", "d.npz", output="out", epochs=2, batch_size=8, stream=io.StringIO())
    assert (proj / "out.fit-backup" / "chief" / "checkpoint").is_file()
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("tensorflow").addHandler(handler)
    try:
        fitted = fit.fit_spec("spec.json", "d.npz", output="out", epochs=2, batch_size=8, stream=io.StringIO())
        import gc

        gc.collect()  # TensorFlow warns about an unmatched checkpoint value when the restore status is freed
    finally:
        logging.getLogger("tensorflow").removeHandler(handler)
    assert fitted.resumed_from == (2, 0)
    assert not [m for m in seen if "could not be found" in m or "unrestored" in m], seen
    assert not (proj / "out.fit-backup").exists()
