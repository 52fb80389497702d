"""Save stage: write the compiled artifacts atomically, and replace only fusec's own outputs.

Everything is written into a staging folder on the output's filesystem, then
swapped into place in one ``renameat2`` call; an existing folder is replaced
only when it is fusec's own output, unchanged, as its signed ownership record
shows. One concern a module:

* ``owner``: the per-user key and the signed ``fusec.owner.json`` listing;
* ``destination``: what is at the output path, and whether it may be written;
* ``swap``: the staging folder and the race-safe swap into place;
* ``artifacts``: the SavedModel, the ``.keras`` archive, the spec and the
  manifest, and ``save_artifacts``, which runs the steps in order.

The checks on plain output paths that ``fusec render`` shares live in
``fusec.files``; the files a check reads (which no output may overwrite) in
``fusec.static.archive.input_files``.
"""

from __future__ import annotations

from .artifacts import FORMATS, MANIFEST, Artifacts, archive_name, export_saved_model, save_artifacts, signature_of
from .destination import Destination, check_destination, inspect_destination
from .owner import (
    MAX_ENTRIES,
    MAX_OWNER_BYTES,
    OWNER,
    STATE_ENV,
    Entry,
    KeyUnavailable,
    NotOwned,
    state_dir,
    user_key,
    verify_owned,
    walk,
)

__all__ = [
    "FORMATS",
    "MANIFEST",
    "MAX_ENTRIES",
    "MAX_OWNER_BYTES",
    "OWNER",
    "STATE_ENV",
    "Artifacts",
    "Destination",
    "Entry",
    "KeyUnavailable",
    "NotOwned",
    "archive_name",
    "check_destination",
    "export_saved_model",
    "inspect_destination",
    "save_artifacts",
    "signature_of",
    "state_dir",
    "user_key",
    "verify_owned",
    "walk",
]
