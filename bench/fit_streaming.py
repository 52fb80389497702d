"""Streamed CSV, Parquet and TFRecord data against in-memory arrays: `fusec fit` on the same model.

The same generated examples are written as ``.npz``, ``.csv``, ``.parquet``
and ``.tfrecord`` (each format's convention, ``fusec.data``), and
``fit_spec`` trains the same spec on each. The baseline is the ``.npz``
held in memory (``Source.cached``: data that decode to at most
``fusec.data.CACHE_BYTES`` are kept after the check and fed with
``from_tensor_slices``); the other sides stream from their files, the way
data above that size always do: their runs open the data with
``cache_bytes=0`` (the one thing changed: ``fusec.data.open_data`` wrapped
for the run), so a short run exercises the streamed path without
hundreds of megabytes on disk. The streamed ``.npz`` is a side too. The
runs take turns epoch by epoch, as in bench/fit_speed.py (``Turns``): one
sample per epoch after the first, examples per second, and each row is
the median of the paired per-epoch ratios (``paired_row``; the note has
the medians). Target: streamed / in memory >= 0.9.

Then, to say where the time goes, the input pipeline alone: one epoch of
``make_batches`` made and iterated without training, per format (rows
``pipeline alone``: streamed / in memory, no target; the first one's note
gives the training speed in memory, for comparison).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from fit_speed import EpochClock, Hook, available, interleave_epochs, paired_row, spec_fields, synthetic

from harness import ROOT, Row, interleave, median

NAME = "fit_streaming"
TITLE = "streamed CSV / Parquet / TFRecord vs in-memory arrays, fusec fit on one model   >= 0.9"
TARGET = 0.9
#: (label, spec, examples, --quick examples)
CASES = (
    ("multi-task shared head", "specs/multitask_shared.json", 64000, 4000),
    ("image+tag classifier", "specs/image_tag.json", 4800, 800),
)
#: the sides: (name, file extension, streamed); the first is the baseline
SIDES = (
    ("npz in memory", "npz", False),
    ("npz streamed", "npz", True),
    ("csv streamed", "csv", True),
    ("parquet streamed", "parquet", True),
    ("tfrecord streamed", "tfrecord", True),
)


# --- writing one data set in every format ------------------------------------------------


def _text(values: np.ndarray) -> list[str]:
    """One CSV cell per example: a number, or a vector's values flattened and space-separated."""
    flat = values.reshape(len(values), -1)
    cells = flat.astype(str)
    if flat.shape[1] == 1:
        return list(cells[:, 0])
    return [" ".join(row) for row in cells]


def write_csv(arrays: Mapping[str, np.ndarray], path: Path) -> None:
    names = list(arrays)
    columns = [_text(arrays[n]) for n in names]
    with path.open("w", encoding="utf-8") as f:
        f.write(",".join(names) + "\n")
        f.writelines(",".join(row) + "\n" for row in zip(*columns, strict=True))


def write_parquet(arrays: Mapping[str, np.ndarray], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {}
    for name, values in arrays.items():
        flat = values.reshape(len(values), -1)
        if flat.shape[1] == 1:
            columns[name] = pa.array(flat[:, 0])
        else:
            columns[name] = pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), flat.shape[1])
    pq.write_table(pa.table(columns), path)


def write_tfrecord(arrays: Mapping[str, np.ndarray], path: Path) -> None:
    from fusec.keras.tf import import_keras

    import_keras()  # quietly
    import tensorflow as tf

    def feature(row: np.ndarray) -> Any:
        if np.issubdtype(row.dtype, np.integer) or row.dtype == bool:
            return tf.train.Feature(int64_list=tf.train.Int64List(value=row.astype(np.int64)))
        return tf.train.Feature(float_list=tf.train.FloatList(value=row))

    flat = {n: v.reshape(len(v), -1) for n, v in arrays.items()}
    count = len(next(iter(flat.values())))
    with tf.io.TFRecordWriter(str(path)) as w:
        for i in range(count):
            example = tf.train.Example(features=tf.train.Features(feature={n: feature(v[i]) for n, v in flat.items()}))
            w.write(example.SerializeToString())


WRITERS: Mapping[str, Callable[[Mapping[str, np.ndarray], Path], None]] = {
    "npz": lambda arrays, path: np.savez(path, **arrays),
    "csv": write_csv,
    "parquet": write_parquet,
    "tfrecord": write_tfrecord,
}


def write_all(spec: Path, examples: int, folder: Path) -> dict[str, Path]:
    """The same generated examples in every format: ``{extension: file}``."""
    arrays = synthetic(spec_fields(spec)[1], examples)
    files = {}
    for ext, write in WRITERS.items():
        files[ext] = folder / f"{spec.stem}.{ext}"
        write(arrays, files[ext])
    return files


# --- the runs ----------------------------------------------------------------------------


#: this thread's run: {"streamed": bool, "buffer": int | None, "seen": [cached, ...]} (see ``streaming``)
_RUN = threading.local()


@contextlib.contextmanager
def streaming() -> Iterator[None]:
    """While inside, each thread's run opens and batches data as its ``_RUN`` settings say.

    A streamed run's data stream (``open_data`` with ``cache_bytes=0``), and
    with ``buffer`` its shuffle buffer holds that many examples instead of
    ``fusec.data.pipeline.default_buffer``'s choice (the
    ``--streaming-buffer`` what-if); ``seen`` gets each opened source's
    ``cached``, to check that each side ran the path it names. The runs
    take turns in threads, so the settings are per thread.
    """
    import fusec.data
    import fusec.data.pipeline

    open_data, default_buffer = fusec.data.open_data, fusec.data.pipeline.default_buffer

    def opened(data: Any, fields: Any, **kw: Any) -> Any:
        source = open_data(data, fields, **({"cache_bytes": 0} if _RUN.streamed else {}), **kw)
        _RUN.seen.append(source.cached)
        return source

    def buffer(src: Any) -> int:
        return min(src.count, _RUN.buffer) if _RUN.streamed and _RUN.buffer else int(default_buffer(src))

    fusec.data.open_data, fusec.data.pipeline.default_buffer = opened, buffer
    try:
        yield
    finally:
        fusec.data.open_data, fusec.data.pipeline.default_buffer = open_data, default_buffer


def fit_run(spec: Path, data: Path, streamed: bool, opts: argparse.Namespace) -> Callable[[Hook], None]:
    """One run of ``fit_spec`` on one file (inside ``streaming``), its epoch ends reported to a hook."""
    from fusec.train.fit import fit_spec

    out = data.parent / f"out-{data.suffix[1:]}-{streamed}"

    def run(hook: Hook) -> None:
        _RUN.streamed, _RUN.buffer, _RUN.seen = streamed, opts.buffer, []
        clock = EpochClock(hook)
        shutil.rmtree(out, ignore_errors=True)
        fit_spec(spec, str(data), output=out, epochs=opts.epochs, batch_size=opts.batch, stream=clock)
        shutil.rmtree(out, ignore_errors=True)
        if _RUN.seen != [not streamed]:
            raise RuntimeError(f"{data.name}: expected cached={not streamed}, the run opened {_RUN.seen}")

    return run


def pipeline_side(spec: Path, data: Path, streamed: bool, opts: argparse.Namespace) -> Callable[[], float]:
    """One measurement: one epoch of ``make_batches`` made and iterated alone (no training); examples/s."""
    from fusec.data import make_batches, open_data

    checked, fields = spec_fields(spec)
    seed = int(checked.doc.get("seed", 0))
    source = open_data(str(data), fields, **({"cache_bytes": 0} if streamed else {}))
    buffer = min(source.count, opts.buffer) if streamed and opts.buffer else None
    epochs = iter(range(10**6))

    def once() -> float:
        start = time.perf_counter()
        for _ in make_batches(source, opts.batch, seed=seed, epoch=next(epochs), buffer=buffer):
            pass
        return source.count / (time.perf_counter() - start)

    return once


def measure(label: str, spec: Path, examples: int, opts: argparse.Namespace, device: str, tmp: Path) -> list[Row]:
    """One spec's rows: training on every format (interleaved), then the pipeline alone."""
    folder = tmp / spec.stem
    folder.mkdir()
    files = write_all(spec, examples, folder)
    with streaming():
        runs = [fit_run(spec, files[ext], streamed, opts) for _, ext, streamed in SIDES]
        samples = interleave_epochs(runs, opts.repeats, examples)
    group = f"fit streaming ({device})"
    what = f"{examples} examples, batch {opts.batch}; {opts.repeats} runs each, epochs 2..{opts.epochs} of each timed"
    what += f", shuffle buffer {opts.buffer} (what-if)" if opts.buffer else ""
    rows = [
        paired_row(group, f"{label}: {name} / npz in memory", samples[i], samples[0], TARGET)
        for i, (name, _, _) in enumerate(SIDES[1:], 1)
    ]
    rows[0].note += f"; {what}"
    alone = [pipeline_side(spec, files[ext], streamed, opts) for _, ext, streamed in SIDES]
    piped = interleave(alone, opts.pipeline_repeats, warmup=1)
    group += ", pipeline alone"
    for i, (name, _, _) in enumerate(SIDES[1:], 1):
        note = f"training in memory: {median(samples[0]):,.0f} ex/s" if i == 1 else ""
        rows.append(Row(group, f"{label}: {name} / npz in memory", piped[i], piped[0], "ex/s", "f/b", note=note))
    return rows


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--streaming-repeats", type=int, help="runs per format (default 3; --quick 1)")
    group.add_argument("--streaming-epochs", type=int, help="epochs per run, the first untimed (default 8; --quick 3)")
    group.add_argument("--streaming-examples", type=float, default=1.0, help="scale every case's number of examples")
    group.add_argument("--streaming-buffer", type=int, help="what-if: streamed sides shuffle with this many examples")


def run(args: argparse.Namespace) -> list[Row]:
    """Every case's rows."""
    device = available(args.device)
    if device is None:
        return []
    opts = argparse.Namespace(
        repeats=args.streaming_repeats or (1 if args.quick else 3),
        epochs=args.streaming_epochs or (3 if args.quick else 8),
        batch=args.fit_batch_size,
        pipeline_repeats=3 if args.quick else 7,
        buffer=args.streaming_buffer,
    )
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="fusec-bench-stream-") as tmp:
        for label, spec, full, quick in CASES:
            examples = int((quick if args.quick else full) * args.streaming_examples)
            rows += measure(label, ROOT / spec, examples, opts, device, Path(tmp))
            for row in rows:
                if row.lo is not None and label in row.name:
                    print(f"  {row.name}: {row.ratio:.3f}", flush=True)
    return rows
