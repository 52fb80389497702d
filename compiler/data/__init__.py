"""Training data: what a spec expects, reading and checking it, and ``tf.data`` pipelines.

::

    fields = expected_fields(checked)        # one Field per input, then per trained output
    src = open_data("train.csv", fields)    # reads and checks every row; DataError lists what is wrong
    train, val = src.split(0.2)             # the last 20 % validates (Keras's validation_split rule)
    batches = make_batches(train, 32, seed=7, epoch=0)

Formats, by extension (a glob or a folder of files of one format also
works): ``.npz`` (``npz.py``), ``.csv`` (``csvtext.py``: one column per
input and label, vectors as space-separated values), ``.parquet``
(``parquet.py``: list columns for vectors) and ``.tfrecord`` /
``.tfrecords`` / ``.tfrec`` (``tfrecord.py``: ``tf.train.Example``). Each
module's docstring gives its convention.

Checking happens once, before training, in one streamed pass: missing and
extra columns, types, shapes and value counts, NaN and infinity, whole
numbers for integer inputs, ids within an Embedding's ``input_dim``, labels
within what the loss reads (``fields.RULE_TEXT``), empty, ragged and corrupt
files. Rows are 0-based example indices within their file (see
``findings.py`` for how problems are worded). Data are data: no pickle, no
``eval``.

Nothing here imports TensorFlow until a dataset is made (or a TFRecord file
is checked).
"""

from __future__ import annotations

from .fields import Field, Fields, expected_fields
from .findings import MAX_PROBLEMS, DataError
from .paths import EXTENSIONS
from .pipeline import epoch_seed, make_batches, steps_per_epoch
from .source import CACHE_BYTES, Source, open_data

__all__ = [
    "CACHE_BYTES",
    "EXTENSIONS",
    "MAX_PROBLEMS",
    "DataError",
    "Field",
    "Fields",
    "Source",
    "epoch_seed",
    "expected_fields",
    "make_batches",
    "open_data",
    "steps_per_epoch",
]
