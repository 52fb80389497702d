"""Schema stage: the spec's contract, as JSON Schema 2020-12, and validation against it.

- ``names``: the names rule for ids and names (patterns, ``derive_name``);
- ``generate``: the schema, generated from the layer and merge registries
  (``defs`` shares repeated parameter schemas under ``$defs``; ``editor`` adds
  per-value docs, defaults and snippets for editors); its committed copy,
  ``fusec-1.schema.json``, ships beside these modules (``committed``:
  ``SCHEMA_PATH``, read by the yes/no check instead of generating it);
- ``validator``: jsonschema's validator with fast paths for the generated forms;
- ``messages``: each jsonschema error in words, by a table of keyword handlers;
- ``problems``: the front end, a fastschema yes/no first, then every violation.

What a check of a valid spec needs (``names``, ``problems``, ``committed``)
is imported with the package; the generator, the messages, the validator and
the loss registry load on first use of one of their names (``_LAZY``).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING

from ...lazy import lazy_names
from .committed import SCHEMA_PATH as SCHEMA_PATH
from .names import EXTERNAL_PATTERN as EXTERNAL_PATTERN
from .names import ID_PATTERN as ID_PATTERN
from .names import INPUT_ID_PATTERN as INPUT_ID_PATTERN
from .names import MAX_ID as MAX_ID
from .names import REF_PATTERN as REF_PATTERN
from .names import RESERVED as RESERVED
from .names import derive_name as derive_name
from .names import ecma_regex as ecma_regex
from .names import id_problem as id_problem
from .names import input_case_problems as input_case_problems
from .names import is_id as is_id
from .names import pattern_matches as pattern_matches
from .problems import MAX_DETAILED as MAX_DETAILED
from .problems import fast_check as fast_check
from .problems import schema_problems as schema_problems
from .problems import validate_schema as validate_schema

if TYPE_CHECKING:
    from ...vocab.losses import LOSSES as LOSSES  # the names a spec may use
    from ...vocab.losses import METRICS as METRICS
    from .generate import DTYPES as DTYPES
    from .generate import KIND_KEYS as KIND_KEYS
    from .generate import OPTIMIZERS as OPTIMIZERS
    from .generate import SCHEMA_ID as SCHEMA_ID
    from .generate import generate_schema as generate_schema
    from .generate import schema_json as schema_json
    from .messages import KERAS_MERGES as KERAS_MERGES
    from .validator import detailed_validator as detailed_validator


def _losses() -> ModuleType:
    from ...vocab import losses

    return losses


def _generate() -> ModuleType:
    from . import generate

    return generate


def _messages() -> ModuleType:
    from . import messages

    return messages


def _validator() -> ModuleType:
    from . import validator

    return validator


#: Names whose modules load on first use (a closed table of static imports).
_LAZY: dict[str, Callable[[], ModuleType]] = {
    "LOSSES": _losses,
    "METRICS": _losses,
    "DTYPES": _generate,
    "KIND_KEYS": _generate,
    "OPTIMIZERS": _generate,
    "SCHEMA_ID": _generate,
    "generate_schema": _generate,
    "schema_json": _generate,
    "KERAS_MERGES": _messages,
    "detailed_validator": _validator,
}


__getattr__ = lazy_names(__name__, _LAZY, globals())
