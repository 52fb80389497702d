"""The metrics a spec may name: one ``Objective`` per name (see ``objective.py``)."""

from __future__ import annotations

from .objective import (
    Objective,
    class_axis,
    class_id,
    from_logits,
    ignore_class,
    label_smoothing,
    metric,
    thresholds,
    top_k,
    top_k_hits,
)
from .rule import Param, p_bool, p_enum, p_float, p_int

#: Every metric, by its spec name.
METRIC_RULES: dict[str, Objective] = {
    r.name: r
    for r in (
        metric(
            "accuracy",
            "Accuracy",
            "How often the prediction is right; Keras picks the binary, categorical or sparse kind that fits the loss.",
        ),
        metric(
            "binary_accuracy",
            "BinaryAccuracy",
            "How often a yes/no prediction is right.",
            (p_float("threshold", "Scores above it count as yes (0 for logits).", 0.5),),
        ),
        metric("categorical_accuracy", "CategoricalAccuracy", "How often the top class matches a one-hot label."),
        metric(
            "sparse_categorical_accuracy",
            "SparseCategoricalAccuracy",
            "How often the top class matches an integer label.",
        ),
        metric(
            "top_k_categorical_accuracy",
            "TopKCategoricalAccuracy",
            "How often a one-hot label is among the k top classes.",
            (top_k_hits(),),
        ),
        metric(
            "sparse_top_k_categorical_accuracy",
            "SparseTopKCategoricalAccuracy",
            "How often an integer label is among the k top classes.",
            (
                top_k_hits(),
                p_bool(
                    "from_sorted_ids",
                    "True when the output already holds class ids sorted by score, not scores.",
                    False,
                ),
            ),
        ),
        metric(
            "binary_crossentropy",
            "BinaryCrossentropy",
            "Binary cross-entropy, reported.",
            (from_logits("metric"), label_smoothing(0)),
        ),
        metric(
            "categorical_crossentropy",
            "CategoricalCrossentropy",
            "Categorical cross-entropy, reported.",
            (from_logits("metric"), label_smoothing(0), class_axis()),
        ),
        metric(
            "sparse_categorical_crossentropy",
            "SparseCategoricalCrossentropy",
            "Sparse categorical cross-entropy, reported.",
            (from_logits("metric"), ignore_class(), class_axis()),
        ),
        metric("mean_squared_error", "MeanSquaredError", "Mean squared error."),
        metric("mse", "MeanSquaredError", "Alias of mean_squared_error."),
        metric("mean_absolute_error", "MeanAbsoluteError", "Mean absolute error."),
        metric("mae", "MeanAbsoluteError", "Alias of mean_absolute_error."),
        metric("root_mean_squared_error", "RootMeanSquaredError", "Root of the mean squared error."),
        metric(
            "mean_absolute_percentage_error",
            "MeanAbsolutePercentageError",
            "Mean absolute error as a percentage of the label.",
        ),
        metric("cosine_similarity", "CosineSimilarity", "Cosine similarity of label and prediction.", (class_axis(),)),
        metric(
            "auc",
            "AUC",
            "Area under the ROC or precision-recall curve.",
            (
                p_int("num_thresholds", "How many thresholds discretise the curve.", 200, minimum=2, maximum=10_000),
                p_enum("curve", "ROC, or PR for the precision-recall curve.", ("ROC", "PR"), "ROC"),
                p_enum(
                    "summation_method",
                    "How the area is summed: interpolation, minoring (lower bound) or majoring (upper bound).",
                    ("interpolation", "minoring", "majoring"),
                    "interpolation",
                ),
                Param(
                    "thresholds",
                    {
                        "type": "array",
                        "items": {"type": "number", "minimum": 0, "maximum": 1},
                        "minItems": 1,
                        "maxItems": 10_000,
                    },
                    "The thresholds to use, in [0, 1] (replaces num_thresholds); null: evenly spaced.",
                    None,
                ),
                p_bool("multi_label", "True: one curve per label, averaged (multi-label outputs).", False),
                Param(
                    "num_labels",
                    {"type": "integer", "minimum": 1, "maximum": 4096},
                    "The number of labels, with multi_label; null: taken from the first batch.",
                    None,
                ),
                Param(
                    "label_weights",
                    {"type": "array", "items": {"type": "number", "minimum": 0}, "minItems": 1, "maxItems": 4096},
                    "Non-negative weight per label; null: equal weights.",
                    None,
                ),
                from_logits("metric"),
            ),
        ),
        metric(
            "precision",
            "Precision",
            "Fraction of positive predictions that are right.",
            (thresholds(), top_k(), class_id()),
        ),
        metric(
            "recall",
            "Recall",
            "Fraction of positive labels that are found.",
            (thresholds(), top_k(), class_id()),
        ),
    )
}

METRICS: tuple[str, ...] = tuple(METRIC_RULES)
