"""``config.json``, every object of it, against a closed allow-list of classes per module.

Every dict naming a ``class_name``, ``module`` or ``registered_name``, at any
depth (nested models, wrapped and backward layers, initializers,
regularizers, constraints, dtype policies, the compile config), must be a
class of the allow-list for its module, and no serialized function may
appear. This runs before the graph is read or any weights parsed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from ...errors import RuleError
from ...vocab.layers import LAYERS, REFUSED
from ...vocab.merges import MERGES
from .base import MAX_CONFIG_VALUES
from .masks import MASK_OPS

KERAS_MERGES = {rule.keras: name for name, rule in MERGES.items()}
#: Keras layers fusec writes itself besides the vocabulary: ``Identity`` names a model output (build.py).
PASS_THROUGH = frozenset({"Identity"})
#: Keras ops a functional graph may hold (``x + 3``, ``x * y``): class -> fusec's name for the operation.
KERAS_OPS = {
    "Add": "add", "Subtract": "subtract", "Multiply": "multiply", "Divide": "divide", "TrueDivide": "divide",
    "Power": "power", "Maximum": "maximum", "Minimum": "minimum",
}  # fmt: skip
OPS_MODULE = "keras.src.ops.numpy"
#: Layers of keras.applications that are not in keras.layers: module -> classes.
APPLICATION_LAYERS = {
    "keras.src.applications.convnext": frozenset({"LayerScale"}),
    "keras.src.applications.inception_resnet_v2": frozenset({"CustomScaleLayer"}),
}
_KERAS_LAYERS = frozenset(r.keras for r in (*LAYERS.values(), *MERGES.values()) if r.keras_home == "keras.layers")
_LAYER_CLASSES = frozenset({*_KERAS_LAYERS, *PASS_THROUGH, "InputLayer"})
#: fusec's own Keras layers outside keras.layers, by the module they live in (``fusec.keras.fusion``...).
_OWN_HOMES: dict[str, frozenset[str]] = {
    home: frozenset(r.keras for r in (*LAYERS.values(), *MERGES.values()) if r.keras_home == home)
    for home in {r.keras_home for r in (*LAYERS.values(), *MERGES.values())} - {"keras.layers"}
}
MODEL_CLASSES = frozenset({"Functional", "Sequential", "Model"})
POLICIES = frozenset({"DTypePolicy", "FloatDTypePolicy"})
_INITIALIZERS = frozenset(
    {
        "Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "Identity", "LecunNormal",
        "LecunUniform", "Ones", "Orthogonal", "RandomNormal", "RandomUniform", "TruncatedNormal",
        "VarianceScaling", "Zeros",
    }
)  # fmt: skip
_REGULARIZERS = frozenset({"L1", "L2", "L1L2", "OrthogonalRegularizer"})
_CONSTRAINTS = frozenset({"MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm"})
_OPTIMIZERS = frozenset(
    {"Adam", "AdamW", "SGD", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam", "Lion", "Ftrl", "LossScaleOptimizer"}
)
_SCHEDULES = frozenset(
    {"ExponentialDecay", "PiecewiseConstantDecay", "PolynomialDecay", "InverseTimeDecay", "CosineDecay",
     "CosineDecayRestarts"}
)  # fmt: skip

#: fusec's own Keras layers (the merges and layers Keras has none for), from the rules.
_FUSEC_LAYERS = _OWN_HOMES.get("fusec.keras.fusion", frozenset())


@lru_cache(maxsize=1)
def allowed_classes() -> dict[str, frozenset[str]]:
    """Module -> the classes an archive may name in it. Any other module is refused."""
    from ...vocab.losses import LOSS_RULES, METRIC_RULES

    losses = frozenset(r.keras for r in LOSS_RULES.values())
    metrics = frozenset({r.keras for r in METRIC_RULES.values()} | {"MeanMetricWrapper", "Mean"})
    return {
        "keras.layers": _LAYER_CLASSES,
        "keras": MODEL_CLASSES | POLICIES,
        "keras.models": MODEL_CLASSES,
        "keras.src.models.functional": frozenset({"Functional"}),
        "keras.src.models.sequential": frozenset({"Sequential"}),
        "keras.src.models.model": frozenset({"Model"}),
        "keras.initializers": _INITIALIZERS,
        "keras.regularizers": _REGULARIZERS,
        "keras.constraints": _CONSTRAINTS,
        "keras.optimizers": _OPTIMIZERS,
        "keras.optimizers.schedules": _SCHEDULES,
        "keras.losses": losses,
        "keras.metrics": metrics,
        **_OWN_HOMES,
        **{module: frozenset(ops) for module, ops in MASK_OPS.items()},
        OPS_MODULE: frozenset(KERAS_OPS) | frozenset(MASK_OPS[OPS_MODULE]),
        **APPLICATION_LAYERS,
        # where fusec's own layers lived before the subpackages: archives compiled then still load
        "fusec.fusion": _FUSEC_LAYERS,
    }


#: Serialized values Keras writes without a module: a tensor reference in a
#: layer call, and a tuple.
_SPECIAL = frozenset({"__keras_tensor__", "__tuple__"})
_FUSEC_REGISTERED = {f"fusec>{cls}": cls for classes in _OWN_HOMES.values() for cls in classes}
#: How a Keras op outside fusec's reading (the arithmetic of ``KERAS_OPS``, the padding masks of ``masks``) is named.
_AN_OP = "Keras op"
_FUNCTION_KEYS = ("function", "function_type", "output_shape_type")


def _where(chain: Any) -> str:
    """A JSON path from a (parent, key) chain built while walking."""
    parts: list[str] = []
    while chain is not None:
        chain, k = chain
        parts.append(f"[{k}]" if isinstance(k, int) else f".{k}")
    return "config" + "".join(reversed(parts))


def scan_config(config: Any, label: str, key: str = "model") -> None:
    """Walk every value of an archive's config and refuse what Keras could turn into code.

    Every dict naming a ``class_name``, ``module`` or ``registered_name``, at
    any depth, must name a class of the allow-list for its module (layers of
    fusec's vocabulary, Keras's model classes, initializers, regularizers,
    constraints, dtype policies, optimizers, losses and metrics); a
    ``registered_name`` must be the class's own or one of fusec's fusion
    layers; no serialized function may appear. The walk is iterative and
    bounded in values and depth.

    Raises:
        RuleError: listing the first things refused, with where they are.
    """
    classes = allowed_classes()
    found: list[str] = []
    shared: dict[Any, str] = {}
    count = 0
    stack: list[tuple[Any, Any, int]] = [(config, None, 0)]
    while stack:
        node, chain, depth = stack.pop()
        count += 1
        if count > MAX_CONFIG_VALUES or depth > 200:
            what = f"more than {MAX_CONFIG_VALUES:,} values" if count > MAX_CONFIG_VALUES else "values nested too deep"
            raise RuleError(f"`{label}`'s config.json holds {what}", key, "use a smaller sub-model")
        if isinstance(node, dict):
            _judge(node, chain, classes, found)
            if "shared_object_id" in node:
                _judge_shared(node, chain, shared, found)
            stack.extend((v, (chain, k), depth + 1) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, (chain, i), depth + 1) for i, v in enumerate(node))
        if len(found) >= 20:
            break
    if found:
        an_op = any(_AN_OP in f for f in found)
        raise RuleError(
            f"`{label}` holds classes fusec will not load: {', '.join(found[:3])}"
            + (f" (and {len(found) - 3} more)" if len(found) > 3 else ""),
            key,
            "fusec reads Keras's arithmetic on tensors (`x + y`, `x * 3`) and the padding masks Keras computes "
            "from an Embedding with `mask_zero`, no other op"
            if an_op
            else "only layers of fusec's vocabulary may appear in a sub-model (no Lambda, no custom code)",
        )


def _judge(node: dict[str, Any], chain: Any, classes: Mapping[str, frozenset[str]], found: list[str]) -> None:
    """Note what is refused in one dict: a class off the allow-list, a serialized function."""
    if any(k in node for k in ("class_name", "module", "registered_name")):
        _judge_class(node, chain, classes, found)
    for k in _FUNCTION_KEYS:
        if k in node:
            found.append(f"a serialized function (`{k}`) at {_where(chain)}")


def _judge_shared(node: dict[str, Any], chain: Any, shared: dict[Any, str], found: list[str]) -> None:
    """Note a shared-object id Keras would resolve to an object other than the one this config describes.

    Keras's loader builds the first object carrying an id and hands that same
    object back for every later config with the id, ignoring what those
    configs say. Keras writes the id on stateless objects seen twice (one
    activation or initializer object given to two layers), whose configs are
    then equal. A layer or model with an id would stand for another one (with
    other weights and shapes than its config claims), and configs that differ
    under one id would be read as something other than what they say: both
    are refused.
    """
    where = _where(chain)
    ident = node["shared_object_id"]
    cls = node.get("class_name")
    module = node.get("module")
    layerish = (
        module in ("keras.layers", "keras.models")
        or cls in MODEL_CLASSES
        or (cls in _LAYER_CLASSES and module != "keras.initializers")
    )
    if layerish or (chain is not None and chain[1] in ("layers", "layer", "forward_layer", "backward_layer", "cell")):
        found.append(f"a layer or model standing for another (`shared_object_id`) at {where}")
        return
    if not isinstance(ident, int) or isinstance(ident, bool):
        found.append(f"a `shared_object_id` that is not a number at {where}")
        return
    body = json.dumps({k: v for k, v in node.items() if k != "shared_object_id"}, sort_keys=True, default=str)
    if shared.setdefault(ident, body) != body:
        found.append(f"an object standing for a different one (`shared_object_id` {ident}) at {where}")


def _judge_class(node: dict[str, Any], chain: Any, classes: Mapping[str, frozenset[str]], found: list[str]) -> None:
    """Note a class the allow-list does not name for its module, or a custom registered name."""
    cls, module, registered = node.get("class_name"), node.get("module"), node.get("registered_name")
    where = _where(chain)
    if not isinstance(cls, str):
        found.append(f"an object without a class name at {where}")
        return
    layerish = module == "keras.layers" or cls in REFUSED or (chain is not None and chain[1] in ("layer", "layers"))
    if module is None:
        if cls not in _SPECIAL:
            kind = "layer" if layerish else "class"
            found.append(f"{kind} `{cls}` without a module (a legacy format) at {where}")
    elif isinstance(module, str) and module.startswith("keras.src.ops") and cls not in classes.get(module, ()):
        found.append(f"{_AN_OP} `{cls}` at {where}")
    elif not isinstance(module, str) or module not in classes:
        found.append(f"module `{module}` at {where}")
    elif cls not in classes[module]:
        found.append(f"layer `{cls}` at {where}" if layerish else f"class `{cls}` of `{module}` at {where}")
    if registered is not None and registered != cls and _FUSEC_REGISTERED.get(str(registered)) != cls:
        found.append(f"custom object `{registered}` at {where}")
