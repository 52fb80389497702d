"""Keras layer names as spec ids: sanitised to the spec's id pattern, unique, never a Python keyword."""

from __future__ import annotations

import keyword
import re

MAX_ID = 64


def sanitise(name: str) -> str:
    """``name`` as an id: ASCII letters, digits and single ``_``, starting with a letter, at most 56 characters."""
    text = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")
    if not text or not text[0].isalpha():
        text = "n_" + text if text else "n"
    return text[:56].rstrip("_")


class Ids:
    """One namespace of ids: each name sanitised, then made unique (ignoring case) with ``_2``, ``_3``..."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def take(self, name: str, is_input: bool = False) -> str:
        """A fresh id for ``name`` (an input id also avoids Python keywords and ``self``)."""
        base = sanitise(name)
        if is_input and (keyword.iskeyword(base) or base in ("self", "None", "True", "False")):
            base += "_in"
        candidate, n = base, 1
        while candidate.lower() in self.used:
            n += 1
            candidate = f"{base}_{n}"
        self.used.add(candidate.lower())
        return candidate
