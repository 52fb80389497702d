"""Keras layers for text encoders that Keras itself does not ship (position embeddings).

``PositionEmbedding`` is a registered serializable layer (package ``fusec``),
so a model that uses it saves to ``.keras``, exports as a SavedModel and
reloads with ``keras.models.load_model`` once this module is imported. Its
weight (``embeddings``, shape (sequence_length, features)), config keys and
maths are keras_hub's ``PositionEmbedding``'s, so a keras_hub model's table
loads into it unchanged; unlike keras_hub's, it passes the padding mask of its
input on (its output is added to the masked token embeddings).

A layer rule naming ``keras_home="fusec.keras.text"`` is built from the class
of that name here (``fusec.keras.layers.keras_class``). Importing this module
imports Keras and TensorFlow; only the layer factory (and code that loads
compiled models) imports it, so ``fusec check`` stays free of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .tf import import_keras

keras = import_keras()
ops = keras.ops
_Layer: Any = keras.layers.Layer  # keras is untyped here (Any); name the base class once


@keras.saving.register_keras_serializable(package="fusec")
class PositionEmbedding(_Layer):
    """Learned position embeddings for (batch, T, features) inputs, as keras_hub's layer.

    The output is shaped like the input: row t of the learned table for
    position t, the same for every example (only the input's shape is read).
    Inputs shorter than ``sequence_length`` take the table's first T rows;
    inputs of ``sequence_length`` steps or more take keras_hub's hierarchical
    extension: with a = ``hierarchical_alpha`` and E = (P - a * P[0]) / (1 - a),
    position t gives a * E[t // L] + (1 - a) * E[t % L] (L = sequence_length;
    equal to P[t] up to rounding for t < L; keras_hub's up to L * L steps,
    past which the coarse index stays at L - 1 where keras_hub's lookup fails).

    Args:
        sequence_length: L, the positions learned.
        initializer: the table's initializer (name, config or object).
        hierarchical_alpha: a, the mixing weight of the extension, in [0, 1).
        **kwargs: Keras layer arguments (``name``, ``dtype``...).

    Example:
        >>> tokens = keras.layers.Embedding(100, 16, mask_zero=True)(ids)  # doctest: +SKIP
        >>> x = keras.layers.Add()([tokens, PositionEmbedding(32)(tokens)])  # doctest: +SKIP
    """

    def __init__(
        self,
        sequence_length: int,
        initializer: Any = "glorot_uniform",
        hierarchical_alpha: float = 0.4,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if sequence_length is None or int(sequence_length) < 1:
            raise ValueError(f"sequence_length must be a positive integer. Received: {sequence_length!r}")
        if not 0.0 <= float(hierarchical_alpha) < 1.0:
            raise ValueError(f"hierarchical_alpha must be in [0, 1). Received: {hierarchical_alpha!r}")
        self.sequence_length = int(sequence_length)
        self.hierarchical_alpha = float(hierarchical_alpha)
        self.initializer = keras.initializers.get(initializer)
        self.supports_masking = True  # the output's mask is the input's (compute_mask's default)
        self.embeddings: Any = None

    def build(self, input_shape: Sequence[int | None]) -> None:
        features = input_shape[-1]
        if features is None:
            raise ValueError("PositionEmbedding needs a known last dimension (features)")
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.sequence_length, int(features)),
            initializer=self.initializer,
            trainable=True,
        )

    def _first_rows(self, table: Any, steps: Any) -> Any:
        return ops.slice(table, (0, 0), (steps, ops.shape(table)[1]))

    def _extended(self, table: Any, steps: Any) -> Any:
        alpha, length = self.hierarchical_alpha, self.sequence_length
        rows = (table - alpha * table[:1]) / (1.0 - alpha)
        positions = ops.arange(steps, dtype="int32")
        # keras_hub's lookup fails past L * L steps; a dynamic length that long repeats the last coarse row instead
        coarse = ops.take(rows, ops.minimum(positions // length, length - 1), axis=0)
        fine = ops.take(rows, positions % length, axis=0)
        return alpha * coarse + (1.0 - alpha) * fine

    def call(self, inputs: Any) -> Any:
        shape = ops.shape(inputs)
        steps = shape[-2]
        table = ops.convert_to_tensor(self.embeddings)
        if isinstance(steps, int):  # known when traced: one branch, as keras_hub's
            rows = self._first_rows(table, steps) if steps < self.sequence_length else self._extended(table, steps)
        else:  # a dynamic length: both branches in the graph, chosen at run time
            rows = ops.cond(
                steps < self.sequence_length,
                lambda: self._first_rows(table, steps),
                lambda: self._extended(table, steps),
            )
        return ops.broadcast_to(rows, shape)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        config.update(
            {
                "sequence_length": self.sequence_length,
                "initializer": keras.initializers.serialize(self.initializer),
                "hierarchical_alpha": self.hierarchical_alpha,
            }
        )
        return config
