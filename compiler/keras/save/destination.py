"""The destination: what is at the output path now, and whether fusec may write or replace it."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ... import files
from ...errors import printable
from .owner import Entry, NotOwned, verify_owned


@dataclass(frozen=True)
class Destination:
    """What is at the output path now: nothing, an empty folder, or fusec's own output."""

    path: Path
    kind: str  # "new", "empty" or "owned"
    root: Entry | None = None
    entries: dict[str, Entry] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)  # signed SHA-256 per file of an owned output


def inspect_destination(out: Path, inputs: Iterable[Path] = (), deep: bool = False) -> Destination:
    """Decide whether fusec may write the output folder ``out``; write nothing.

    Args:
        out: the output folder, absolute.
        inputs: the files the compile reads (the spec, its sub-models); the
            output may not hold any of them.
        deep: verify an earlier output's files by content (else by size).

    Raises:
        OutputError: the path is a file, a link or a device, is a non-empty
            folder fusec did not write (or that changed since), holds one of
            ``inputs``, or its folder (or the nearest existing ancestor, when
            the folder is still to be made) is not a writable folder.
    """
    try:
        try:
            st: os.stat_result | None = os.lstat(out)
        except (FileNotFoundError, NotADirectoryError):  # under a file: reported by the ancestor check
            st = None
        dest = Destination(out, "new") if st is None else _existing(out, st, inputs, deep)
        _check_parent(out)
        return dest
    except OSError as exc:
        raise files.output_error(
            out, f"cannot be inspected: {exc.strerror or exc}", "choose another path with -o"
        ) from None


def _existing(out: Path, st: os.stat_result, inputs: Iterable[Path], deep: bool) -> Destination:
    """Something is at ``out``: it must be an empty folder, or fusec's own output holding none of ``inputs``."""
    if not stat.S_ISDIR(st.st_mode):
        raise files.output_error(
            out, f"exists and is not a folder (it is {files.describe(st)})", "choose a folder path with -o"
        )
    resolved = out.resolve()
    for f in inputs:
        if files.inside(f.resolve(), resolved):
            raise files.output_error(
                out,
                f"holds `{printable(str(f))}`, which this compile reads",
                "compile from a copy outside the output folder, or choose another -o",
            )
    with os.scandir(out) as it:
        empty = next(it, None) is None
    try:
        entries, digests = ({}, {}) if empty else verify_owned(out, deep)
    except NotOwned as exc:
        raise files.output_error(out, exc.message, exc.hint) from None
    return Destination(out, "empty" if empty else "owned", Entry.of(st), entries, digests)


def _check_parent(out: Path) -> None:
    """The output's folder (or its nearest existing ancestor) must be a writable folder."""
    ancestor = files.existing_ancestor(out.parent)
    if not ancestor.is_dir():
        raise files.output_error(out, f"`{ancestor}` is not a folder", "choose a folder path with -o")
    if not files.writable(ancestor):
        raise files.output_error(out, f"the folder `{ancestor}` is not writable", "choose a writable location with -o")


def check_destination(out: Path, inputs: Iterable[Path] = ()) -> None:
    """Refuse an output folder fusec must not write or replace; write nothing (the quick check before a build).

    Raises:
        OutputError: see ``inspect_destination``.
    """
    inspect_destination(out, inputs, deep=False)


def make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing ancestors; return those created, innermost first.

    Raises:
        OutputError: a folder cannot be created (those made so far are removed).
    """
    missing = []
    while not (folder.exists() or folder.is_symlink()):
        missing.append(folder)
        folder = folder.parent
    for made in reversed(missing):
        try:
            made.mkdir()
        except FileExistsError:
            pass
        except OSError as exc:
            remove_empty(missing)
            raise files.output_error(
                made, f"cannot create the folder: {exc.strerror or exc}", "choose another path with -o"
            ) from None
    return missing


def remove_empty(folders: list[Path]) -> None:
    """Remove each of ``folders`` that is (still) empty, in the order given."""
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()
