"""Batches for one epoch: shuffled deterministically from (seed, epoch), batched, prefetched.

The same seed and epoch give the same batches in any process (resuming a
run mid-way relies on it); another epoch gives another order. Data held in
memory are shuffled whole with a numpy permutation drawn from the epoch's
seed; streamed data go through ``Dataset.shuffle`` with a buffer of about
``SHUFFLE_BYTES`` and the epoch's seed (``reshuffle_each_iteration=False``);
TensorFlow pairs that seed with its global seed, which ``fusec fit`` sets
from the spec's ``seed`` when it builds the model, identically in every
process and worker (tests/test_data_tf.py runs both in a fresh process).
An input or label with a variable first axis is padded with zeros to the
longest example of its batch (what ``padded_batch`` does).
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np

from .source import Source
from .tfdata import tf, to_xy

#: About how many bytes of examples a streamed shuffle buffer holds (at least ``MIN_BUFFER`` examples).
SHUFFLE_BYTES = 64 << 20
MIN_BUFFER = 1024


def epoch_seed(seed: int, epoch: int) -> int:
    """The shuffle seed of one epoch: a 63-bit number derived from the run's seed and the epoch."""
    digest = hashlib.sha256(f"fusec-shuffle:{seed}:{epoch}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def example_bytes(src: Source) -> int:
    """Bytes of one example, decoded (a variable first axis counted as 1)."""
    return sum(f.size * np.dtype(f.np_dtype).itemsize for f in src.fields)


def default_buffer(src: Source) -> int:
    """The shuffle buffer of a streamed source: about ``SHUFFLE_BYTES`` of examples, at most all of them."""
    return max(1, min(src.count, max(MIN_BUFFER, SHUFFLE_BYTES // max(1, example_bytes(src)))))


def make_batches(
    src: Source,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    epoch: int = 0,
    buffer: int | None = None,
    drop_remainder: bool = False,
) -> Any:
    """One epoch of ``(x, y)`` batches from a source.

    Args:
        src: checked data (a whole source or a split of one).
        batch_size: examples per batch (the last one may be smaller unless ``drop_remainder``).
        shuffle: shuffle the examples (False for validation: file order).
        seed: the run's seed.
        epoch: the epoch (0-based); with ``seed``, it fixes the order.
        buffer: a shuffle buffer of this many examples (None: all of them
            when the data are in memory, else ``default_buffer``).
        drop_remainder: leave out a last, smaller batch.

    Returns:
        A ``tf.data.Dataset`` of ``(x, y)`` batches, prefetched (``AUTOTUNE``), deterministic, with
        ``AutoShardPolicy.DATA`` (under a multi-worker strategy each worker keeps its share of
        the same batches).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    t = tf()
    s = epoch_seed(seed, epoch)
    if shuffle and buffer is None and src.cached:
        ds = src.flat_dataset(np.random.default_rng(s).permutation(src.count))
    else:
        ds = src.flat_dataset()
        if shuffle:
            size = buffer if buffer is not None else default_buffer(src)
            ds = ds.shuffle(max(1, size), seed=s, reshuffle_each_iteration=False)
    if any(f.variable for f in src.fields):  # ragged batches, padded with zeros by to_xy
        ds = ds.ragged_batch(batch_size, drop_remainder=drop_remainder)
    else:
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    options = t.data.Options()
    options.deterministic = True
    # Every worker builds the same order from (seed, epoch) and keeps its share of the batches:
    # sharding by file would break the order and the split's ranges.
    options.experimental_distribute.auto_shard_policy = t.data.experimental.AutoShardPolicy.DATA
    return to_xy(src.fields, ds, dense=True).prefetch(t.data.AUTOTUNE).with_options(options)


def steps_per_epoch(src: Source, batch_size: int, drop_remainder: bool = False) -> int:
    """How many batches one epoch of ``src`` has."""
    return src.count // batch_size if drop_remainder else math.ceil(src.count / batch_size)
