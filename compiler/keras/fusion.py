"""The Keras layers behind the ``weighted`` and ``gated`` merges.

Both are registered serializable layers (package ``fusec``), so a model that
uses them saves to ``.keras``, exports as a SavedModel and reloads with
``keras.models.load_model`` once this module is imported. Each computes its
merge as one stacked tensor operation: the inputs are stacked once and mixed
by a single contraction, never by a Python loop of layers.

A merge whose rule names ``keras_home="fusec.keras.fusion"`` is built from
the class of that name here (``fusec.keras.layers.keras_class``): a new merge
that Keras has no layer for adds its class here and its entry in
``vocab/merges.py``, nothing else.

Importing this module imports Keras and TensorFlow; only the layer factory
(and code that loads compiled models) imports it, so ``fusec check`` stays
free of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .tf import import_keras

keras = import_keras()
ops = keras.ops
_Layer: Any = keras.layers.Layer  # keras is untyped here (Any); name the base class once

NORMALIZE = ("softmax", "sum", "none")


def _merged_shape(shapes: Sequence[Sequence[int | None]]) -> tuple[int | None, ...]:
    """The common shape of same-shaped inputs: an axis unknown in any input is unknown (as merges.py)."""
    return tuple(None if None in dims else dims[0] for dims in zip(*shapes, strict=True))


@keras.saving.register_keras_serializable(package="fusec")
class WeightedMerge(_Layer):
    """Learned weighted average of N inputs of one shape (learned late fusion).

    The raw weights ``logits`` have shape (N,), or (N, F) with
    ``per_feature`` (F: the inputs' last axis). They are normalised over the
    N inputs by ``normalize``:

    - ``softmax``: w = softmax(logits), positive and summing to 1;
    - ``sum``: w = relu(logits) / max(sum(relu(logits)), epsilon) (the "fast
      normalised fusion" of EfficientDet: no exponentials, and the floor keeps
      the division finite when every weight is driven to zero);
    - ``none``: w = logits, a free linear combination.

    The initial weights are equal (zero logits for softmax, ones for sum,
    1/N for none), so an untrained merge is exactly ``average``.

    Args:
        normalize: ``softmax``, ``sum`` or ``none``.
        per_feature: one weight per input per feature of the last axis.
        epsilon: floor of the denominator for ``sum``.
        input_ids: the spec ids of the inputs, in order (for ``learned_weights``).
        **kwargs: Keras layer arguments (``name``, ``dtype``...).

    Example:
        >>> merge = WeightedMerge(name="fuse")  # doctest: +SKIP
        >>> y = merge([image_probs, text_probs])  # doctest: +SKIP
    """

    def __init__(
        self,
        normalize: str = "softmax",
        per_feature: bool = False,
        epsilon: float = 1e-4,
        input_ids: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if normalize not in NORMALIZE:
            raise ValueError(f"normalize must be one of {NORMALIZE}. Received: {normalize!r}")
        self.normalize = normalize
        self.per_feature = bool(per_feature)
        self.epsilon = float(epsilon)
        self.input_ids = list(input_ids) if input_ids else None
        self.logits: Any = None

    def build(self, input_shape: Sequence[Sequence[int | None]]) -> None:
        n = len(input_shape)
        if n < 2:
            raise ValueError(f"WeightedMerge needs at least 2 inputs. Received: {n}")
        shape: tuple[int, ...] = (n,)
        if self.per_feature:
            features = input_shape[0][-1]
            if features is None:
                raise ValueError("WeightedMerge(per_feature=True) needs a known last dimension")
            shape = (n, int(features))
        init = {"softmax": 0.0, "sum": 1.0, "none": 1.0 / n}[self.normalize]
        self.logits = self.add_weight(
            name="logits", shape=shape, initializer=keras.initializers.Constant(init), trainable=True
        )

    def normalized_weights(self) -> Any:
        """The mixing weights: shape (N,) or (N, F), normalised over the N inputs."""
        w = self.logits
        if self.normalize == "softmax":
            return ops.softmax(w, axis=0)
        if self.normalize == "sum":
            w = ops.relu(w)
            return w / ops.maximum(ops.sum(w, axis=0, keepdims=True), self.epsilon)
        return ops.convert_to_tensor(w)

    def call(self, inputs: Sequence[Any]) -> Any:
        # Stacking on a new leading axis copies each input as one contiguous
        # block; the mix is then one contraction over that axis.
        x = ops.stack(list(inputs), axis=0)  # (N, batch, ..., F)
        w = ops.cast(self.normalized_weights(), x.dtype)
        if self.per_feature:
            w = ops.reshape(w, (w.shape[0],) + (1,) * (len(x.shape) - 2) + (w.shape[1],))
            return ops.sum(x * w, axis=0)
        return ops.tensordot(w, x, axes=1)

    def compute_output_shape(self, input_shape: Sequence[Any]) -> Any:
        return _merged_shape(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "normalize": self.normalize,
            "per_feature": self.per_feature,
            "epsilon": self.epsilon,
            "input_ids": self.input_ids,
        }


@keras.saving.register_keras_serializable(package="fusec")
class GatedMerge(_Layer):
    """Mixture of experts: out = sum over i of gate[:, i] * expert_i.

    Called as ``layer(experts, gate)``: a list of L tensors of one shape
    (batch, ...) and a gate of shape (batch, L). No weights.

    Args:
        softmax: apply softmax to the gate first. False by default because
            a gate usually already ends in a softmax; set it when the gate
            ends in a linear layer (its outputs are then logits).
        top_k: keep only the k largest gate values per example and divide
            them by their sum (a sparse mixture). With softmax this equals a
            softmax over the k largest logits. Assumes a non-negative gate.
        epsilon: floor of that sum, so an all-zero gate gives zeros, not NaN.
        **kwargs: Keras layer arguments.
    """

    def __init__(self, softmax: bool = False, top_k: int | None = None, epsilon: float = 1e-7, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if top_k is not None and int(top_k) < 1:
            raise ValueError(f"top_k must be at least 1. Received: {top_k}")
        self.softmax = bool(softmax)
        self.top_k = None if top_k is None else int(top_k)
        self.epsilon = float(epsilon)

    def gate_weights(self, gate: Any, n_experts: int | None = None) -> Any:
        """The mixing weights (batch, L) the layer applies for a raw gate tensor."""
        g = ops.softmax(gate, axis=-1) if self.softmax else gate
        n = g.shape[-1] or n_experts
        if self.top_k is not None and n is not None and self.top_k < n:
            _, idx = ops.top_k(g, self.top_k)
            # Exactly k per row, even with ties (a >= threshold mask could keep more).
            mask = ops.sum(ops.one_hot(idx, n, dtype=g.dtype), axis=1)
            g = g * mask
            g = g / ops.maximum(ops.sum(g, axis=-1, keepdims=True), self.epsilon)
        return g

    def call(self, experts: Sequence[Any], gate: Any) -> Any:
        n = len(experts)
        shape = ops.shape(experts[0])
        # (batch, L, rest): each example's experts side by side, the layout of
        # the seed's Concatenate + Reshape, flattened past the expert axis.
        x = ops.reshape(ops.stack(list(experts), axis=1), (shape[0], n, -1))
        g = ops.cast(self.gate_weights(gate, n), x.dtype)
        # One batched (1, L) @ (L, rest) product. A matmul, not einsum: TF's
        # einsum with an ellipsis was 3-7x slower here, and Dot's batch_dot
        # transposes first.
        out = ops.matmul(ops.expand_dims(g, 1), x)  # (batch, 1, rest)
        return ops.reshape(out, shape)

    def compute_output_shape(self, experts_shape: Sequence[Any], gate_shape: Any) -> Any:
        return _merged_shape(experts_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "softmax": self.softmax, "top_k": self.top_k, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="fusec")
class LayerScale(_Layer):
    """Per-channel learned scale: ``x * gamma``, gamma of shape (C,) starting at ``init_values``.

    The maths and the one weight of ``keras.src.applications.convnext.LayerScale``
    (ConvNeXt), whose weights therefore load into it unchanged.

    Args:
        init_values: the initial value of every gamma.
        projection_dim: the channels C (None: the input's last axis).
        **kwargs: Keras layer arguments.
    """

    def __init__(self, init_values: float = 1e-6, projection_dim: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.init_values = float(init_values)
        self.projection_dim = None if projection_dim is None else int(projection_dim)
        self.gamma: Any = None

    def build(self, input_shape: Sequence[int | None]) -> None:
        channels = self.projection_dim or input_shape[-1]
        if channels is None:
            raise ValueError("LayerScale needs a known last dimension")
        self.gamma = self.add_weight(
            name="gamma", shape=(int(channels),), initializer=keras.initializers.Constant(self.init_values)
        )

    def call(self, x: Any) -> Any:
        return x * self.gamma

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "init_values": self.init_values, "projection_dim": self.projection_dim}


@keras.saving.register_keras_serializable(package="fusec")
class StochasticDepth(_Layer):
    """Drops each example's whole input with probability ``rate`` while training (stochastic depth).

    Applied to a residual branch before it is added to the shortcut: in
    training each example's branch is kept with probability ``1 - rate`` and
    scaled by ``1 / (1 - rate)``, else zeroed; at inference it is the
    identity. The same as ``Dropout(rate, noise_shape=(None, 1, ..., 1))``.

    Args:
        rate: the probability of dropping an example's branch, in [0, 1).
        seed: seed of the drops (None: Keras's global seed).
        **kwargs: Keras layer arguments.
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0 <= float(rate) < 1:
            raise ValueError(f"rate must be in [0, 1). Received: {rate}")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x: Any, training: bool = False) -> Any:
        if not training or self.rate == 0:
            return x
        keep = 1.0 - self.rate
        shape = (ops.shape(x)[0],) + (1,) * (len(x.shape) - 1)
        draw = keras.random.uniform(shape, seed=self.seed_generator, dtype=x.dtype)
        return x * ops.floor(keep + draw) / keep

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


#: ScalarOp's operations (``vocab/layers/scale.py``), as Keras ops.
SCALAR_OPS = {
    "add": ops.add,
    "subtract": ops.subtract,
    "multiply": ops.multiply,
    "divide": ops.divide,
    "power": ops.power,
    "maximum": ops.maximum,
    "minimum": ops.minimum,
}


@keras.saving.register_keras_serializable(package="fusec")
class ScalarOp(_Layer):
    """An element-wise operation with a constant: ``x op value`` (or ``value op x`` with ``reverse``).

    What Keras applications write as raw ``x + 3.0`` or ``x * (1 / 6)`` in a
    functional graph, as a layer. Any numeric input is computed in the
    layer's float type.

    Args:
        op: one of ``SCALAR_OPS``.
        value: the constant.
        reverse: compute ``value op x``.
        **kwargs: Keras layer arguments.
    """

    def __init__(self, op: str, value: float, reverse: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if op not in SCALAR_OPS:
            raise ValueError(f"op must be one of {sorted(SCALAR_OPS)}. Received: {op!r}")
        self.op = op
        self.value = float(value)
        self.reverse = bool(reverse)

    def call(self, x: Any) -> Any:
        x = ops.cast(x, self.compute_dtype)
        c = ops.convert_to_tensor(self.value, dtype=self.compute_dtype)
        fn = SCALAR_OPS[self.op]
        return fn(c, x) if self.reverse else fn(x, c)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "op": self.op, "value": self.value, "reverse": self.reverse}
