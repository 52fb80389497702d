"""The TensorFlow side of the data package: element specs, stored values as tensors, (x, y) pairs.

Every function here imports TensorFlow (through ``fusec.keras.tf``, quietly)
when called; importing the module does not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from .check import Stored
from .fields import Field

#: Rows per chunk when TensorFlow parses text lines or records in bulk.
PARSE_BATCH = 1024


def tf() -> Any:
    """The ``tensorflow`` module, imported once, quietly."""
    from ..keras.tf import import_keras

    import_keras()
    import tensorflow

    return tensorflow


def storage_dtype(field: Field) -> Any:
    """The TensorFlow type values are stored and streamed in (bfloat16 travels as float32)."""
    return tf().as_dtype(field.np_dtype)


def batched_spec(field: Field) -> Any:
    """The spec of a batch of one field's stored values (a ragged one for a variable first axis)."""
    t = tf()
    if field.variable:
        return t.RaggedTensorSpec((None, *field.shape), storage_dtype(field), ragged_rank=1, row_splits_dtype=t.int64)
    return t.TensorSpec((None, *field.shape), storage_dtype(field))


def to_tensor(field: Field, stored: Stored) -> Any:
    """Stored values as a batch: an array, or a RaggedTensor for a variable first axis."""
    if stored.lengths is None:
        return stored.values
    return tf().RaggedTensor.from_row_lengths(stored.values, stored.lengths, validate=False)


def from_chunks(fields: Sequence[Field], chunks: Callable[[], Iterator[Mapping[str, Stored]]]) -> Any:
    """A dataset of chunks ``{name: batch of rows}`` streamed from a generator of stored chunks."""
    t = tf()
    signature = {f.name: batched_spec(f) for f in fields}

    def generate() -> Iterator[dict[str, Any]]:
        for chunk in chunks():
            yield {f.name: to_tensor(f, chunk[f.name]) for f in fields}

    return t.data.Dataset.from_generator(generate, output_signature=signature)


def cast_flat(field: Field, values: Any) -> Any:
    """Parsed numbers (any type) cast to the field's storage type (bool: non-zero is true)."""
    t = tf()
    if field.dtype == "bool":
        return t.not_equal(values, t.zeros_like(values))
    return t.cast(values, storage_dtype(field))


def shape_batch(field: Field, flat: Any, counts: Any) -> Any:
    """One batch of a field from its values flattened over the batch and each row's number of values."""
    t = tf()
    if not field.variable:
        return t.reshape(flat, (-1, *field.shape))
    steps = t.reshape(flat, (-1, *field.shape[1:]))
    return t.RaggedTensor.from_row_lengths(steps, t.cast(counts, t.int64) // field.size, validate=False)


def to_xy(fields: Sequence[Field], ds: Any, dense: bool = False) -> Any:
    """A dataset of flat ``{name: tensor}`` elements as ``(x, y)``: inputs and labels, in the spec's order.

    bfloat16 fields, stored as float32, are cast here; with ``dense``, ragged batches
    (a variable first axis) are padded with zeros to their longest row. A map costs
    about 20 us per element: apply it to batches, not to single examples.
    """
    t = tf()
    inputs = [f for f in fields if f.role == "input"]
    labels = [f for f in fields if f.role == "label"]
    late = {f.name for f in fields if f.dtype == "bfloat16"}

    def split(element: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        def value(f: Field) -> Any:
            v = element[f.name]
            if dense and isinstance(v, t.RaggedTensor):
                v = v.to_tensor()
            return t.cast(v, t.bfloat16) if f.name in late else v

        return {f.name: value(f) for f in inputs}, {f.name: value(f) for f in labels}

    # Plain Python (no control flow on tensors): nothing for AutoGraph to convert, and it warns when it tries.
    return ds.map(t.autograph.experimental.do_not_convert(split), num_parallel_calls=None)
