"""Save stage: write the compiled artifacts atomically, and replace only fusec's own outputs.

Everything is written into a staging folder on the output's filesystem, then
swapped into place in one ``renameat2`` call. A compile that fails, or is
killed, never leaves a half-written output and never damages the previous
one; stale staging folders of killed runs are removed by the next run.

Ownership cannot be believed from a file anyone could write. Each output
holds ``fusec.owner.json``: a random token and the listing of every entry
fusec wrote (relative path, and for files the size and SHA-256), signed with
an HMAC under a per-user key kept outside every output
(``$FUSEC_STATE_DIR/key``, else ``$XDG_STATE_HOME/fusec/key``, else
``~/.local/state/fusec/key``; mode 0600). An existing folder is replaced
only when that signature verifies and the folder holds nothing but listed
entries, unchanged. The swap is checked too: a new output is renamed with
``RENAME_NOREPLACE`` (so a path another process created meanwhile is never
taken), and after ``RENAME_EXCHANGE`` the folder swapped out must be exactly
the one verified (same inodes, sizes and change times) before its listed
entries are removed one by one; otherwise it is swapped back and nothing is
replaced.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import hashlib
import hmac
import json
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import OutputError, printable
from ..static.check import Checked

FORMATS = ("all", "savedmodel", "keras")
MANIFEST = "fusec.json"
OWNER = "fusec.owner.json"
STATE_ENV = "FUSEC_STATE_DIR"
_STAGE_PREFIX = ".fusec-stage-"
_STAGE_MARK = "fusec-stage.mac"
_OWNER_VERSION = 1
MAX_OWNER_BYTES = 4 << 20  # an ownership record is read only up to this size
MAX_ENTRIES = 100_000  # entries in one output (a SavedModel has a few dozen)
_KEY_BYTES = 32
_CHUNK = 1 << 20
#: what a file system allows in one name, when it cannot be asked
NAME_MAX = 255
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)

#: test hook: called with (staging folder, output) between the last check of the output and the swap
before_swap: Callable[[Path, Path], None] | None = None


@dataclass(frozen=True)
class Artifacts:
    """Where a compile put things, and anything the user should know about it."""

    root: Path
    saved_model: Path | None
    keras: Path | None
    spec: Path
    notes: tuple[str, ...] = ()


def _error(out: Path, message: str, hint: str) -> OutputError:
    return OutputError.single((), f"output `{out}`: {message}", hint, "output")


_ONLY_OWN = "choose a new or empty folder with -o; fusec replaces only its own outputs, unchanged"
_AGAIN = "nothing was replaced; compile again"


# --- the per-user key --------------------------------------------------------------


def state_dir() -> Path:
    """Where fusec keeps its per-user key: $FUSEC_STATE_DIR, $XDG_STATE_HOME/fusec or ~/.local/state/fusec."""
    given = os.environ.get(STATE_ENV)
    if given:
        return Path(given)
    xdg = os.environ.get("XDG_STATE_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "fusec"
    return Path.home() / ".local" / "state" / "fusec"


class KeyUnavailable(Exception):
    """No key can be read or made; the message says why."""


def _read_key(path: Path) -> bytes | None:
    """The key at ``path``; None when there is none. Refuses a key others could have read or written."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise KeyUnavailable(f"`{path}` cannot be read: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        uid = os.geteuid() if hasattr(os, "geteuid") else st.st_uid
        if not stat.S_ISREG(st.st_mode) or st.st_uid != uid or st.st_mode & 0o077 or st.st_size != _KEY_BYTES:
            raise KeyUnavailable(
                f"`{path}` is not a private {_KEY_BYTES}-byte file of yours ({stat.filemode(st.st_mode)}); "
                "remove it and fusec makes a new one (outputs signed with the old one must then be removed by hand)"
            )
        data = os.read(fd, _KEY_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) != _KEY_BYTES:
        raise KeyUnavailable(f"`{path}` changed while it was read")
    return data


def user_key(create: bool) -> bytes | None:
    """The per-user secret that signs ownership records.

    Args:
        create: make the key (and its folder, mode 0700) when there is none.

    Returns:
        The key, or None when there is none and ``create`` is false.

    Raises:
        KeyUnavailable: the key exists but is not private, or cannot be made.
    """
    try:
        folder = state_dir()
    except RuntimeError as exc:  # no home folder
        raise KeyUnavailable(f"has no folder ({exc}); set {STATE_ENV}") from None
    path = folder / "key"
    found = _read_key(path)
    if found is not None or not create:
        return found
    tmp = None
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".key-", dir=folder)  # mode 0600
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(_KEY_BYTES))
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):  # another fusec made one first: use theirs
            os.link(tmp, path)
    except OSError as exc:
        raise KeyUnavailable(f"`{path}` cannot be made: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    key = _read_key(path)
    if key is None:
        raise KeyUnavailable(f"`{path}` vanished after it was made")
    return key


def _mac(key: bytes, payload: Any) -> str:
    data = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def _same_mac(given: Any, want: str) -> bool:
    return isinstance(given, str) and hmac.compare_digest(given.encode("utf-8", "replace"), want.encode("ascii"))


# --- listing a folder ------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One entry under an output folder, as found on disk."""

    kind: str  # "d" folder, "f" regular file, "x" anything else (link, FIFO, device, socket)
    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> Entry:
        kind = "d" if stat.S_ISDIR(st.st_mode) else "f" if stat.S_ISREG(st.st_mode) else "x"
        return cls(kind, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def same(self, other: Entry) -> bool:
        """The same inode, unchanged (a write changes the change time, which nobody can set back)."""
        if self.kind != other.kind or (self.dev, self.ino) != (other.dev, other.ino):
            return False
        if self.kind != "f":
            return True
        return (self.size, self.mtime_ns, self.ctime_ns) == (other.size, other.mtime_ns, other.ctime_ns)


def _rel(parts: Sequence[str]) -> str:
    return "/".join(parts)


def walk(root: Path, limit: int) -> Iterator[tuple[str, Entry]]:
    """Every entry under ``root`` (not following links), sorted by path, at most ``limit`` of them.

    Folders come before their contents. Iterative, so a folder nested
    thousands deep cannot exhaust the stack; callers stop reading at the
    first entry they do not expect.
    """
    stack: list[tuple[str, ...]] = [()]
    count = 0
    while stack:
        parts = stack.pop()
        with os.scandir(root.joinpath(*parts)) as it:
            names = sorted(e.name for e in it)
        children = []
        for name in names:
            count += 1
            if count > limit:
                return
            sub = (*parts, name)
            entry = Entry.of(os.lstat(root.joinpath(*sub)))
            yield _rel(sub), entry
            if entry.kind == "d":
                children.append(sub)
        stack.extend(reversed(children))


def _digest(path: Path, expect: Entry) -> str | None:
    """SHA-256 of a regular file, read without following links or blocking; None if it is not ``expect``."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        if not Entry.of(os.fstat(fh.fileno())).same(expect):
            return None
        h = hashlib.sha256()
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _listing(root: Path) -> tuple[list[list[Any]], dict[str, Entry]]:
    """What a freshly staged folder holds: the listing to sign, and the entries as found."""
    listed: list[list[Any]] = []
    found: dict[str, Entry] = {}
    for rel, entry in walk(root, MAX_ENTRIES):
        found[rel] = entry
        if entry.kind == "d":
            listed.append([rel, "d"])
        elif entry.kind == "f":
            digest = _digest(root / rel, entry)
            if digest is None:
                raise OSError(errno.EIO, f"`{rel}` changed while it was listed")
            listed.append([rel, "f", entry.size, digest])
        else:
            raise OSError(errno.EINVAL, f"`{rel}` is not a regular file or folder")
    return listed, found


def _write_owner(stage: Path, key: bytes | None) -> dict[str, Entry]:
    """Sign and write the ownership record of ``stage``; return every entry it then holds."""
    listed, found = _listing(stage)
    payload = {"version": _OWNER_VERSION, "token": secrets.token_hex(16), "entries": listed}
    mac = _mac(key, payload) if key is not None else None
    head = {k: v for k, v in payload.items() if k != "entries"} | {"mac": mac}
    lines = [f" {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()]
    rows = ",\n".join(f"  {json.dumps(e)}" for e in listed)
    (stage / OWNER).write_text("{\n" + "\n".join(lines) + f'\n "entries": [\n{rows}\n ]\n}}\n', encoding="utf-8")
    found[OWNER] = Entry.of(os.lstat(stage / OWNER))
    return found


# --- reading and verifying an ownership record ------------------------------------------

_NOT_OURS = "is a non-empty folder that fusec did not write"


class NotOwned(Exception):
    """The folder is not (or no longer) exactly what fusec wrote; the message says why."""

    def __init__(self, message: str, hint: str = _ONLY_OWN) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def _read_record(out: Path) -> dict[str, Any]:
    """The ownership record's JSON, read with a size bound, without following links or blocking."""
    try:
        fd = os.open(out / OWNER, _OPEN_FLAGS)
    except FileNotFoundError:
        raise NotOwned(f"{_NOT_OURS} (it has no `{OWNER}`)") from None
    except OSError as exc:
        raise NotOwned(f"{_NOT_OURS} (its `{OWNER}` cannot be read: {exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise NotOwned(f"{_NOT_OURS} (its `{OWNER}` is not a regular file)")
        data = fh.read(MAX_OWNER_BYTES + 1)
    if len(data) > MAX_OWNER_BYTES:
        raise NotOwned(f"{_NOT_OURS} (its `{OWNER}` is larger than {MAX_OWNER_BYTES:,} bytes)")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):  # not UTF-8, not JSON, or nested deeper than the parser goes
        raise NotOwned(f"{_NOT_OURS} (its `{OWNER}` is not a fusec ownership record)") from None
    if not isinstance(doc, dict) or set(doc) != {"version", "token", "entries", "mac"}:
        raise NotOwned(f"{_NOT_OURS} (its `{OWNER}` is not a fusec ownership record)")
    return doc


def _safe_rel(rel: Any) -> bool:
    if not isinstance(rel, str) or not rel or "\0" in rel or rel.startswith("/"):
        return False
    return all(part not in ("", ".", "..") for part in rel.split("/"))


def _expected(doc: dict[str, Any]) -> dict[str, tuple[str, int, str]]:
    """The signed listing as {path: (kind, size, sha256)}; NotOwned when malformed."""
    bad = NotOwned(f"{_NOT_OURS} (its `{OWNER}` is malformed)")
    entries = doc["entries"]
    if doc["version"] != _OWNER_VERSION or not isinstance(entries, list) or len(entries) > MAX_ENTRIES:
        raise bad
    out: dict[str, tuple[str, int, str]] = {}
    for item in entries:
        if not isinstance(item, list) or not item or not _safe_rel(item[0]) or item[0] == OWNER:
            raise bad
        if item[1:] == ["d"]:
            out[item[0]] = ("d", 0, "")
        elif len(item) == 4 and item[1] == "f" and type(item[2]) is int and isinstance(item[3], str):
            out[item[0]] = ("f", item[2], item[3])
        else:
            raise bad
    return out


def _key_for_checking() -> bytes:
    try:
        key = user_key(create=False)
    except KeyUnavailable as exc:
        raise NotOwned(f"fusec cannot tell whether it wrote this folder: its key {exc}") from None
    if key is None:
        raise NotOwned(
            f"{_NOT_OURS} (no fusec key in `{state_dir()}` signs it)",
            f"remove the folder yourself if it is an old output, or choose another -o ({STATE_ENV} sets where "
            "the key is kept)",
        )
    return key


def _as_listed(path: Path, entry: Entry, want: tuple[str, int, str], deep: bool) -> bool:
    """Whether an entry is what the listing says: same kind, and for a file the same size (and content)."""
    if want[0] != entry.kind:
        return False
    if entry.kind != "f":
        return True
    return entry.size == want[1] and (not deep or _digest(path, entry) == want[2])


def verify_owned(out: Path, deep: bool = True) -> tuple[dict[str, Entry], dict[str, str]]:
    """Check that ``out`` holds only what fusec wrote there, unchanged; return what it holds.

    Args:
        out: an existing folder (not a link).
        deep: also compare each file's SHA-256 with the signed listing
            (else sizes only: the quick check before a build).

    Returns:
        Every entry under ``out`` (the record included) with its inode and
        times, and the signed SHA-256 of each file: what a swap moves out
        later must match both.

    Raises:
        NotOwned: no valid signed record, or an entry that is not listed,
            is of another kind, or changed. Entries listed but gone are
            allowed: removing the rest loses nothing.
    """
    doc = _read_record(out)
    expected = _expected(doc)
    key = _key_for_checking()
    if not _same_mac(doc["mac"], _mac(key, {k: doc[k] for k in ("version", "token", "entries")})):
        raise NotOwned(f"{_NOT_OURS} (its `{OWNER}` is not signed with your key)")
    found: dict[str, Entry] = {}
    changed = "move it out, or " + _ONLY_OWN
    for rel, entry in walk(out, len(expected) + 2):  # one past what may be there: an extra one is seen
        want = expected.get(rel)
        shown = printable(rel)
        if rel == OWNER:
            if entry.kind != "f":
                raise NotOwned(f"holds `{shown}`, which is not the file fusec wrote", changed)
        elif want is None:
            raise NotOwned(f"holds `{shown}`, which fusec did not write", changed)
        elif not _as_listed(out / rel, entry, want, deep):
            raise NotOwned(f"holds `{shown}`, which changed after fusec wrote it", changed)
        found[rel] = entry
    return found, {rel: want[2] for rel, want in expected.items() if want[0] == "f" and rel in found}


# --- the destination --------------------------------------------------------------------


@dataclass(frozen=True)
class Destination:
    """What is at the output path now: nothing, an empty folder, or fusec's own output."""

    path: Path
    kind: str  # "new", "empty" or "owned"
    root: Entry | None = None
    entries: dict[str, Entry] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)  # signed SHA-256 per file of an owned output


def _writable(folder: Path) -> bool:
    """Whether new entries can be made in ``folder``.

    Root passes every permission check, so for root a folder whose mode
    grants nobody write access counts as read-only too: fusec honours the
    mark rather than writing through it.
    """
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    return not (hasattr(os, "geteuid") and os.geteuid() == 0 and not folder.stat().st_mode & 0o222)


def _existing_ancestor(path: Path) -> Path:
    while not (path.exists() or path.is_symlink()) and path != path.parent:
        path = path.parent
    return path


def name_max(folder: Path) -> int:
    """The longest name, in bytes, the file system of ``folder`` (or its nearest existing ancestor) takes."""
    try:
        return int(os.pathconf(_existing_ancestor(folder), "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return NAME_MAX


def too_long(folder: Path, name: str) -> bool:
    """Whether ``name`` is longer than a file name in ``folder`` may be."""
    return len(os.fsencode(name)) > name_max(folder)


def describe(st: os.stat_result) -> str:
    """``a character device``, ``a FIFO (named pipe)``, ``a folder``... for what ``st`` describes."""
    for test, what in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISREG, "a regular file"),
    ):
        if test(st.st_mode):
            return what
    return "not a regular file"


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


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
        if st is None:
            dest = Destination(out, "new")
        else:
            if not stat.S_ISDIR(st.st_mode):
                raise _error(out, f"exists and is not a folder (it is {describe(st)})", "choose a folder path with -o")
            resolved = out.resolve()
            for f in inputs:
                if _inside(f.resolve(), resolved):
                    raise _error(
                        out,
                        f"holds `{printable(str(f))}`, which this compile reads",
                        "compile from a copy outside the output folder, or choose another -o",
                    )
            with os.scandir(out) as it:
                empty = next(it, None) is None
            try:
                entries, digests = ({}, {}) if empty else verify_owned(out, deep)
            except NotOwned as exc:
                raise _error(out, exc.message, exc.hint) from None
            dest = Destination(out, "empty" if empty else "owned", Entry.of(st), entries, digests)
        ancestor = _existing_ancestor(out.parent)
        if not ancestor.is_dir():
            raise _error(out, f"`{ancestor}` is not a folder", "choose a folder path with -o")
        if not _writable(ancestor):
            raise _error(out, f"the folder `{ancestor}` is not writable", "choose a writable location with -o")
        return dest
    except OSError as exc:
        raise _error(out, f"cannot be inspected: {exc.strerror or exc}", "choose another path with -o") from None


def check_destination(out: Path, inputs: Iterable[Path] = ()) -> None:
    """Refuse an output folder fusec must not write or replace; write nothing (the quick check before a build).

    Raises:
        OutputError: see ``inspect_destination``.
    """
    inspect_destination(out, inputs, deep=False)


def input_files(checked: Checked) -> list[Path]:
    """Every file a check of ``checked`` reads: the spec and its sub-model and weights files, nested ones too."""
    from ..spec.load import load_spec
    from ..static.archive import resolve_path

    files = [checked.spec.path]
    models = checked.models
    files += [p for p in (getattr(models, "cache", None) or {}) if isinstance(p, Path)]
    specs: list[tuple[Path, Any]] = [(checked.spec.path, checked.flat or checked.doc)]
    for path in files[1:]:
        if path.suffix == ".json":
            with contextlib.suppress(Exception):  # it was checked; anything odd now is the build's to report
                specs.append((path, load_spec(path).doc))
    allowed = getattr(models, "allowed", ())
    for path, doc in specs:
        for node in _model_nodes(doc):
            for key in ("model", "weights"):
                raw = node.get(key)
                if isinstance(raw, str):
                    with contextlib.suppress(Exception):
                        files.append(resolve_path(raw, path.parent, allowed, key))
    return list(dict.fromkeys(files))


def _model_nodes(doc: Any) -> Iterator[dict[str, Any]]:
    if not isinstance(doc, dict):
        return
    groups = [doc.get("nodes")]
    blocks = doc.get("blocks")
    if isinstance(blocks, dict):
        groups += [b.get("nodes") for b in blocks.values() if isinstance(b, dict)]
    for nodes in groups:
        if isinstance(nodes, dict):
            yield from (n for n in nodes.values() if isinstance(n, dict) and "model" in n)


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing ancestors; return those created, innermost first."""
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
            _remove_empty(missing)
            raise _error(
                made, f"cannot create the folder: {exc.strerror or exc}", "choose another path with -o"
            ) from None
    return missing


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


# --- staging -------------------------------------------------------------------------------


def _stage_root(out: Path) -> Path:
    """The system temp folder when on the output's filesystem, else the output's parent."""
    tmp = Path(tempfile.gettempdir())
    try:
        if tmp.stat().st_dev == out.parent.stat().st_dev:
            return tmp
    except OSError:
        pass
    return out.parent


def _mark(container: Path, key: bytes) -> str:
    return _mac(key, {"stage": container.name})


def _clean_stale(root: Path, key: bytes | None) -> None:
    """Remove staging folders of killed compiles: ours only (same user, signed mark), their process gone."""
    if key is None:
        return
    uid = os.geteuid() if hasattr(os, "geteuid") else None
    for stage in root.glob(f"{_STAGE_PREFIX}*"):
        pid = stage.name.removeprefix(_STAGE_PREFIX).split("-", 1)[0]
        try:
            st = stage.lstat()
        except OSError:
            continue
        mine = uid is None or st.st_uid == uid
        if not (mine and stat.S_ISDIR(st.st_mode) and pid.isdigit() and not _alive(int(pid))):
            continue
        try:
            with os.fdopen(os.open(stage / _STAGE_MARK, _OPEN_FLAGS), "rb") as fh:
                mark = fh.read(200).decode("ascii", "replace").strip()
        except OSError:
            continue
        if _same_mac(mark, _mark(stage, key)):
            shutil.rmtree(stage, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- swapping -------------------------------------------------------------------------------

_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2
_libc: Any = None


def _renameat2(a: Path, b: Path, flags: int) -> bool:
    """renameat2(a, b, flags); False where the call or the flag is not supported. OSError when it fails."""
    global _libc
    if _libc is None:
        name = ctypes.util.find_library("c")
        _libc = ctypes.CDLL(name, use_errno=True) if name else False
    fn = getattr(_libc, "renameat2", None) if _libc else None
    if fn is None:
        return False
    at_fdcwd = -100
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL):  # no such call, or the file system does not do this flag
        return False
    raise OSError(err, os.strerror(err), str(b))


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with renameat2(RENAME_EXCHANGE); False if unsupported."""
    return _renameat2(a, b, _RENAME_EXCHANGE)


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
        if not entry.same(before) or (digest is not None and _digest(path / rel, entry) != digest):
            return f"`{printable(rel)}` changed"
    if seen != len(dest.entries):
        return "an entry was removed from it"
    return None


def _remove_listed(path: Path, entries: dict[str, Entry]) -> bool:
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


def _keep_aside(leftover: Path, out: Path) -> Path:
    """Move what could not be removed beside the output (never left in a temp folder); return where it is."""
    for k in range(100):
        aside = out.with_name(f"{out.name}.fusec-kept-{os.getpid()}" + (f"-{k}" if k else ""))
        try:
            if _renameat2(leftover, aside, _RENAME_NOREPLACE):
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


def _swap_into_place(stage: Path, dest: Destination, new_entries: dict[str, Entry]) -> tuple[str, ...]:
    """Put the staged folder at ``dest.path``; return notes for the user.

    Raises:
        OutputError: the destination changed since it was checked (nothing was replaced).
        OSError: the file system refused.
    """
    out = dest.path
    if before_swap is not None:
        before_swap(stage, out)
    changed = "changed while fusec was writing"
    if dest.kind == "new":
        try:
            if _renameat2(stage, out, _RENAME_NOREPLACE):
                return ()
        except FileExistsError:
            raise _error(out, f"{changed}: something was created there", _AGAIN) from None
        if os.path.lexists(out):  # no renameat2 here: check, then rename (a narrow race)
            raise _error(out, f"{changed}: something was created there", _AGAIN)
        os.rename(stage, out)
        return ()
    try:
        exchanged = _exchange(stage, out)
    except FileNotFoundError:
        raise _error(out, f"{changed}: it vanished", _AGAIN) from None
    if exchanged:
        why = _unchanged(stage, dest)  # the stage now holds what was at `out`
        if why is not None:
            _exchange(stage, out)  # put it back as it is now; ours returns to the stage
            if not _remove_listed(stage, new_entries):  # something was written into ours meanwhile: keep it
                why += f"; what was written into the new output meanwhile is kept in `{_keep_aside(stage, out)}`"
            raise _error(out, f"{changed}: {why}", _AGAIN)
        if not _remove_listed(stage, dest.entries):
            return (_kept(out, _keep_aside(stage, out)),)
        return ()
    # No RENAME_EXCHANGE here: move the old output beside the destination (never into a temp folder), then swap.
    backup = out.with_name(f".{out.name}.fusec-old-{os.getpid()}")
    os.rename(out, backup)
    why = _unchanged(backup, dest)
    if why is not None:
        os.rename(backup, out)
        raise _error(out, f"{changed}: {why}", _AGAIN)
    try:
        os.rename(stage, out)
    except OSError:
        os.rename(backup, out)
        raise
    if not _remove_listed(backup, dest.entries):
        return (_kept(out, backup),)
    return ()


# --- the artifacts -----------------------------------------------------------------------------


def signature_of(model: Any) -> dict[str, Any]:
    """Inputs and outputs of the serving signature: name -> shape and dtype."""

    def spec(t: Any) -> dict[str, Any]:
        return {"shape": list(t.shape), "dtype": str(t.dtype)}

    return {
        "inputs": {t.name: spec(t) for t in model.inputs},
        "outputs": {name: spec(t) for name, t in zip(model.output_names, model.outputs, strict=True)},
    }


def export_saved_model(model: Any, folder: Path) -> None:
    """Write a SavedModel whose ``serving_default`` is the spec's interface.

    The signature takes one argument per model input, named after it, and
    returns a dict keyed by the output names. Keras's own ``model.export``
    would name a list model's results ``output_0``, ``output_1``..., so the
    endpoint is declared here, with Keras's ``ExportArchive``.
    """
    import tensorflow as tf
    from keras.export import ExportArchive

    names = list(model.output_names)
    specs = [tf.TensorSpec(t.shape, t.dtype, name=t.name) for t in model.inputs]

    @tf.function(input_signature=specs)
    def serve(*args: Any) -> dict[str, Any]:
        result = model(list(args), training=False)
        if isinstance(result, dict):
            return {name: result[name] for name in names}
        return dict(zip(names, result, strict=True))

    archive = ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serve)
    archive.write_out(str(folder), verbose=False)


def archive_name(name: str) -> str:
    """The ``.keras`` archive's file name in an output folder."""
    return f"{name}.keras"


def save_artifacts(model: Any, checked: Checked, out: str | Path, fmt: str = "all") -> Artifacts:
    """Write the SavedModel, the .keras archive, the spec, a manifest and the ownership record.

    Layout of ``out``: ``saved_model/`` (``serving_default`` signature keyed
    by the spec's input and output names), ``<name>.keras``, ``spec.json``
    (the spec's exact bytes), ``spec.json.sha256``, ``fusec.json`` (versions,
    hash, signature, parameter counts) and ``fusec.owner.json`` (the signed
    listing of all the rest).

    Args:
        model: the built Keras model.
        checked: the checked spec it came from.
        out: the output folder; replaced only when everything was written,
            and only if it is new, empty, or fusec's own output unchanged.
        fmt: ``all``, ``savedmodel`` or ``keras``.

    Returns:
        The paths written, and notes for the user (an output that could not
        be signed, entries kept aside).

    Raises:
        OutputError: the destination cannot be written or replaced, or
            changed while the compile ran (then nothing was replaced).
    """
    import keras

    from .. import __version__

    out = Path(out).absolute()
    inputs = input_files(checked)
    inspect_destination(out, inputs, deep=False)
    if fmt in ("all", "keras") and too_long(out.parent, archive_name(checked.name)):
        raise _error(
            out,
            f"the archive name `{printable(archive_name(checked.name))}` is longer than a file name may be",
            "give the spec a shorter `name`",
        )
    notes: list[str] = []
    try:
        key = user_key(create=True)
    except KeyUnavailable as exc:
        key = None
        notes.append(f"output `{out}` is not signed, so no later compile will replace it: fusec's key {exc}")
    created = _make_parents(out.parent)
    container: Path | None = None
    try:
        root = _stage_root(out)
        from ..static import budget

        room = budget.disk_problem(budget.estimate(checked.info, checked.graph), root)
        if room is not None:
            raise _error(out, room, "free disk space, or choose -o on another disk")
        for folder in {root, out.parent}:
            _clean_stale(folder, key)
        container = Path(tempfile.mkdtemp(prefix=f"{_STAGE_PREFIX}{os.getpid()}-", dir=root))
        if key is not None:
            (container / _STAGE_MARK).write_text(_mark(container, key) + "\n", encoding="ascii")
        stage = container / "new"
        stage.mkdir()
        saved = keras_path = None
        if fmt in ("all", "savedmodel"):
            saved = stage / "saved_model"
            with contextlib.redirect_stdout(None):
                export_saved_model(model, saved)
        if fmt in ("all", "keras"):
            if getattr(model, "optimizer", None) is not None and not model.optimizer.built:
                # Save the optimizer's slots too, so reloading for more training
                # restores a complete optimizer instead of warning and skipping it.
                model.optimizer.build(model.trainable_variables)
            keras_path = stage / archive_name(checked.name)
            model.save(str(keras_path))
        (stage / "spec.json").write_text(checked.spec.text, encoding="utf-8")
        (stage / "spec.json.sha256").write_text(f"{checked.spec.sha256}  spec.json\n", encoding="utf-8")
        import tensorflow as tf

        manifest = {
            "fusec": __version__,
            "keras": keras.__version__,
            "tensorflow": tf.__version__,
            "name": checked.name,
            "spec_sha256": checked.spec.sha256,
            "formats": [p for p in ("saved_model", "keras") if (saved if p == "saved_model" else keras_path)],
            "signature": signature_of(model),
            "params": {"trainable": checked.totals.trainable, "non_trainable": checked.totals.non_trainable},
        }
        (stage / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        new_entries = _write_owner(stage, key)
        os.chmod(stage, 0o755)
        dest = inspect_destination(out, inputs)  # the last look before the swap; contents are read after it
        notes += _swap_into_place(stage, dest, new_entries)
    except BaseException as exc:
        _remove_empty(created)
        if isinstance(exc, OSError):  # disk full, permissions, a folder that vanished...
            raise _error(out, f"cannot be written: {exc.strerror or exc}", "the previous output is unchanged") from exc
        raise
    finally:
        if container is not None:
            shutil.rmtree(container, ignore_errors=True)  # our private folder: only ours is left in it
    return Artifacts(
        out,
        out / "saved_model" if saved else None,
        out / archive_name(checked.name) if keras_path else None,
        out / "spec.json",
        tuple(notes),
    )
