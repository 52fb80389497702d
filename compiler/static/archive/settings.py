"""A Keras layer's settings, translated into the fusec config they amount to (or refused).

Keys fusec declares are validated with the spec's own schema; any other
setting Keras writes must hold a value that leaves shapes, parameter counts
and the computation fusec knows unchanged (``_NEUTRAL``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from ...errors import RuleError
from ...vocab.layers import LAYERS
from ...vocab.merges import MERGES
from ...vocab.rule import config_schema
from .base import RESAVE, brief_text, show
from .classes import POLICIES

_NUMBER = (int, float)


def _is_number(v: Any) -> bool:
    return isinstance(v, _NUMBER) and not isinstance(v, bool)


#: Settings Keras writes that are not fusec config keys, with the values that
#: leave shapes, parameter counts and the computation fusec knows unchanged.
#: Any other value (``data_format: channels_first``, ``groups: 2``, a
#: ``quantization_config``, ``lora_rank``...) is outside fusec's vocabulary.
_NEUTRAL: dict[str, Callable[[Any], bool]] = {
    "name": lambda v: isinstance(v, str),
    "trainable": lambda v: isinstance(v, bool),
    "seed": lambda v: v is None or isinstance(v, int),
    "noise_shape": lambda v: v is None,
    "quantization_config": lambda v: v is None,
    "data_format": lambda v: v in (None, "channels_last"),
    "groups": lambda v: v == 1 and not isinstance(v, bool),
    "output_padding": lambda v: v is None,
    "stateful": lambda v: v is False,
    "unroll": lambda v: v is False,
    "zero_output_for_mask": lambda v: isinstance(v, bool),
    "synchronized": lambda v: v is False,
    "renorm": lambda v: v is False,
    "renorm_clipping": lambda v: v is None,
    "renorm_momentum": _is_number,
    "rms_scaling": lambda v: v is False,
    "invert": lambda v: v is False,
    "use_gate": lambda v: v is False,
    "sliding_window": lambda v: v is None,
    "lora_rank": lambda v: v is None,
    "lora_alpha": lambda v: v is None or _is_number(v),
    "input_ids": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "epsilon": _is_number,
}
_OBJECT_SUFFIXES = ("_initializer", "_regularizer", "_constraint")
_POLICY_NAMES = frozenset({"float32", "float16", "bfloat16", "float64", "mixed_float16", "mixed_bfloat16"})
INPUT_DTYPES = frozenset(
    {"float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
     "bool"}
)  # fmt: skip


def policy_ok(value: Any) -> bool:
    """Whether a layer's ``dtype`` is a policy fusec accepts: a float policy name, or a policy object naming one."""
    if value is None or (isinstance(value, str) and value in _POLICY_NAMES):
        return True
    if isinstance(value, dict) and value.get("class_name") in POLICIES:
        inner = value.get("config")
        return isinstance(inner, dict) and inner.get("name") in _POLICY_NAMES
    return False


@cache
def _validator(kind: str, name: str) -> Any:
    """A strict validator of a layer's (or merge's) config schema: the spec's own rules."""
    from jsonschema import Draft202012Validator, validators

    checker = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
    )
    strict = validators.extend(Draft202012Validator, type_checker=checker)
    if kind == "layer":
        return strict(config_schema(LAYERS[name]))
    if not name:  # a pass-through layer: no settings of its own
        return strict({"type": "object", "additionalProperties": False})
    rule = MERGES[name]
    props = {p.name: dict(p.schema) for p in rule.params}
    for p in rule.params:
        if p.default is None:
            props[p.name] = {"anyOf": [props[p.name], {"type": "null"}]}
    return strict({"type": "object", "properties": props, "additionalProperties": False})


def fusec_config(
    cls: str, params: Mapping[str, Any], cfg: Any, what: str, label: str, key: str, kind: str, name: str
) -> dict[str, Any]:
    """A Keras layer config as the fusec config it amounts to, or a refusal.

    Keys fusec declares are kept (Keras's object forms of initializers and
    regularizers, which do not change shapes, are dropped for fusec's
    defaults) and validated with the spec's own schema; other keys must hold
    a neutral value (``_NEUTRAL``), be a ``*_initializer``/``*_regularizer``/
    ``*_constraint`` object, or a dtype policy fusec accepts.
    """
    if not isinstance(cfg, dict):
        raise RuleError(f"`{label}`: {what} has no config object", key, RESAVE)
    out: dict[str, Any] = {}
    for k, v in cfg.items():
        if k in params:
            if isinstance(v, dict) and k.endswith(_OBJECT_SUFFIXES):
                continue  # an initializer or regularizer object: scanned, shape-neutral
            if k in ("axis", "output_shape") and isinstance(v, list) and len(v) == 1:
                v = v[0]  # Keras writes a one-axis tuple
            out[k] = v
        elif k == "dtype":
            if not policy_ok(v):
                raise RuleError(
                    f"`{label}`: {what} has dtype policy {show(v)}, outside fusec's vocabulary "
                    f"(it accepts {', '.join(sorted(_POLICY_NAMES))})",
                    key,
                    RESAVE,
                )
        elif k.endswith(_OBJECT_SUFFIXES):
            if not (v is None or isinstance(v, (dict, str))):
                raise RuleError(f"`{label}`: {what} has `{k}` {show(v)}", key, RESAVE)
        elif k not in _NEUTRAL or not _NEUTRAL[k](v):
            raise RuleError(
                f"`{label}`: {what} has `{k}` {show(v)}, a setting outside fusec's vocabulary",
                key,
                "fusec computes the sub-model's shapes with its own rules, which do not cover it; " + RESAVE,
            )
    errors = sorted(_validator(kind, name).iter_errors(out), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        at = ".".join(str(p) for p in err.absolute_path) or "config"
        raise RuleError(
            f"`{label}`: {what} has `{at}` outside fusec's vocabulary ({brief_text(err.message)})", key, RESAVE
        )
    return out
