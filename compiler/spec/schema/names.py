"""The names rule: one rule for every name fusec gives to Keras and TensorFlow.

Input, node, shared-layer, block and output ids, block input and output
names, the model's ``name``, and the name derived from a spec's file stem.
Measured on Keras 3.15 / TensorFlow 2.21 (tests/test_schema.py replays it):

- TensorFlow names every variable and op after its layer and refuses a root
  scope that does not match ``[A-Za-z0-9.][A-Za-z0-9_.\\/>-]*``: a layer or
  model called `_h` builds, then fails when the SavedModel is written;
- ids are joined with ``__`` by block expansion and with ``.`` for ports,
  so ``.`` stays out of ids, and a leading digit would read as a port;
- an input id also names an argument of the SavedModel's serving function,
  built with ``inspect.Parameter``, which refuses Python keywords (`lambda`,
  `None`); `self` collides with the tracing method's own first argument.
  Node ids and output names may be keywords (an output called `class`).

Hence: an ASCII letter, then ASCII letters, digits and ``_``, at most 64
characters; and for an input, none of RESERVED. The patterns are ECMA-262
(editors apply them); fusec applies them with ECMA semantics too (``$``
only at the very end, see ``ecma_regex``), so `h\\n` is not `h`.
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import lru_cache
from typing import Any

from ...errors import Problem

#: Python's keywords (``keyword.kwlist``, written out so the rule does not move with Python) and `self`.
RESERVED = (
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def",
    "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda",
    "nonlocal", "not", "or", "pass", "raise", "return", "self", "try", "while", "with", "yield",
)  # fmt: skip
MAX_ID = 64
_NAME = r"[A-Za-z][A-Za-z0-9_]{0,63}"
#: An id or name: the rule above.
ID_PATTERN = rf"^{_NAME}$"
#: An input id: an id that is not in RESERVED (it names an argument of the serving function).
INPUT_ID_PATTERN = rf"^(?!(?:{'|'.join(RESERVED)})$){_NAME}$"
#: A reference: an id, optionally ``.N`` (output N of a node) or ``.name`` (an output of a block instance).
REF_PATTERN = rf"^{_NAME}(\.[A-Za-z0-9_]{{1,64}})?$"
#: A name fusec does not give but must match: a sub-model's input or output (Keras's own names), a slot.
EXTERNAL_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"


@lru_cache(maxsize=64)
def ecma_regex(pattern: str) -> re.Pattern[str]:
    """A JSON Schema ``pattern`` compiled with the ECMA-262 meaning editors give it.

    Python's ``$`` also matches before a final new line, so ``re.search`` of
    ``^[a-z]+$`` accepts ``"h\\n"``; ECMA's ``$`` (without the multiline flag)
    matches only at the very end. Every ``$`` outside a character class
    becomes ``\\Z``, and ``\\d``, ``\\w`` match ASCII only, as in ECMA.
    """
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "$":
            c = r"\Z"
        out.append(c)
        i += 1
    return re.compile("".join(out), re.ASCII)


def pattern_matches(pattern: str, text: str) -> bool:
    """Whether ``text`` matches a schema ``pattern`` (ECMA-262 semantics, as fusec validates)."""
    return ecma_regex(pattern).search(text) is not None


def is_id(text: str, input_id: bool = False) -> bool:
    """Whether ``text`` follows the names rule (for an input id when ``input_id``)."""
    return pattern_matches(INPUT_ID_PATTERN if input_id else ID_PATTERN, text)


def id_problem(text: str, input_id: bool = False) -> str:
    """Why ``text`` breaks the names rule, in a few words ("" when it does not)."""
    if is_id(text, input_id):
        return ""
    bad = next((c for c in text if not (c.isascii() and (c.isalnum() or c == "_"))), None)
    if not text:
        return "it is empty"
    if bad is not None:
        return f"it holds {json.dumps(bad, ensure_ascii=False)}: ids use ASCII letters, digits and _ only"
    if text[0] == "_":
        return "it starts with _, which TensorFlow refuses in variable and op names"
    if text[0].isdigit():
        return "it starts with a digit"
    if len(text) > MAX_ID:
        return f"it has {len(text)} characters; the limit is {MAX_ID}"
    if text == "self":
        return "an input id names an argument of the serving function, whose own first argument is `self`"
    return "an input id names an argument of the serving function, and Python keywords cannot"


def input_case_problems(doc: Any) -> list[Problem]:
    """Input ids that differ only in case: the SavedModel cannot serve both.

    TensorFlow makes graph names unique ignoring case, so the serving
    function's second argument `mh` after `Mh` is renamed `mh_1` and the
    SavedModel refuses to be written. (Nodes, shared layers and outputs may
    differ only in case: their names never meet in one graph scope.)
    """
    inputs = doc.get("inputs") if isinstance(doc, dict) else None
    if not isinstance(inputs, dict):
        return []
    first: dict[str, str] = {}
    problems = []
    for iid in inputs:
        if not isinstance(iid, str):
            continue
        other = first.setdefault(iid.lower(), iid)
        if other != iid:
            problems.append(
                Problem(
                    ("inputs", iid),
                    f"input `{iid}` differs from input `{other}` only in case: TensorFlow names the serving "
                    "function's arguments ignoring case, and cannot tell them apart",
                    "rename one of them",
                    "duplicate",
                )
            )
    return problems


def derive_name(stem: str) -> str:
    """The model name of a spec without ``name``: its file stem, mapped onto the names rule.

    A stem that follows the rule is the name. Any other is mapped, stably:
    accents are dropped (``modèle`` -> ``modele``), each run of characters
    that are not ASCII letters or digits becomes one ``_``, ``_`` is trimmed
    from both ends, a name that starts with a digit gets ``model_`` in front,
    one that is empty becomes ``model``, and the result is cut to 64
    characters. So ``my model (copy).json`` is ``my_model_copy``,
    ``my-model.json`` is ``my_model`` and ``2024.json`` is ``model_2024``.
    """
    if is_id(stem):
        return stem
    text = "".join(c for c in unicodedata.normalize("NFKD", stem) if not unicodedata.combining(c))
    text = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")
    if not text:
        return "model"
    if not text[0].isalpha():
        text = f"model_{text}"
    return text[:MAX_ID].rstrip("_")
