"""The training backup: what lets a rerun of the same command resume a run that died.

Like Keras's ``BackupAndRestore``, but for fusec's loop (which runs on
every strategy, multi-worker included): a ``tf.train.Checkpoint`` of the
model's weights, the optimizer's slots and step, the metrics' running
totals, the epoch and step reached and the early-stopping state, written
every ``backup_every`` steps and at the end of each epoch.

Layout of the backup folder (``<OUT>.fit-backup`` unless ``--backup-dir``):

    fusec-backup.json   the token that marks the folder as this user's fusec backup
    run.json            what the run is (spec and data hashes, batch size, seed, workers)
    chief/              the chief's checkpoints (the last two), which every worker restores
    history.json        the finished epochs' metrics (the chief's)
    best.weights.h5     the best epoch's weights, when early stopping keeps them
    worker-<rank>/      a non-chief worker's save, deleted as soon as it is written

A folder is fusec's backup only when fusec made it (or found it empty):
the token is a random value signed with the per-user key that signs
``compile``'s outputs (``keras.save.owner``). An existing folder is
resumed, restarted or removed only when its token verifies; anything else
(a user's folder, a link, a file) is refused before any training work, and
removing a backup deletes only the entries of the layout above, never
following a link.

Every worker takes part in each save (reading the metrics' totals is a
collective operation under MultiWorkerMirroredStrategy) and restores from
``chief/``, so with several machines the folder must be on storage they
share, as Keras's ``BackupAndRestore`` requires. The folder is removed
once the final outputs are in place.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import files
from ..errors import FusecError, printable
from ..keras.save.owner import OPEN_FLAGS, STATE_ENV, KeyUnavailable, same_mac, sign, user_key, walk
from .cluster import Cluster

RUN_FILE = "run.json"
HISTORY = "history.json"
BEST = "best.weights.h5"
TOKEN = "fusec-backup.json"
_LAYOUT = frozenset({RUN_FILE, HISTORY, BEST, TOKEN, "chief"} | {f"{n}.tmp" for n in (RUN_FILE, HISTORY, TOKEN)})
_WORKER = re.compile(r"worker-[0-9]+")
_TOKEN_BYTES = 4096  # a token file is ~200 bytes; more is not one of ours
_MAX_ENTRIES = 10_000  # entries looked at when a backup is verified (one holds a few dozen)
_FIX = "remove it yourself, or choose another --backup-dir"
_OTHER_KEY = _FIX + f"; if fusec made it with another key, set {STATE_ENV} to the folder that key is in"


class BackupError(FusecError):
    """A backup folder fusec may not use (not its own, a link, a file), or the backup of another run."""


def backup_dir(out: Path) -> Path:
    """The default backup folder of output folder ``out``: beside it, on the same disk."""
    return out.parent / f"{out.name}.fit-backup"


def _fail(folder: Path, message: str, hint: str = _FIX) -> BackupError:
    return BackupError.single((), f"backup folder `{printable(str(folder))}` {message}", hint, "backup")


def inspect_backup(folder: Path, chief: bool) -> tuple[str, bool]:
    """What is at the backup path, if fusec may use it; writes nothing.

    Args:
        folder: the backup folder.
        chief: whether this process is the chief, which verifies an
            existing backup's token (a worker on another machine has
            another key, and never removes more than its own ``worker-<rank>``).

    Returns:
        ``new``, ``empty`` or ``owned``, and whether fusec made the folder
        (an owned one's token says; so its removal may remove the folder).

    Raises:
        BackupError: a link, something that is not a folder, a path under a
            file or in a folder that cannot be written, or a non-empty
            folder whose token does not verify (one fusec did not make).
    """
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        return _new(folder), False
    except OSError as exc:
        if isinstance(exc, NotADirectoryError):
            return _new(folder), False  # under a file: the ancestor check says which
        raise _fail(folder, f"cannot be used: {exc.strerror or exc}", "choose another --backup-dir") from None
    if stat.S_ISLNK(st.st_mode):
        raise _fail(
            folder,
            f"is a symbolic link (to `{printable(os.readlink(folder))}`); fusec does not follow links for its backup",
            "give the folder itself, or another --backup-dir",
        )
    if not stat.S_ISDIR(st.st_mode):
        raise _fail(folder, f"is {files.describe(st)}, not a folder", "choose another --backup-dir")
    try:
        with os.scandir(folder) as it:
            names = {e.name for e in it}
        if not names:
            return "empty", False
        if not chief:
            if TOKEN not in names and any(_WORKER.fullmatch(n) for n in names):
                raise _fail(folder, f"is a non-empty folder that fusec did not make: it has no `{TOKEN}`")
            return "owned", False
        return "owned", bool(verify_token(folder)["made"])
    except OSError as exc:
        raise _fail(folder, f"cannot be read: {exc.strerror or exc}", "choose another --backup-dir") from None


def _new(folder: Path) -> str:
    """A backup folder still to be made: its nearest existing ancestor must be a writable folder."""
    ancestor = files.existing_ancestor(folder.parent)
    if not ancestor.is_dir():
        raise _fail(
            folder, f"lies under `{printable(str(ancestor))}`, which is not a folder", "choose another --backup-dir"
        )
    if not files.writable(ancestor):
        raise _fail(
            folder, f"cannot be made: `{printable(str(ancestor))}` is not writable", "choose another --backup-dir"
        )
    return "new"


def verify_token(folder: Path) -> dict[str, Any]:
    """The token of a backup fusec made, once it verifies and the folder holds only files and folders.

    Raises:
        BackupError: no token, a token not signed with this user's key, or
            a link, FIFO or device anywhere in the folder.
    """
    doc = _read_token(folder)
    try:
        key = user_key(create=False)
    except KeyUnavailable as exc:
        raise _fail(folder, f"cannot be verified: fusec's key {exc}") from None
    signed = key is not None and same_mac(doc["mac"], sign(key, _signed(doc["token"], doc["made"])))
    if not signed:
        # Another key: a restarted pod (a TFJob) has a fresh home folder, so a fresh key. Its
        # backup is still used if it holds nothing but fusec's own entries, and is then never
        # removed as a folder (only those entries are): nothing of anyone else can be lost.
        with os.scandir(folder) as it:
            foreign = sorted(e.name for e in it if e.name not in _LAYOUT and not _WORKER.fullmatch(e.name))
        if foreign:
            why = "is not signed with your fusec key" if key is not None else "was made with another fusec key"
            raise _fail(
                folder,
                f"has a `{TOKEN}` that {why}, and holds `{printable(foreign[0])}`, which fusec does not write",
                _OTHER_KEY,
            )
        doc = {**doc, "made": False}
    for rel, entry in walk(folder, _MAX_ENTRIES):
        if entry.kind == "x":
            raise _fail(folder, f"holds `{printable(rel)}`, which is not a regular file or folder", _FIX)
    return doc


def _signed(token: str, made: bool) -> dict[str, Any]:
    return {"backup": token, "made": made, "version": 1}


def _read_token(folder: Path) -> dict[str, Any]:
    """The token file's JSON, read with a size bound, without following links or blocking."""
    not_ours = f"is a non-empty folder that fusec did not make: it has no valid `{TOKEN}`"
    try:
        fd = os.open(folder / TOKEN, OPEN_FLAGS)
    except OSError:
        raise _fail(folder, not_ours) from None
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(_TOKEN_BYTES + 1) if stat.S_ISREG(os.fstat(fh.fileno()).st_mode) else b""
    try:
        doc = json.loads(data.decode("utf-8")) if 0 < len(data) <= _TOKEN_BYTES else None
    except (ValueError, RecursionError):
        doc = None
    if not (isinstance(doc, dict) and isinstance(doc.get("token"), str) and isinstance(doc.get("made"), bool)):
        raise _fail(folder, not_ours)
    return doc


def _remove_entry(path: Path) -> None:
    """Remove one entry without following a link: a folder with its contents, anything else unlinked."""
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISDIR(os.lstat(path).st_mode):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)


def _clear(folder: Path, keep_token: bool) -> None:
    """Remove the backup's own entries (the layout's names only), the token last; anything else stays."""
    with os.scandir(folder) as it:
        names = sorted(e.name for e in it if e.name in _LAYOUT or _WORKER.fullmatch(e.name))
    for name in names:
        if name != TOKEN:
            _remove_entry(folder / name)
    if not keep_token:
        _remove_entry(folder / TOKEN)


@dataclass
class State:
    """Where the run is: epochs finished, steps done in the current one, early stopping."""

    epoch: int = 0
    step: int = 0
    best: float = float("inf")
    wait: int = 0


class Backup:
    """One run's backup folder: its token, fingerprint, checkpoints and finished epochs.

    The order of calls: ``inspect`` (before any training work), ``check_run``
    (once the data are read: resume, restart or refuse), ``attach``,
    ``start`` (makes the folder), then ``save``... and ``remove``.
    """

    def __init__(self, folder: Path, cluster: Cluster, run: dict[str, Any] | None = None) -> None:
        self.folder = folder
        self.cluster = cluster
        self.run: dict[str, Any] = run or {}
        self.kind: str | None = None  # what inspect found: new, empty or owned
        self._made = False  # fusec made the folder (so removes it at the end), per its token
        self._ckpt: Any = None
        self._manager: Any = None
        self._vars: dict[str, Any] = {}

    # The folder and the fingerprint ---------------------------------------------------------

    def inspect(self) -> str:
        """Refuse a backup folder fusec may not use (see ``inspect_backup``); what is there."""
        self.kind, self._made = inspect_backup(self.folder, self.cluster.is_chief)
        return self.kind

    def check_run(self, restart: bool) -> bool:
        """Whether a backup of this same run exists (then it is resumed).

        With ``restart`` an existing backup is discarded (by the chief, and
        only when its token verifies: ``inspect`` runs again first).

        Raises:
            BackupError: the folder is not fusec's, or the backup is of
                another run (another spec, data, batch size, seed or
                number of workers).
        """
        self.inspect()  # again: the folder may have changed since the first look
        if restart and self.cluster.is_chief and self.kind == "owned":
            _clear(self.folder, keep_token=True)
        record = self.folder / RUN_FILE
        if self.kind != "owned" or not record.is_file():
            return False
        try:
            previous = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            why = "nested too deep" if isinstance(exc, RecursionError) else str(exc)
            raise _fail(
                self.folder, f"has a `{RUN_FILE}` that cannot be read ({why})", "pass --restart to discard it"
            ) from None
        changed = [k for k in self.run if isinstance(previous, dict) and previous.get(k) != self.run[k]]
        if not isinstance(previous, dict) or changed:
            what = ", ".join(f"`{k}` was {previous.get(k)!r}, now {self.run[k]!r}" for k in changed[:4])
            raise _fail(
                self.folder,
                f"is the backup of a different run ({what or 'not a fusec run record'})",
                "rerun with the same spec, data and options to resume it, or pass --restart to discard it",
            )
        return (self.folder / "chief" / "checkpoint").is_file()

    def start(self) -> None:
        """Make the folder, sign it as fusec's, and write the run record (the chief), before the first step.

        Raises:
            BackupError: the folder cannot be made, or something took its
                path since ``inspect`` (nothing is trained then).
        """
        if not self.cluster.is_chief:
            return
        try:
            if self.kind == "new":
                self._make()
            if self.kind in ("new", "empty"):
                self._sign(made=self.kind == "new")
                self.kind = "owned"
            _write_json(self.folder / RUN_FILE, self.run)
        except OSError as exc:
            raise _fail(
                self.folder, f"cannot be written: {exc.strerror or exc}", "choose another --backup-dir"
            ) from None

    def _make(self) -> None:
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.folder.mkdir()
        except FileExistsError:  # made by someone else since inspect: usable only if it is still empty
            self.kind, _ = inspect_backup(self.folder, True)
            if self.kind != "empty":
                raise _fail(
                    self.folder, "appeared while this run started (another fit with the same backup?)"
                ) from None

    def _sign(self, made: bool) -> None:
        """Write the token: a random value, and its HMAC under the per-user key (none when no key can be had)."""
        self._made = made
        try:
            key = user_key(create=True)
        except KeyUnavailable:
            key = None
        if key is None:  # an unsigned backup: this run still removes it (it knows it made it); a rerun cannot resume it
            return
        token = secrets.token_hex(16)
        _write_json(self.folder / TOKEN, {"token": token, "made": made, "mac": sign(key, _signed(token, made))})

    # Checkpoints -----------------------------------------------------------------------

    def attach(self, model: Any) -> None:
        """Track the model, its optimizer and metrics, and the loop's state (inside the strategy's scope)."""
        import tensorflow as tf

        self._vars = {
            "epoch": tf.Variable(0, dtype=tf.int64, trainable=False),
            "step": tf.Variable(0, dtype=tf.int64, trainable=False),
            "best": tf.Variable(float("inf"), dtype=tf.float64, trainable=False),
            "wait": tf.Variable(0, dtype=tf.int64, trainable=False),
        }
        metrics = [v for metric in model.metrics for v in metric.variables]
        self._ckpt = tf.train.Checkpoint(model=model, optimizer=model.optimizer, metrics=metrics, **self._vars)
        where = "chief" if self.cluster.is_chief else f"worker-{self.cluster.rank}"
        self._manager = tf.train.CheckpointManager(self._ckpt, str(self.folder / where), max_to_keep=2)

    def restore(self) -> State:
        """Load the chief's latest checkpoint into the model; the state it was saved at."""
        import tensorflow as tf

        latest = tf.train.latest_checkpoint(str(self.folder / "chief"))
        if latest is None:
            return State()
        try:
            # restore (not read): it matches the checkpoint's save counter too, so TensorFlow has
            # nothing left over to warn about; every object of the model must still be matched.
            self._ckpt.restore(latest).assert_existing_objects_matched()
        except (tf.errors.OpError, AssertionError, ValueError) as exc:
            raise _fail(
                self.folder,
                f"holds a checkpoint that does not fit this model: {str(exc).splitlines()[0]}",
                "pass --restart to discard it",
            ) from None
        v = self._vars
        return State(int(v["epoch"].numpy()), int(v["step"].numpy()), float(v["best"].numpy()), int(v["wait"].numpy()))

    def save(self, state: State) -> None:
        """Checkpoint now; every worker calls it at the same step."""
        for key in ("epoch", "step", "best", "wait"):
            self._vars[key].assign(getattr(state, key))
        self._manager.save(checkpoint_number=state.epoch * 1_000_000_000 + state.step)
        if not self.cluster.is_chief:  # only the chief's copy is ever restored
            _remove_entry(self.folder / f"worker-{self.cluster.rank}")

    # The chief's records ---------------------------------------------------------------

    def history(self, epochs: int) -> list[dict[str, float]]:
        """The finished epochs' metrics saved so far, the first ``epochs`` of them."""
        try:
            saved = json.loads((self.folder / HISTORY).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError, RecursionError):
            saved = None
        ok = isinstance(saved, list) and all(
            isinstance(e, dict)
            and all(isinstance(k, str) and (v is None or type(v) in (int, float)) for k, v in e.items())
            for e in saved[:epochs]
        )
        if not ok:
            raise _fail(
                self.folder, f"has a `{HISTORY}` that is not a list of epochs' metrics", "pass --restart to discard it"
            )
        return saved[:epochs]

    def save_history(self, history: list[dict[str, float]]) -> None:
        if self.cluster.is_chief:
            _write_json(self.folder / HISTORY, history)

    @property
    def best_weights(self) -> Path:
        return self.folder / BEST

    def remove(self) -> None:
        """Delete the backup once the outputs are in place: its own entries only, and the folder if fusec made it.

        A worker removes only its own ``worker-<rank>``; nothing is removed
        from a folder that was never checked (``inspect``) and started.
        """
        if not self.cluster.is_chief:
            _remove_entry(self.folder / f"worker-{self.cluster.rank}")
            return
        if self.kind != "owned":
            return
        with contextlib.suppress(OSError):  # a folder gone or not writable now: the outputs are in place all the same
            _clear(self.folder, keep_token=False)
            if self._made:
                self.folder.rmdir()  # fails, and so stays, when something else was put in it


def _write_json(path: Path, payload: Any) -> None:
    """Write a small JSON file atomically (a kill mid-write leaves the old one)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
