"""The committed spec schema (``fusec-1.schema.json``), read instead of generated where only a verdict is needed.

Generating the schema from the registries (``generate``) takes ~50 ms and
imports the editor annotations and the ``$defs`` planner; reading the
committed copy takes ~3 ms. The two are equal (tests/test_schema.py and
tests/test_schema_editor.py compare them byte for byte; ``make schema``
rewrites the file), so the yes/no check (``problems``, fastschema) compiles
the committed copy. jsonschema's messages, which follow the schema's key
order, still come from the generated schema (``validator``).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

#: The committed schema, shipped inside the package (package data): what ``fusec schema --path`` prints.
SCHEMA_PATH = Path(__file__).resolve().with_name("fusec-1.schema.json")


@lru_cache(maxsize=1)
def committed_schema() -> dict[str, Any]:
    """The committed schema, read once; the generated one when the file is missing or unreadable.

    Returns:
        The spec's JSON Schema (equal to ``generate.generate_schema()``).
    """
    try:
        schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        schema = None
    if isinstance(schema, dict):
        return schema
    from .generate import generate_schema  # an install without the package data: generate it

    return generate_schema()
