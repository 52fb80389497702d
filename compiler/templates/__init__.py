"""The starting specs of ``fusec init``: one JSON file per scenario, shipped as package data.

Each template is a complete spec (``<name>.json`` beside this module) that
passes ``fusec check --strict`` and compiles (tests/test_init.py): tiny but
realistic sizes, a ``training`` section so ``fusec fit`` runs on it, and
``doc`` strings (JSON has no comments) that say what to edit first. The
text is kept as written, one node per line; ``render_template`` changes
only the value of the top-level ``name``.

Imports nothing above ``spec`` (the names rule).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from ..spec.schema.names import id_problem

#: Every template by name, with the one line ``fusec init --list`` prints. Names are stable.
TEMPLATES: dict[str, str] = {
    "early-fusion": "early fusion: an image CNN and tabular features, concatenated, one classifier",
    "late-fusion": "weighted late fusion: an image model and a text model, their decisions averaged by learned weights",
    "multitask": "multi-task: a shared trunk, one layer per task, a shared head called by every task",
    "moe": "gated mixture of experts: a gate network weights 3 expert models per example",
    "siamese": "siamese towers: one shared-weight tower on two inputs, a cosine-similarity head",
}

#: The top-level ``name`` line every template holds exactly once (two spaces in, as written).
_NAME_LINE = re.compile(r'^  "name": ("[A-Za-z][A-Za-z0-9_]*"),$', re.MULTILINE)


@cache
def template_text(template: str) -> str:
    """The text of a template as shipped.

    Raises:
        KeyError: ``template`` is not one of TEMPLATES.
    """
    if template not in TEMPLATES:
        raise KeyError(template)
    return (Path(__file__).parent / f"{template}.json").read_text(encoding="utf-8")


def template_doc(template: str) -> dict[str, Any]:
    """A template as a JSON document (a fresh copy each call)."""
    doc: dict[str, Any] = json.loads(template_text(template))
    return doc


def default_name(template: str) -> str:
    """The model name a template carries (``early_fusion`` for ``early-fusion``)."""
    name: str = template_doc(template)["name"]
    return name


def render_template(template: str, name: str | None = None) -> str:
    """A template's text with its top-level ``name`` set to ``name`` (None: as shipped).

    Only the value on the ``name`` line changes; every other byte is the template's.

    Raises:
        KeyError: an unknown template.
        ValueError: ``name`` breaks the names rule (the message says why).
    """
    text = template_text(template)
    if name is None:
        return text
    why = id_problem(name)
    if why:
        raise ValueError(f"{json.dumps(name, ensure_ascii=False)} is not a model name: {why}")
    found = list(_NAME_LINE.finditer(text))
    if len(found) != 1:  # a template written without its name line: a bug the tests catch
        raise ValueError(f"template {template} has {len(found)} top-level name lines, not one")
    start, end = found[0].span(1)
    return text[:start] + json.dumps(name) + text[end:]
