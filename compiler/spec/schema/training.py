"""The schema of the ``training`` section: how the model trains."""

from __future__ import annotations

from typing import Any

#: The optimizers a spec may name (Keras's string names).
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad", "adadelta", "adamax", "nadam", "lion", "ftrl")


def _doc(schema: dict[str, Any], title: str, description: str) -> dict[str, Any]:
    return {"title": title, "description": description, **schema}


def training_schema() -> dict[str, Any]:
    """The ``training`` section: the optimizer (model.compile) and the defaults of `fusec fit`."""
    return {
        "type": "object",
        "title": "training",
        "description": "How the model trains: the optimizer (model.compile) and the defaults of `fusec fit`.",
        "properties": {
            "optimizer": _doc(
                {"type": "string", "enum": list(OPTIMIZERS)}, "optimizer", "Optimizer by name. Default: adam."
            ),
            "learning_rate": _doc(
                {"type": "number", "exclusiveMinimum": 0, "maximum": 10},
                "learning_rate",
                "Learning rate. Default: the optimizer's own (0.001 for adam).",
            ),
            "clipnorm": _doc({"type": "number", "exclusiveMinimum": 0}, "clipnorm", "Clip each gradient to this norm."),
            "weight_decay": _doc(
                {"type": "number", "minimum": 0, "maximum": 1}, "weight_decay", "Decoupled weight decay."
            ),
            "epochs": _doc(
                {"type": "integer", "minimum": 1, "maximum": 1000000},
                "epochs",
                "Passes over the training data for `fusec fit` (its --epochs wins). Default: 10.",
            ),
            "batch_size": _doc(
                {"type": "integer", "minimum": 1, "maximum": 1048576},
                "batch_size",
                "Examples per step, over all devices and workers, for `fusec fit` "
                "(its --batch-size wins). Default: 32.",
            ),
            "validation_split": _doc(
                {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                "validation_split",
                "Fraction of the training data (its last examples, as Keras takes them) held out for validation "
                "when `fusec fit` has no --validation file.",
            ),
            "early_stopping": _doc(
                {"type": "integer", "minimum": 1, "maximum": 100000},
                "early_stopping",
                "Stop `fusec fit` after this many epochs without a lower validation loss, and keep the best "
                "epoch's weights (its --early-stopping wins).",
            ),
        },
        "additionalProperties": False,
    }
