"""Training data through tf.data: every format yields the same examples; TFRecord problems; batches.

Every test here imports TensorFlow, so the whole module is ``slow``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_data import COLUMNS, SPEC, WRITERS, fields_of, make_data, refused, write_csv, write_npz

from fusec.data import DataError, Fields, make_batches, open_data

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def tf() -> Any:
    from fusec.keras.tf import import_keras

    import_keras()
    import tensorflow

    return tensorflow


def _feature(value: Any) -> Any:
    t = tf()
    flat = np.ravel(np.asarray(value))
    if flat.dtype.kind == "f":
        return t.train.Feature(float_list=t.train.FloatList(value=flat))
    if flat.dtype.kind in "iub":
        return t.train.Feature(int64_list=t.train.Int64List(value=flat.astype(np.int64)))
    return t.train.Feature(bytes_list=t.train.BytesList(value=[str(v).encode() for v in flat]))


def write_tfrecord(path: Path, data: dict[str, Any], rows: list[dict[str, Any]] | None = None) -> Path:
    """One ``tf.train.Example`` per example (or per dict of ``rows``, for records that differ)."""
    t = tf()
    n = len(next(iter(data.values()))) if data else 0
    rows = rows if rows is not None else [{k: v[i] for k, v in data.items()} for i in range(n)]
    with t.io.TFRecordWriter(str(path)) as w:
        for row in rows:
            features = t.train.Features(feature={k: _feature(v) for k, v in row.items()})
            w.write(t.train.Example(features=features).SerializeToString())
    return path


ALL_WRITERS = {**WRITERS, "tfrecord": lambda p, d: write_tfrecord(p.with_suffix(".tfrecord"), d)}


@pytest.fixture(scope="module")
def fields(tmp_path_factory: pytest.TempPathFactory) -> Fields:
    return fields_of(tmp_path_factory.mktemp("spec"), SPEC)


def examples(ds: Any) -> list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]:
    return list(ds.as_numpy_iterator())


def assert_same(a: list[Any], b: list[Any]) -> None:
    assert len(a) == len(b)
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        assert list(xa) == list(xb) and list(ya) == list(yb)
        for k in xa:
            np.testing.assert_allclose(xa[k], xb[k], rtol=1e-6)
            assert xa[k].dtype == xb[k].dtype
        for k in ya:
            np.testing.assert_allclose(ya[k], yb[k], rtol=1e-6)


@pytest.mark.parametrize("cache", [64 << 20, 0], ids=["cached", "streamed"])
def test_every_format_yields_the_same_examples(cache: int, fields: Fields, tmp_path: Path) -> None:
    data = make_data(10)
    got = {}
    for fmt, write in ALL_WRITERS.items():
        src = open_data(write(tmp_path / "train", data), fields, cache_bytes=cache)
        assert src.cached == bool(cache)
        got[fmt] = examples(src.dataset())
    x, y = got["npz"][4]
    assert list(x) == ["x", "grid", "tok"] and list(y) == ["kind", "size"]  # the spec's order; `aux` has no loss
    assert {k: (v.dtype.name, v.shape) for k, v in {**x, **y}.items()} == {
        "x": ("float32", (4,)),
        "grid": ("float32", (3, 2)),
        "tok": ("int32", (1,)),
        "kind": ("int32", ()),
        "size": ("float32", (2,)),
    }
    np.testing.assert_array_equal(x["grid"], data["grid"][4])
    for fmt in ALL_WRITERS:
        assert_same(got[fmt], got["npz"])


@pytest.mark.parametrize("cache", [64 << 20, 0], ids=["cached", "streamed"])
@pytest.mark.parametrize("fmt", sorted(ALL_WRITERS))
def test_split_yields_the_last_part(fmt: str, cache: int, fields: Fields, tmp_path: Path) -> None:
    data = make_data(10)
    train, val = open_data(ALL_WRITERS[fmt](tmp_path / "d", data), fields, cache_bytes=cache).split(0.3)
    got = examples(val.dataset())
    assert [len(examples(train.dataset())), len(got)] == [7, 3]
    np.testing.assert_allclose([x["x"] for x, _ in got], data["x"][7:])


def test_a_glob_streams_across_files(fields: Fields, tmp_path: Path) -> None:
    parts = [make_data(4, seed=1), make_data(5, seed=2), make_data(3, seed=3)]
    for i, part in enumerate(parts):
        write_tfrecord(tmp_path / f"train-{i}.tfrecord", part)
    src = open_data(str(tmp_path / "train-*.tfrecord"), fields, cache_bytes=0)
    train, val = src.split(0.5)  # 6 and 6: the cut falls inside the second file
    want = np.concatenate([p["x"] for p in parts])
    np.testing.assert_allclose([x["x"] for x, _ in examples(train.dataset())], want[:6])
    np.testing.assert_allclose([x["x"] for x, _ in examples(val.dataset())], want[6:])


def _order(src: Any, **kw: Any) -> list[float]:
    return [float(v) for x, _ in make_batches(src, 4, **kw).as_numpy_iterator() for v in x["x"][:, 0]]


@pytest.mark.parametrize("cache", [64 << 20, 0], ids=["cached", "streamed"])
def test_shuffling_is_fixed_by_seed_and_epoch(cache: int, fields: Fields, tmp_path: Path) -> None:
    data = make_data(40)
    src = open_data(write_npz(tmp_path / "d.npz", data), fields, cache_bytes=cache)
    first = _order(src, seed=5, epoch=0)
    assert first == _order(src, seed=5, epoch=0)
    assert first != _order(src, seed=5, epoch=1) and first != _order(src, seed=6, epoch=0)
    assert sorted(first) == sorted(float(v) for v in data["x"][:, 0])
    assert _order(src, shuffle=False) == [float(v) for v in data["x"][:, 0]]
    sizes = [len(x["x"]) for x, _ in make_batches(src, 16, shuffle=False).as_numpy_iterator()]
    assert sizes == [16, 16, 8]
    assert [len(x["x"]) for x, _ in make_batches(src, 16, drop_remainder=True).as_numpy_iterator()] == [16, 16]


_FRESH = """
import json, sys
from fusec import check_spec
from fusec.data import expected_fields, make_batches, open_data
import tensorflow as tf
tf.random.set_seed(11)  # as fusec fit's build sets it from the spec's seed
fields = expected_fields(check_spec(sys.argv[1]))
out = []
for cache in (64 << 20, 0):
    src = open_data(sys.argv[2], fields, cache_bytes=cache)
    out.append([float(v) for x, _ in make_batches(src, 4, seed=5, epoch=3).as_numpy_iterator() for v in x["x"][:, 0]])
print(json.dumps(out))
"""


def test_same_batches_in_a_fresh_process(fields: Fields, tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    data = write_npz(tmp_path / "d.npz", make_data(40))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = subprocess.run(
        [sys.executable, "-c", _FRESH, str(spec), str(data)], capture_output=True, text=True, env=env, check=True
    )
    there = json.loads(run.stdout.strip().splitlines()[-1])
    import tensorflow as tf

    tf.random.set_seed(11)  # whatever seed earlier tests in this process left: a streamed shuffle pairs with it
    here = [_order(open_data(data, fields, cache_bytes=c), seed=5, epoch=3) for c in (64 << 20, 0)]
    assert there == here


# --- TFRecord problems ---------------------------------------------------------------------


def test_tfrecord_problems(fields: Fields, tmp_path: Path) -> None:
    data = make_data(6)
    rows = [{k: v[i] for k, v in data.items()} for i in range(6)]
    rows[0]["sise"] = rows[0].pop("size")
    rows[0]["note"] = np.array(["hello"])
    rows[2]["x"] = np.array([1.0, np.nan, 2.0, 3.0], np.float32)
    rows[3]["kind"] = np.array([5])
    rows[4]["x"] = np.array([1.0, 2.0], np.float32)
    err = refused(write_tfrecord(tmp_path / "d.tfrecord", {}, rows), fields)
    text = str(err)
    assert "feature `size`, record 0: is missing from record 0" in text and "did you mean `sise`?" in text
    assert "feature `note`, record 0: is not an input nor a trained output" in text
    assert "feature `x`, record 2: NaN or infinity" in text
    assert "feature `kind`, record 3: class id 5 is outside [0, 3)" in text
    assert "feature `x`, record 4: 2 values, expected 4" in text
    assert {p["path"] for p in err.to_json()} >= {"$.size[0]", "$.x[2]", "$.kind[3]"}


def test_tfrecord_kinds(fields: Fields, tmp_path: Path) -> None:
    data = make_data(3)
    rows = [{k: v[i] for k, v in data.items()} for i in range(3)]
    rows[0]["grid"] = np.array(["a"] * 6)
    rows[2]["x"] = np.array([1, 2, 3, 4], np.int64)  # record 0 holds a float_list
    text = str(refused(write_tfrecord(tmp_path / "d.tfrecord", {}, rows), fields))
    assert "feature `grid`, record 0: holds text (bytes_list)" in text
    assert "feature `x`, record 2: holds a int64_list, but record 0 holds a float_list" in text


def test_tfrecord_crc(fields: Fields, tmp_path: Path) -> None:
    path = write_tfrecord(tmp_path / "d.tfrecord", make_data(5))
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    err = refused(path, fields)
    assert "a corrupt record" in str(err) and err.file == str(path)


def test_tfrecord_empty(fields: Fields, tmp_path: Path) -> None:
    path = tmp_path / "d.tfrecord"
    path.write_bytes(b"")
    assert "the file holds no examples" in str(refused(path, fields))


# --- variable-length sequences and other element types --------------------------------------

SEQ_SPEC: dict[str, Any] = {
    "fusec": 1,
    "name": "sequences",
    "inputs": {"seq": {"shape": [None, 2]}, "flag": {"shape": [1], "dtype": "bool"}},
    "nodes": {
        "pool": {"layer": "GlobalAveragePooling1D", "inputs": "seq"},
        "y": {"layer": "Dense", "config": {"units": 1}, "inputs": "pool"},
        "z": {"layer": "Dense", "config": {"units": 1}, "inputs": "flag"},
    },
    "outputs": {"y": {"from": "y", "loss": "mse"}, "z": {"from": "z", "loss": "mae"}},
}


def test_variable_length_sequences(tmp_path: Path) -> None:
    fs = fields_of(tmp_path, SEQ_SPEC)
    seqs = [np.arange(2 * n, dtype=np.float32).reshape(n, 2) + n for n in (1, 3, 2, 4)]
    flags = np.array([[1], [0], [1], [1]])
    ys = np.arange(4, dtype=np.float32).reshape(4, 1)
    pq.write_table(
        pa.table({"seq": [s.tolist() for s in seqs], "flag": flags[:, 0].astype(bool), "y": ys[:, 0], "z": ys[:, 0]}),
        tmp_path / "d.parquet",
    )
    write_csv(tmp_path / "d.csv", {"seq": seqs, "flag": flags, "y": ys, "z": ys})
    rows = [{"seq": s, "flag": f, "y": y, "z": y} for s, f, y in zip(seqs, flags, ys, strict=True)]
    write_tfrecord(tmp_path / "d.tfrecord", {}, rows)
    for name in ("d.parquet", "d.csv", "d.tfrecord"):
        for cache in (1 << 20, 0):
            src = open_data(tmp_path / name, fs, cache_bytes=cache)
            got = examples(src.dataset())
            assert [x["seq"].shape for x, _ in got] == [(1, 2), (3, 2), (2, 2), (4, 2)], name
            np.testing.assert_array_equal(got[3][0]["seq"], seqs[3])
            assert [bool(x["flag"][0]) for x, _ in got] == [True, False, True, True]
            assert next(iter(src.dataset().padded_batch(4)))[0]["seq"].shape == (4, 4, 2)  # plain tensors
            batch = next(make_batches(src, 2, shuffle=False).as_numpy_iterator())
            assert batch[0]["seq"].shape == (2, 3, 2)  # padded to the longest in the batch
            np.testing.assert_array_equal(batch[0]["seq"][0, 1:], 0)
    csv_path = tmp_path / "bad.csv"
    csv_path.write_text("seq,flag,y,z\n1 2 3,1,0,0\n1 2,2,0,0\n")
    text = str(refused(csv_path, fs))
    assert "column `seq`, row 0 (line 2): 3 values, expected a multiple of 2" in text
    assert "column `flag`, row 1 (line 3): 2 does not fit input `flag`: bool holds 0 to 1" in text


def test_data_error_is_a_fusec_error(fields: Fields, tmp_path: Path) -> None:
    from fusec.errors import EXIT_INPUT, FusecError

    with pytest.raises(FusecError) as caught:
        open_data(tmp_path / "none.npz", fields)
    assert isinstance(caught.value, DataError) and caught.value.exit_code == EXIT_INPUT
    assert set(COLUMNS) == {f.name for f in fields}
