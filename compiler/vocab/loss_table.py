"""The losses a spec may name: one ``Objective`` per name (see ``objective.py``)."""

from __future__ import annotations

from .objective import (
    Objective,
    alpha,
    class_axis,
    from_logits,
    gamma,
    ignore_class,
    label_smoothing,
    loss,
)
from .rule import p_bool, p_float

_CE = (from_logits(), label_smoothing(0.0), class_axis())

#: Every loss, by its spec name.
LOSS_RULES: dict[str, Objective] = {
    r.name: r
    for r in (
        loss("mean_squared_error", "MeanSquaredError", "Mean of squared differences (regression)."),
        loss("mse", "MeanSquaredError", "Alias of mean_squared_error."),
        loss("mean_absolute_error", "MeanAbsoluteError", "Mean of absolute differences (regression)."),
        loss("mae", "MeanAbsoluteError", "Alias of mean_absolute_error."),
        loss(
            "mean_absolute_percentage_error",
            "MeanAbsolutePercentageError",
            "Mean absolute difference as a percentage of the label.",
        ),
        loss(
            "mean_squared_logarithmic_error",
            "MeanSquaredLogarithmicError",
            "Mean squared difference of log(1 + x): relative errors.",
        ),
        loss(
            "huber",
            "Huber",
            "Squared error near 0, absolute error beyond delta (robust regression).",
            p_float("delta", "Where the loss turns from quadratic to linear.", 1.0, minimum=0),
        ),
        loss("log_cosh", "LogCosh", "log(cosh(error)): like Huber, smooth everywhere."),
        loss(
            "binary_crossentropy",
            "BinaryCrossentropy",
            "Cross-entropy of independent yes/no labels (a sigmoid output per label).",
            *_CE,
        ),
        loss(
            "binary_focal_crossentropy",
            "BinaryFocalCrossentropy",
            "Binary cross-entropy that down-weights easy examples (imbalanced labels).",
            p_bool(
                "apply_class_balancing",
                "Weight positives by alpha and negatives by 1 - alpha.",
                False,
            ),
            alpha(0.25),
            gamma(2.0),
            *_CE,
        ),
        loss(
            "categorical_crossentropy",
            "CategoricalCrossentropy",
            "Cross-entropy of one-hot labels (a softmax output, one unit per class).",
            *_CE,
        ),
        loss(
            "categorical_focal_crossentropy",
            "CategoricalFocalCrossentropy",
            "Categorical cross-entropy that down-weights easy examples (imbalanced classes).",
            alpha(0.25),
            gamma(2.0),
            *_CE,
        ),
        loss(
            "sparse_categorical_crossentropy",
            "SparseCategoricalCrossentropy",
            "Cross-entropy of integer class ids (a softmax output, one unit per class).",
            from_logits(),
            ignore_class(),
            class_axis(),
        ),
        loss("kl_divergence", "KLDivergence", "Kullback-Leibler divergence of label and predicted distributions."),
        loss("poisson", "Poisson", "Poisson negative log-likelihood (counts)."),
        loss(
            "cosine_similarity",
            "CosineSimilarity",
            "Negative cosine similarity of label and prediction vectors.",
            class_axis(),
        ),
        loss("hinge", "Hinge", "Hinge loss of labels in {-1, 1} (or {0, 1})."),
        loss("squared_hinge", "SquaredHinge", "Squared hinge loss of labels in {-1, 1} (or {0, 1})."),
        loss("categorical_hinge", "CategoricalHinge", "Hinge loss of one-hot labels."),
    )
}

LOSSES: tuple[str, ...] = tuple(LOSS_RULES)

#: The cross-entropies, by the labels they read.
BINARY = ("binary_crossentropy", "binary_focal_crossentropy")
CATEGORICAL = ("categorical_crossentropy", "categorical_focal_crossentropy")
SPARSE = ("sparse_categorical_crossentropy",)
CROSS_ENTROPIES = (*BINARY, *CATEGORICAL, *SPARSE)
