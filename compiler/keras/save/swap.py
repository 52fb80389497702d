"""Staging and the race-safe swap: a new output is written aside, then put in place in one rename.

Everything is written into a staging folder on the output's filesystem, then
swapped into place in one ``renameat2`` call. A compile that fails, or is
killed, never leaves a half-written output and never damages the previous
one; stale staging folders of killed runs are removed by the next run. The
swap is checked too: a new output is renamed with ``RENAME_NOREPLACE`` (so a
path another process created meanwhile is never taken), and after
``RENAME_EXCHANGE`` the folder swapped out must be exactly the one verified
(same inodes, sizes and change times) before its listed entries are removed
one by one; otherwise it is swapped back and nothing is replaced.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from ... import files
from ...errors import OutputError, printable
from .destination import Destination
from .owner import OPEN_FLAGS, Entry, file_digest, same_mac, sign, walk

STAGE_PREFIX = ".fusec-stage-"
STAGE_MARK = "fusec-stage.mac"
_AGAIN = "nothing was replaced; compile again"

#: test hook: called with (staging folder, output) between the last check of the output and the swap
before_swap: Callable[[Path, Path], None] | None = None

# --- staging -------------------------------------------------------------------------------


def stage_root(out: Path) -> Path:
    """The system temp folder when on the output's filesystem, else the output's parent."""
    tmp = Path(tempfile.gettempdir())
    try:
        if tmp.stat().st_dev == out.parent.stat().st_dev:
            return tmp
    except OSError:
        pass
    return out.parent


def mark(container: Path, key: bytes) -> str:
    """The signed mark a staging folder of this user carries (what `clean_stale` trusts)."""
    return sign(key, {"stage": container.name})


def clean_stale(root: Path, key: bytes | None) -> None:
    """Remove staging folders of killed compiles: ours only (same user, signed mark), their process gone."""
    if key is None:
        return
    uid = os.geteuid() if hasattr(os, "geteuid") else None
    for stage in root.glob(f"{STAGE_PREFIX}*"):
        pid = stage.name.removeprefix(STAGE_PREFIX).split("-", 1)[0]
        try:
            st = stage.lstat()
        except OSError:
            continue
        mine = uid is None or st.st_uid == uid
        if not (mine and stat.S_ISDIR(st.st_mode) and pid.isdigit() and not _alive(int(pid))):
            continue
        try:
            with os.fdopen(os.open(stage / STAGE_MARK, OPEN_FLAGS), "rb") as fh:
                found = fh.read(200).decode("ascii", "replace").strip()
        except OSError:
            continue
        if same_mac(found, mark(stage, key)):
            shutil.rmtree(stage, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def make_stage(root: Path, key: bytes | None) -> tuple[Path, Path]:
    """A private container under ``root`` (marked as ours when there is a key) and the empty folder to stage in.

    Returns:
        (the container, to remove when done; the staging folder inside it).
    """
    container = Path(tempfile.mkdtemp(prefix=f"{STAGE_PREFIX}{os.getpid()}-", dir=root))
    try:
        if key is not None:
            (container / STAGE_MARK).write_text(mark(container, key) + "\n", encoding="ascii")
        stage = container / "new"
        stage.mkdir()
    except BaseException:
        shutil.rmtree(container, ignore_errors=True)
        raise
    return container, stage


# --- swapping -------------------------------------------------------------------------------


def _unchanged(path: Path, dest: Destination) -> str | None:
    """None when ``path`` is exactly the folder checked before; else what differs.

    The same folder (inode), the same entries (inodes, sizes, times) and,
    for an earlier output, each file's content still the one signed: read
    here, after the swap moved it into fusec's private staging folder.
    """
    try:
        st = os.lstat(path)
    except OSError:
        return "it vanished"
    if dest.root is None or not Entry.of(st).same(dest.root):
        return "another folder or file took its place"
    seen = 0
    for rel, entry in walk(path, len(dest.entries) + 1):
        seen += 1
        before = dest.entries.get(rel)
        if before is None:
            return f"`{printable(rel)}` appeared in it"
        digest = dest.digests.get(rel)
        if not entry.same(before) or (digest is not None and file_digest(path / rel, entry) != digest):
            return f"`{printable(rel)}` changed"
    if seen != len(dest.entries):
        return "an entry was removed from it"
    return None


def remove_listed(path: Path, entries: dict[str, Entry]) -> bool:
    """Remove the entries of ``path`` seen before, deepest first, then ``path``; True when all went.

    Anything else (a file another process wrote meanwhile) stays, and so do
    the folders holding it.
    """
    for rel, entry in sorted(entries.items(), key=lambda item: (-item[0].count("/"), item[0])):
        p = path / rel
        with contextlib.suppress(OSError):
            if entry.kind == "d":
                p.rmdir()
            elif Entry.of(os.lstat(p)).same(entry):
                p.unlink()
    try:
        path.rmdir()
    except OSError:
        return False
    return True


def keep_aside(leftover: Path, out: Path) -> Path:
    """Move what could not be removed beside the output (never left in a temp folder); return where it is."""
    for k in range(100):
        aside = out.with_name(f"{out.name}.fusec-kept-{os.getpid()}" + (f"-{k}" if k else ""))
        try:
            if files.renameat2(leftover, aside, files.RENAME_NOREPLACE):
                return aside
            if not os.path.lexists(aside):
                os.rename(leftover, aside)
                return aside
        except FileExistsError:
            continue
        except OSError:
            break
    return leftover


def _kept(out: Path, where: Path) -> str:
    return f"output `{out}`: entries that appeared in the previous output while it was removed are kept in `{where}`"


def swap_into_place(stage: Path, dest: Destination, new_entries: dict[str, Entry]) -> tuple[str, ...]:
    """Put the staged folder at ``dest.path``; return notes for the user.

    Raises:
        OutputError: the destination changed since it was checked (nothing was replaced).
        OSError: the file system refused.
    """
    if before_swap is not None:
        before_swap(stage, dest.path)
    if dest.kind == "new":
        return _place_new(stage, dest.path)
    try:
        exchanged = files.exchange(stage, dest.path)
    except FileNotFoundError:
        raise _changed(dest.path, "it vanished") from None
    if exchanged:
        return _after_exchange(stage, dest, new_entries)
    return _replace_by_rename(stage, dest)


def _changed(out: Path, why: str) -> OutputError:
    """The refusal when the destination changed after it was checked."""
    return files.output_error(out, f"changed while fusec was writing: {why}", _AGAIN)


def _place_new(stage: Path, out: Path) -> tuple[str, ...]:
    """Rename the stage to a path that was free when checked, never taking one created meanwhile."""
    try:
        if files.renameat2(stage, out, files.RENAME_NOREPLACE):
            return ()
    except FileExistsError:
        raise _changed(out, "something was created there") from None
    if os.path.lexists(out):  # no renameat2 here: check, then rename (a narrow race)
        raise _changed(out, "something was created there")
    os.rename(stage, out)
    return ()


def _after_exchange(stage: Path, dest: Destination, new_entries: dict[str, Entry]) -> tuple[str, ...]:
    """The stage now holds what was at the output: remove it if it is what was verified, else swap back."""
    out = dest.path
    why = _unchanged(stage, dest)
    if why is not None:
        files.exchange(stage, out)  # put it back as it is now; ours returns to the stage
        if not remove_listed(stage, new_entries):  # something was written into ours meanwhile: keep it
            why += f"; what was written into the new output meanwhile is kept in `{keep_aside(stage, out)}`"
        raise _changed(out, why)
    if not remove_listed(stage, dest.entries):
        return (_kept(out, keep_aside(stage, out)),)
    return ()


def _replace_by_rename(stage: Path, dest: Destination) -> tuple[str, ...]:
    """No RENAME_EXCHANGE here: move the old output beside the destination (never into a temp folder), then swap."""
    out = dest.path
    backup = out.with_name(f".{out.name}.fusec-old-{os.getpid()}")
    os.rename(out, backup)
    why = _unchanged(backup, dest)
    if why is not None:
        os.rename(backup, out)
        raise _changed(out, why)
    try:
        os.rename(stage, out)
    except OSError:
        os.rename(backup, out)
        raise
    if not remove_listed(backup, dest.entries):
        return (_kept(out, backup),)
    return ()
