"""Losses and metrics as data: the tables against Keras, the schema, the build, the static checks."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conftest import ROOT
from fusec.cli import cli
from fusec.errors import FusecError, Problem
from fusec.keras.layers import keras_objective
from fusec.spec.schema import LOSSES, METRICS
from fusec.static.check import check_spec
from fusec.vocab.losses import (
    LOSS_RULES,
    METRIC_RULES,
    Objective,
    final_activation,
    objective_schema,
    objective_text,
    objectives_markdown,
    output_problems,
)
from helpers import spec, write

RULES = [("loss", r) for r in LOSS_RULES.values()] + [("metric", r) for r in METRIC_RULES.values()]
IDS = [f"{kind}-{r.name}" for kind, r in RULES]

# Every name the closed lists accepted before losses and metrics took arguments.
EARLIER_LOSSES = (
    "mean_squared_error", "mse", "mean_absolute_error", "mae", "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error", "huber", "log_cosh", "binary_crossentropy",
    "binary_focal_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy",
    "kl_divergence", "poisson", "cosine_similarity", "hinge", "squared_hinge", "categorical_hinge",
)  # fmt: skip
EARLIER_METRICS = (
    "accuracy", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
    "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy", "binary_crossentropy",
    "categorical_crossentropy", "sparse_categorical_crossentropy", "mean_squared_error", "mse",
    "mean_absolute_error", "mae", "root_mean_squared_error", "mean_absolute_percentage_error",
    "cosine_similarity", "auc", "precision", "recall",
)  # fmt: skip

# A non-default value for every key, valid on a (None, 2) output with labels 0/1.
EXAMPLE_ARGS: dict[str, Any] = {
    "from_logits": True,
    "label_smoothing": 0.1,
    "axis": 1,
    "reduction": "sum",
    "delta": 0.5,
    "alpha": 0.4,
    "gamma": 1.5,
    "apply_class_balancing": True,
    "ignore_class": 0,
    "threshold": 0.3,
    "k": 1,
    "from_sorted_ids": False,  # True would read the output as class ids
    "num_thresholds": 50,
    "curve": "PR",
    "summation_method": "minoring",
    "thresholds": [0.3, 0.7],
    "multi_label": True,
    "num_labels": 2,
    "label_weights": [1.0, 2.0],
    "top_k": 1,
    "class_id": 1,
}


def _example(rule: Objective) -> dict[str, Any]:
    return {"name": rule.name, **{p.name: EXAMPLE_ARGS[p.name] for p in rule.params}}


def _module(keras: Any, kind: str) -> Any:
    return keras.losses if kind == "loss" else keras.metrics


# --- the tables against Keras ---------------------------------------------------


def test_every_earlier_name_is_still_accepted() -> None:
    assert set(EARLIER_LOSSES) <= set(LOSSES) == set(LOSS_RULES)
    assert set(EARLIER_METRICS) <= set(METRICS) == set(METRIC_RULES)


def test_every_key_has_an_example() -> None:
    keys = {p.name for _, r in RULES for p in r.params}
    assert keys <= set(EXAMPLE_ARGS), keys - set(EXAMPLE_ARGS)


@pytest.mark.parametrize(("kind", "rule"), RULES, ids=IDS)
def test_defaults_match_keras_signature(keras: Any, kind: str, rule: Objective) -> None:
    cls = getattr(_module(keras, kind), rule.keras)
    sig = inspect.signature(cls.__init__).parameters
    for p in rule.params:
        assert p.name not in ("name", "dtype", "self"), p.name
        assert p.name in sig, f"{rule.keras} takes no `{p.name}`"
        default = sig[p.name].default
        assert default == p.default and type(default) is type(p.default), (p.name, default, p.default)


@pytest.mark.parametrize(("kind", "rule"), RULES, ids=IDS)
def test_object_form_builds_the_keras_class(keras: Any, kind: str, rule: Objective) -> None:
    import numpy as np

    cls = getattr(_module(keras, kind), rule.keras)
    cls()  # every default is valid
    if not rule.params:
        # Nothing but a name: passed through as the name, for Keras to resolve.
        assert keras_objective(kind, {"name": rule.name}) == rule.name
        return
    value = _example(rule)
    obj = keras_objective(kind, value)
    assert type(obj) is cls
    config = obj.get_config()
    for key, want in value.items():
        # AUC's explicit thresholds set its num_thresholds (their count plus the two ends).
        if key != "name" and key in config and (rule.name, key) != ("auc", "num_thresholds"):
            got = np.asarray(config[key]).tolist()  # tuples, tensors (label_weights)
            assert got == pytest.approx(want), (key, got, want)


def test_names_pass_through(keras: Any) -> None:
    assert keras_objective("loss", "mse") == "mse"
    assert keras_objective("metric", "accuracy") == "accuracy"
    assert keras_objective("loss", {"name": "huber"}) == "huber"
    with pytest.raises(ValueError, match="kind must be one of"):
        keras_objective("optimizer", {"name": "adam", "x": 1})


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*received `from_logits=True`:UserWarning")  # Keras's own check, on purpose here
@pytest.mark.parametrize("kind", ["loss", "metric"])
def test_every_object_form_compiles_and_evaluates(keras: Any, kind: str) -> None:
    """Each loss (or all metrics) with non-default arguments, through ``model.compile`` and one evaluation."""
    import numpy as np

    x = keras.Input((4,), name="x")
    rng = np.random.default_rng(0)
    features = rng.normal(size=(4, 4)).astype("float32")
    for rule in (LOSS_RULES if kind == "loss" else METRIC_RULES).values():
        sparse = rule.name.startswith("sparse")
        y = keras.layers.Dense(2, activation="sigmoid", name="y")(x)
        model = keras.Model(x, {"y": y})
        value = keras_objective(kind, _example(rule))
        if kind == "loss":
            model.compile(optimizer="adam", loss={"y": value})
        else:
            base = "sparse_categorical_crossentropy" if sparse else "binary_crossentropy"
            model.compile(optimizer="adam", loss={"y": base}, metrics={"y": [value]})
        labels = np.array([0, 1, 1, 0]) if sparse else np.eye(2, dtype="float32")[[0, 1, 1, 0]]
        result = model.evaluate(features, {"y": labels}, verbose=0, return_dict=True)
        assert "loss" in result, rule.name


# --- text -------------------------------------------------------------------------


def test_objective_text() -> None:
    assert objective_text("mse") == "mse"
    assert objective_text({"name": "huber"}) == "huber"
    assert (
        objective_text({"name": "sparse_categorical_crossentropy", "from_logits": True})
        == "sparse_categorical_crossentropy(from_logits=true)"
    )
    assert objective_text({"name": "precision", "thresholds": [0.3, 0.7], "class_id": None}) == (
        "precision(thresholds=[0.3, 0.7], class_id=null)"
    )


def test_summary_shows_arguments(tmp_path: Path) -> None:
    from fusec.static.summary import format_summary

    loss = {"name": "binary_crossentropy", "label_smoothing": 0.1}
    doc = spec(outputs={"y": {"from": "y", "loss": loss, "metrics": ["accuracy", {"name": "auc", "curve": "PR"}]}})
    text = format_summary(check_spec(write(tmp_path, doc)))
    assert 'loss binary_crossentropy(label_smoothing=0.1) x 1  metrics accuracy, auc(curve="PR")' in text


def test_diagram_label_shows_arguments() -> None:
    from fusec.render.style import output_label

    label = output_label("y", {"from": "y", "loss": {"name": "huber", "delta": 0.5}, "metrics": ["mae"]})
    assert "loss huber(delta=0.5) × 1.0" in label and "metrics mae" in label


# --- schema -------------------------------------------------------------------------


def _problems(tmp_path: Path, output: dict[str, Any]) -> list[Problem]:
    with pytest.raises(FusecError) as info:
        check_spec(write(tmp_path, spec(outputs={"y": {"from": "y", **output}})))
    return info.value.problems


SCHEMA_CASES = [
    (
        "loss-key-typo",
        {"loss": {"name": "sparse_categorical_crossentropy", "from_logit": True}},
        "$.outputs.y.loss.from_logit",
        "unknown key `from_logit`",
        "did you mean `from_logits`?",
    ),
    (
        "loss-key-of-another-loss",
        {"loss": {"name": "mse", "from_logits": True}},
        "$.outputs.y.loss.from_logits",
        "unknown key `from_logits`",
        "valid keys: `name`, `reduction`",
    ),
    (
        "loss-wrong-type",
        {"loss": 3},
        "$.outputs.y.loss",
        "expected string or object or null. Received: integer 3",
        "",
    ),
    (
        "loss-key-wrong-type",
        {"loss": {"name": "binary_crossentropy", "from_logits": "yes"}},
        "$.outputs.y.loss.from_logits",
        "expected boolean",
        "",
    ),
    ("loss-name-missing", {"loss": {"from_logits": True}}, "$.outputs.y.loss", "missing the required key `name`", ""),
    (
        "loss-name-typo",
        {"loss": {"name": "msee"}},
        "$.outputs.y.loss.name",
        "unknown value for `name` `msee`",
        "did you mean `mse`?",
    ),
    ("loss-string-typo", {"loss": "msee"}, "$.outputs.y.loss", "unknown value for `loss`", "did you mean `mse`?"),
    (
        "reduction-none",
        {"loss": {"name": "mse", "reduction": "none"}},
        "$.outputs.y.loss.reduction",
        "unknown value for `reduction`",
        "`sum_over_batch_size`",
    ),
    (
        "metric-key-typo",
        {"metrics": ["mae", {"name": "auc", "curv": "PR"}]},
        "$.outputs.y.metrics[1].curv",
        "unknown key `curv`",
        "did you mean `curve`?",
    ),
    (
        "metric-name-missing",
        {"metrics": [{"curve": "PR"}]},
        "$.outputs.y.metrics[0]",
        "missing the required key `name`",
        "",
    ),
    (
        "metric-threshold-range",
        {"metrics": [{"name": "precision", "thresholds": [0.5, 2]}]},
        "$.outputs.y.metrics[0].thresholds[1]",
        "must be <= 1",
        "",
    ),
    (
        "metric-wrong-type",
        {"metrics": [{"name": "precision", "thresholds": "high"}]},
        "$.outputs.y.metrics[0].thresholds",
        "expected number or array or null",
        "",
    ),
]


@pytest.mark.parametrize(
    ("output", "path", "fragment", "hint"), [c[1:] for c in SCHEMA_CASES], ids=[c[0] for c in SCHEMA_CASES]
)
def test_schema_problem(tmp_path: Path, output: dict[str, Any], path: str, fragment: str, hint: str) -> None:
    problems = _problems(tmp_path, output)
    assert len(problems) == 1, [p.format(None) for p in problems]
    (p,) = problems
    assert p.jsonpath == path and fragment in p.message, p.format(None)
    assert hint in p.hint, p.hint
    assert p.code == "schema"


@pytest.mark.parametrize(
    "output",
    [
        {"loss": {"name": "sparse_categorical_crossentropy", "from_logits": True, "ignore_class": None}},
        {"loss": {"name": "binary_focal_crossentropy", "apply_class_balancing": True, "alpha": 0.5, "gamma": 1.0}},
        {"loss": {"name": "huber", "delta": 2.0, "reduction": "sum"}},
        {"loss": None, "metrics": ["auc", {"name": "auc", "curve": "PR"}, {"name": "precision", "thresholds": 0.4}]},
        {"loss": "mse", "metrics": [{"name": "recall", "thresholds": [0.2, 0.8], "class_id": None}]},
    ],
)
def test_schema_accepts(tmp_path: Path, output: dict[str, Any]) -> None:
    nodes = {
        "h": {"layer": "Dense", "config": {"units": 4, "activation": "relu"}, "inputs": "x"},
        "y": {"layer": "Dense", "config": {"units": 3}, "inputs": "h"},
    }
    check_spec(write(tmp_path, spec(nodes=nodes, outputs={"y": {"from": "y", **output}})))


def test_check_reports_warnings(tmp_path: Path) -> None:
    """``check_spec`` runs ``output_problems``: a warning does not stop it."""
    checked = check_spec(write(tmp_path, spec(outputs={"y": {"from": "y", "loss": "binary_crossentropy"}})))
    assert [(p.jsonpath, p.severity) for p in checked.warnings] == [("$.outputs.y.loss", "warning")]
    doc = spec(outputs={"y": {"from": "y", "loss": "sparse_categorical_crossentropy"}})
    with pytest.raises(FusecError) as info:
        check_spec(write(tmp_path, doc))
    assert [(p.jsonpath, p.code) for p in info.value.problems] == [("$.outputs.y.loss", "loss")]


def test_schema_branches_documented_with_json_defaults() -> None:
    for kind in ("loss", "metric"):
        schema = objective_schema(kind)
        obj = schema["allOf"][1]["then"]
        assert len(obj["allOf"]) == len(LOSS_RULES if kind == "loss" else METRIC_RULES)
        for branch in obj["allOf"]:
            then = branch["then"]
            assert then["additionalProperties"] is False
            for key, prop in then["properties"].items():
                assert prop.get("title") and prop.get("description"), key
                text = prop["description"]
                assert not any(word in text for word in ("Default: None", "Default: False", "Default: True")), text
    props = objective_schema("loss")["allOf"][1]["then"]["allOf"]
    sparse = next(b for b in props if b["if"]["properties"]["name"]["const"] == "sparse_categorical_crossentropy")
    assert sparse["then"]["properties"]["from_logits"]["description"].endswith("Default: false.")
    assert sparse["then"]["properties"]["ignore_class"]["description"].endswith("Default: null.")


def test_docs_table_is_generated() -> None:
    text = (ROOT / "docs" / "spec.md").read_text()
    for kind in ("loss", "metric"):
        assert objectives_markdown(kind) in text, f"update docs/spec.md from objectives_markdown({kind!r})"


# --- static checks of what breaks training -----------------------------------------


def _check(loss: Any, shape: tuple[int | None, ...], layer: str | None, config: dict[str, Any] | None = None,
           source: str = "y") -> list[Problem]:  # fmt: skip
    return output_problems("out", {"from": source, "loss": loss}, shape, layer, config)


def _one(problems: list[Problem], severity: str, path: str, fragment: str, hint: str) -> None:
    assert len(problems) == 1, [p.format(None) for p in problems]
    (p,) = problems
    assert (p.severity, p.jsonpath, p.code) == (severity, path, "loss"), p
    assert fragment in p.message and "Received:" in p.message, p.message
    assert hint in p.hint, p.hint


def test_sparse_ce_on_one_unit_is_an_error() -> None:
    problems = _check("sparse_categorical_crossentropy", (None, 1), "Dense", {"units": 1, "activation": "sigmoid"})
    _one(problems, "error", "$.outputs.out.loss", "one output unit per class", "binary_crossentropy")
    assert "shape (None, 1) from `y`" in problems[0].message


def test_categorical_ce_on_one_unit_is_an_error() -> None:
    _one(_check("categorical_crossentropy", (None, 1), None), "error", "$.outputs.out.loss", "one output unit", "")


def test_binary_ce_on_softmax_is_an_error() -> None:
    problems = _check({"name": "binary_crossentropy"}, (None, 10), "Dense", {"units": 10, "activation": "softmax"})
    _one(problems, "error", "$.outputs.out.loss", "softmax", "sparse_categorical_crossentropy")


def test_softmax_over_one_unit() -> None:
    problems = _check("binary_crossentropy", (None, 1), "Dense", {"units": 1, "activation": "softmax"})
    _one(problems, "error", "$.outputs.out.loss", "softmax over one unit", "sigmoid")
    problems = _check("mse", (None, 4, 1), "Activation", {"activation": "softmax"})
    _one(problems, "warning", "$.outputs.out.loss", "softmax over one unit", "sigmoid")
    # A Softmax layer over another axis than the last is not over one unit.
    assert _check("mse", (None, 4, 1), "Softmax", {"axis": 1}) == []


def test_axis_outside_the_output_is_an_error() -> None:
    problems = _check({"name": "categorical_crossentropy", "axis": 2}, (None, 3), None)
    _one(problems, "error", "$.outputs.out.loss.axis", "`axis`", "-1")
    _one(_check({"name": "categorical_crossentropy", "axis": 0}, (None, 3), None), "error", "$.outputs.out.loss.axis",
         "batch axis", "")  # fmt: skip


@pytest.mark.parametrize(
    ("loss", "layer", "config", "act"),
    [
        ("sparse_categorical_crossentropy", "Dense", {"units": 10}, "linear"),
        ("categorical_crossentropy", "Dense", {"units": 10, "activation": "relu"}, "relu"),
        ("binary_crossentropy", "Conv1D", {"filters": 10, "kernel_size": 1}, "linear"),
        ({"name": "binary_focal_crossentropy", "from_logits": False}, "Dense", {"units": 10}, "linear"),
        ("categorical_focal_crossentropy", "LayerNormalization", {}, "linear"),
        ("sparse_categorical_crossentropy", "Activation", {"activation": "log_softmax"}, "log_softmax"),
    ],
)
def test_cross_entropy_on_logits_warns(loss: Any, layer: str, config: dict[str, Any], act: str) -> None:
    problems = _check(loss, (None, 10), layer, config)
    _one(problems, "warning", "$.outputs.out.loss", f"activation {act}", '"from_logits": true')


@pytest.mark.parametrize(
    ("layer", "config", "act"),
    [
        ("Dense", {"units": 10, "activation": "softmax"}, "softmax"),
        ("Softmax", {}, "softmax"),
        ("Activation", {"activation": "sigmoid"}, "sigmoid"),
    ],
)
def test_from_logits_on_probabilities_warns(layer: str, config: dict[str, Any], act: str) -> None:
    problems = _check({"name": "categorical_crossentropy", "from_logits": True}, (None, 10), layer, config)
    _one(problems, "warning", "$.outputs.out.loss.from_logits", "treated as logits", f"drop the {act}")


@pytest.mark.parametrize(
    ("loss", "shape", "layer", "config", "source"),
    [
        ("sparse_categorical_crossentropy", (None, 10), "Dense", {"units": 10, "activation": "softmax"}, "y"),
        ({"name": "sparse_categorical_crossentropy", "from_logits": True}, (None, 10), "Dense", {"units": 10}, "y"),
        ("binary_crossentropy", (None, 1), "Dense", {"units": 1, "activation": "sigmoid"}, "y"),
        ("binary_crossentropy", (None, 5), "Dense", {"units": 5, "activation": "sigmoid"}, "y"),
        ("categorical_crossentropy", (None, 5), "Softmax", {}, "y"),
        ("categorical_crossentropy", (None, 5), "Activation", {"activation": "softmax"}, "y"),
        ({"name": "binary_crossentropy", "from_logits": True}, (None, 1), "Dense", {"units": 1}, "y"),
        # What produces the output is unknown: no guess.
        ("binary_crossentropy", (None, 3), None, None, "y"),
        ("sparse_categorical_crossentropy", (None, 3), "Dropout", {"rate": 0.5}, "y"),
        ("categorical_crossentropy", (None, None), None, None, "y"),
        # An LSTM's state is not its activation's output.
        ("binary_crossentropy", (None, 3), "LSTM", {"units": 3}, "enc.1"),
        # Regression and untrained outputs are not checked for logits.
        ("mse", (None, 1), "Dense", {"units": 1}, "y"),
        (None, (None, 1), "Dense", {"units": 1, "activation": "softmax"}, "y"),
    ],
)
def test_sound_outputs_pass(
    loss: Any, shape: tuple[int | None, ...], layer: str | None, config: dict[str, Any] | None, source: str
) -> None:
    assert _check(loss, shape, layer, config, source) == []


def test_an_error_hides_the_warnings_of_its_output() -> None:
    problems = _check("sparse_categorical_crossentropy", (None, 1), "Dense", {"units": 1})
    assert [p.severity for p in problems] == ["error"]


def test_final_activation() -> None:
    assert final_activation("Dense", {"units": 3}) == "linear"
    assert final_activation("Dense", {"units": 3, "activation": "softmax"}) == "softmax"
    assert final_activation("Conv2D", {"filters": 3, "kernel_size": 1, "activation": None}) == "linear"
    assert final_activation("LSTM", {"units": 3}) == "tanh"
    assert final_activation("Softmax", {}) == "softmax"
    assert final_activation("Activation", {"activation": "sigmoid"}) == "sigmoid"
    assert final_activation("Dropout", {"rate": 0.1}) is None
    assert final_activation(None, None) is None
    assert final_activation("NotALayer", {}) is None


# --- end to end -------------------------------------------------------------------


LOGITS_SPEC: dict[str, Any] = spec(
    nodes={
        "h": {"layer": "Dense", "config": {"units": 8, "activation": "relu"}, "inputs": "x"},
        "y": {"layer": "Dense", "config": {"units": 3}, "inputs": "h"},
    },
    outputs={
        "y": {
            "from": "y",
            "loss": {"name": "sparse_categorical_crossentropy", "from_logits": True},
            "metrics": ["accuracy", {"name": "sparse_top_k_categorical_accuracy", "k": 2}],
        }
    },
    training={"optimizer": "adam", "learning_rate": 0.01},
)


@pytest.mark.slow
def test_logits_head_compiles_and_reloads(tmp_path: Path, keras: Any) -> None:
    import numpy as np

    assert _check(LOGITS_SPEC["outputs"]["y"]["loss"], (None, 3), "Dense", {"units": 3}) == []
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["compile", str(write(tmp_path, LOGITS_SPEC)), "-o", str(out)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "fusec.json").read_text())
    model = keras.models.load_model(out / f"{manifest['name']}.keras")
    loss = model.loss["y"] if isinstance(model.loss, dict) else model.loss
    assert loss.get_config()["from_logits"] is True
    x = np.random.default_rng(0).normal(size=(8, 8)).astype("float32")
    history = model.fit(x, {"y": np.arange(8) % 3}, epochs=1, verbose=0)
    assert {"loss", "sparse_top_k_categorical_accuracy"} <= set(history.history), history.history
