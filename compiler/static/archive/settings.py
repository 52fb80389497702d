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
from ...vocab.initializers import from_keras
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
#: Modules Keras writes for each kind of object, by the key suffix that takes it.
_OBJECT_MODULES = {
    "initializer": "keras.initializers",
    "regularizer": "keras.regularizers",
    "constraint": "keras.constraints",
}


def _object_kind(key: str) -> str:
    """``initializer``, ``regularizer`` or ``constraint`` from a key's last word (``kernel_initializer``), else ""."""
    kind = key.rsplit("_", 1)[-1]
    return kind if kind in _OBJECT_MODULES else ""


def translate_object(key: str, value: Any, what: str, label: str, where: str) -> Any:
    """A Keras initializer, regularizer or constraint (serialized) as the fusec value it amounts to.

    A name or None passes through (the schema judges it); a serialized object
    of the right Keras module becomes a fusec name or ``{"name": ..., args}``
    (``vocab/initializers.py``). Anything else is refused, once, naming the
    class and the keys fusec cannot take.

    Raises:
        RuleError: an object of another module or class, or with arguments fusec does not take.
    """
    if value is None or isinstance(value, str):
        return value
    kind = _object_kind(key)
    cls = value.get("class_name") if isinstance(value, dict) else None
    config = value.get("config", {}) if isinstance(value, dict) else None
    module = value.get("module", _OBJECT_MODULES[kind]) if isinstance(value, dict) else None
    if not isinstance(cls, str) or not isinstance(config, dict) or module != _OBJECT_MODULES[kind]:
        raise RuleError(f"`{label}`: {what} has `{key}` {show(value)}, not a Keras {kind}", where, RESAVE)
    out, refused = from_keras(kind, cls, config)
    if out is None:
        raise RuleError(
            f"`{label}`: {what} has `{key}` {cls}, {'an' if kind[0] in 'aeiou' else 'a'} {kind} "
            "outside fusec's vocabulary",
            where,
            RESAVE,
        )
    if refused:
        shown = ", ".join(f"`{k}` {show(config[k])}" for k in refused)
        raise RuleError(f"`{label}`: {what} has `{key}` {cls} with {shown}, outside fusec's vocabulary", where, RESAVE)
    return out


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


def _undeclared_object(k: str, v: Any, what: str, label: str, key: str) -> None:
    """An object key the rule does not declare: an initializer is dropped (shape-neutral); a penalty or
    constraint would change training, so only None passes."""
    if _object_kind(k) == "initializer":
        translate_object(k, v, what, label, key)  # refused when it is no initializer fusec knows
    elif v is not None:
        raise RuleError(
            f"`{label}`: {what} has `{k}` {show(v)}, a setting fusec does not take for this layer",
            key,
            "fusec would train the layer without it; " + RESAVE,
        )


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

    Keys fusec declares are kept, Keras's serialized initializers,
    regularizers and constraints translated into fusec's forms
    (``translate_object``), and validated with the spec's own schema; other
    keys must hold a neutral value (``_NEUTRAL``), be an initializer (dropped:
    it changes no shape), a None regularizer or constraint, or a dtype
    policy fusec accepts.
    """
    if not isinstance(cfg, dict):
        raise RuleError(f"`{label}`: {what} has no config object", key, RESAVE)
    out: dict[str, Any] = {}
    for k, v in cfg.items():
        if k in params:
            if _object_kind(k):
                v = translate_object(k, v, what, label, key)
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
        elif _object_kind(k):
            _undeclared_object(k, v, what, label, key)
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
