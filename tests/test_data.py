"""Training data (fusec.data): fields from a spec, and every problem a .npz, CSV or Parquet file can have.

These tests never import TensorFlow; test_data_tf.py streams the data through
tf.data and covers TFRecord files.
"""

from __future__ import annotations

import csv
import hashlib
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fusec import check_spec
from fusec.data import DataError, Fields, Source, expected_fields, open_data

#: Two inputs of different shapes and an int32 token into an Embedding; a sparse classifier,
#: a regression head, and an output without a loss.
SPEC: dict[str, Any] = {
    "fusec": 1,
    "name": "two_by_two",
    "seed": 3,
    "inputs": {"x": {"shape": [4]}, "grid": {"shape": [3, 2]}, "tok": {"shape": [1], "dtype": "int32"}},
    "nodes": {
        "flat": {"layer": "Flatten", "inputs": "grid"},
        "emb": {"layer": "Embedding", "config": {"input_dim": 10, "output_dim": 2}, "inputs": "tok"},
        "emb_flat": {"layer": "Flatten", "inputs": "emb"},
        "cat": {"merge": "concat", "inputs": ["x", "flat", "emb_flat"]},
        "cls": {"layer": "Dense", "config": {"units": 3, "activation": "softmax"}, "inputs": "cat"},
        "reg": {"layer": "Dense", "config": {"units": 2}, "inputs": "cat"},
        "aux": {"layer": "Dense", "config": {"units": 1}, "inputs": "cat"},
    },
    "outputs": {
        "kind": {"from": "cls", "loss": "sparse_categorical_crossentropy"},
        "size": {"from": "reg", "loss": "mse"},
        "aux": {"from": "aux"},
    },
}
#: One input, and outputs whose losses read binary, one-hot and hinge labels.
LABELS_SPEC: dict[str, Any] = {
    "fusec": 1,
    "name": "label_rules",
    "inputs": {"x": {"shape": [2]}},
    "nodes": {
        "yes": {"layer": "Dense", "config": {"units": 1, "activation": "sigmoid"}, "inputs": "x"},
        "pick": {"layer": "Dense", "config": {"units": 3, "activation": "softmax"}, "inputs": "x"},
        "side": {"layer": "Dense", "config": {"units": 1}, "inputs": "x"},
    },
    "outputs": {
        "yes": {"from": "yes", "loss": "binary_crossentropy"},
        "pick": {"from": "pick", "loss": "categorical_crossentropy"},
        "side": {"from": "side", "loss": "hinge"},
    },
}
COLUMNS = ("x", "grid", "tok", "kind", "size")


def fields_of(tmp: Path, doc: dict[str, Any]) -> Fields:
    path = tmp / f"{doc['name']}.json"
    path.write_text(json.dumps(doc))
    return expected_fields(check_spec(path))


@pytest.fixture(scope="module")
def fields(tmp_path_factory: pytest.TempPathFactory) -> Fields:
    return fields_of(tmp_path_factory.mktemp("spec"), SPEC)


@pytest.fixture(scope="module")
def label_fields(tmp_path_factory: pytest.TempPathFactory) -> Fields:
    return fields_of(tmp_path_factory.mktemp("spec"), LABELS_SPEC)


def make_data(n: int = 10, seed: int = 0) -> dict[str, np.ndarray]:
    """Examples for SPEC: arrays keyed by column, first axis the examples."""
    rng = np.random.default_rng(seed)
    return {
        "x": rng.normal(size=(n, 4)).astype(np.float32),
        "grid": rng.normal(size=(n, 3, 2)).astype(np.float32),
        "tok": rng.integers(0, 10, size=(n, 1)).astype(np.int32),
        "kind": rng.integers(0, 3, size=n).astype(np.int64),
        "size": rng.normal(size=(n, 2)).astype(np.float32),
    }


def _cell(value: Any) -> str:
    flat = np.ravel(np.asarray(value))
    return " ".join(repr(float(v)) if flat.dtype.kind == "f" else str(int(v)) for v in flat)


def write_npz(path: Path, data: dict[str, np.ndarray]) -> Path:
    with path.open("wb") as f:
        np.savez(f, **data)
    return path


def write_csv(path: Path, data: dict[str, Any], header: list[str] | None = None) -> Path:
    names = header or list(data)
    n = len(next(iter(data.values())))
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(names)
        for i in range(n):
            w.writerow(
                [_cell(data[k][i]) if isinstance(data[k][i], (np.ndarray, np.generic)) else data[k][i] for k in names]
            )
    return path


def write_parquet(path: Path, data: dict[str, Any], nested: bool = True) -> Path:
    columns = {}
    for k, v in data.items():
        v = np.asarray(v)
        if v.ndim == 1 or (v.ndim == 2 and v.shape[1] == 1 and k == "tok"):
            columns[k] = pa.array(v.reshape(len(v)))
        else:
            columns[k] = pa.array([r.tolist() if nested else r.reshape(-1).tolist() for r in v])
    pq.write_table(pa.table(columns), path)
    return path


WRITERS: dict[str, Callable[[Path, dict[str, Any]], Path]] = {
    "npz": lambda p, d: write_npz(p.with_suffix(".npz"), d),
    "csv": lambda p, d: write_csv(p.with_suffix(".csv"), d),
    "parquet": lambda p, d: write_parquet(p.with_suffix(".parquet"), d),
}


def refused(path: Path | str, fields: Fields) -> DataError:
    with pytest.raises(DataError) as caught:
        open_data(path, fields)
    return caught.value


# --- fields ------------------------------------------------------------------------------


def test_fields_follow_the_spec(fields: Fields) -> None:
    by = {f.name: f for f in fields}
    assert [f.name for f in fields] == list(COLUMNS)  # inputs in the spec's order, then trained outputs
    assert [f.name for f in fields.inputs] == ["x", "grid", "tok"]
    assert fields.untrained == ("aux",)
    assert (by["grid"].shape, by["grid"].dtype, by["grid"].rule) == ((3, 2), "float32", "float")
    assert (by["tok"].rule, by["tok"].high, by["tok"].node, by["tok"].accepts) == ("ids", 10, "emb", ((),))
    kind = by["kind"]
    assert (kind.shape, kind.dtype, kind.rule, kind.high, kind.accepts) == ((), "int32", "sparse", 3, ((1,),))
    assert (by["size"].shape, by["size"].dtype, by["size"].rule) == ((2,), "float32", "regression")


def test_label_rules_follow_the_loss(label_fields: Fields) -> None:
    by = {f.name: f for f in label_fields}
    assert {n: (by[n].rule, by[n].shape, by[n].accepts) for n in ("yes", "pick", "side")} == {
        "yes": ("binary", (1,), ((),)),
        "pick": ("categorical", (3,), ()),
        "side": ("hinge", (1,), ((),)),
    }


# --- reading ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_each_format_opens_and_hashes(fmt: str, fields: Fields, tmp_path: Path) -> None:
    path = WRITERS[fmt](tmp_path / "train", make_data())
    src = open_data(path, fields)
    assert (src.format, src.count, src.paths, src.cached) == (fmt, 10, (path,), True)
    assert src.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    cache = src.cache or {}
    data = make_data()
    for name in COLUMNS:  # what the dataset will yield, in the field's shape and type
        want = data[name].reshape(len(data[name]), *next(f for f in fields if f.name == name).shape)
        np.testing.assert_allclose(cache[name].values, want, rtol=1e-6)
    assert cache["tok"].values.dtype == np.int32 and cache["kind"].values.dtype == np.int32


def test_parquet_takes_flat_lists_too(fields: Fields, tmp_path: Path) -> None:
    src = open_data(write_parquet(tmp_path / "flat.parquet", make_data(), nested=False), fields)
    np.testing.assert_allclose((src.cache or {})["grid"].values, make_data()["grid"])


def test_a_glob_reads_files_in_name_order(fields: Fields, tmp_path: Path) -> None:
    a = write_csv(tmp_path / "part-1.csv", make_data(4, seed=1))
    b = write_csv(tmp_path / "part-0.csv", make_data(6, seed=2))
    src = open_data(str(tmp_path / "part-*.csv"), fields)
    assert (src.paths, src.count) == ((b, a), 10)
    lines = "".join(sorted(f"{p.name}\t{hashlib.sha256(p.read_bytes()).hexdigest()}\n" for p in (a, b)))
    assert src.sha256 == hashlib.sha256(lines.encode()).hexdigest()
    assert open_data(tmp_path, fields).paths == (b, a)  # a folder of data files is read the same way


def test_split_follows_keras(fields: Fields, tmp_path: Path) -> None:
    src = open_data(WRITERS["npz"](tmp_path / "d", make_data()), fields)
    train, val = src.split(0.2)
    assert (train.start, train.stop, val.start, val.stop) == (0, 8, 8, 10)
    assert [p.count for p in src.split(0.25)] == [7, 3]  # floor(10 * 0.75) train, the rest validates
    assert train.sha256 == src.sha256
    with pytest.raises(ValueError):
        src.split(1.0)
    with pytest.raises(DataError, match="cannot be split"):
        src.split(0.95)


# --- problems ----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_missing_and_extra_columns(fmt: str, fields: Fields, tmp_path: Path) -> None:
    data = make_data()
    data["sise"] = data.pop("size")
    data["aux"] = data["kind"]
    data["junk"] = data["kind"]
    path = WRITERS[fmt](tmp_path / "d", data)
    err = refused(path, fields)
    text = str(err)
    assert err.file == str(path)
    noun = "array" if fmt == "npz" else "column"
    assert f"{noun} `size`: is missing" in text and "did you mean `sise`?" in text
    assert f"{noun} `aux`: is not an input nor a trained output" in text and "has no loss" in text
    assert f"{noun} `junk`" in text
    assert {p["path"] for p in err.to_json()} >= {"$.size", "$.aux", "$.junk"}


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_nan_names_the_first_row_and_counts(fmt: str, fields: Fields, tmp_path: Path) -> None:
    data = make_data()
    data["x"][3, 1] = np.nan
    data["x"][7, 0] = np.inf
    data["size"][5, 1] = -np.inf
    err = refused(WRITERS[fmt](tmp_path / "d", data), fields)
    lines = err.lines()
    noun = "array" if fmt == "npz" else "column"
    line = " (line 5)" if fmt == "csv" else ""
    assert any(f"$.x[3]: {noun} `x`, row 3{line}: NaN or infinity" in s and "2 rows in all" in s for s in lines)
    assert any(f"$.size[5]: {noun} `size`, row 5" in s for s in lines)


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_ids_and_classes_out_of_range(fmt: str, fields: Fields, tmp_path: Path) -> None:
    data = make_data()
    data["tok"][2, 0] = 10  # input_dim 10
    data["kind"][4] = 3  # 3 classes
    data["kind"][6] = -1
    err = refused(WRITERS[fmt](tmp_path / "d", data), fields)
    text = str(err)
    assert "row 2" in text and "id 10 is outside [0, 10): Embedding `emb` reads input `tok`" in text
    assert "`kind`, row 4" in text and "class id 3 is outside [0, 3): output `kind` has 3 classes" in text
    assert "2 rows in all" in text


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_fractions_for_an_int_input(fmt: str, fields: Fields, tmp_path: Path) -> None:
    data: dict[str, Any] = make_data()
    data["tok"] = data["tok"].astype(np.float64)
    data["tok"][1, 0] = 2.5
    err = refused(WRITERS[fmt](tmp_path / "d", data), fields)
    assert "`tok`, row 1" in str(err) and "2.5 is not a whole number, but input `tok` is int32" in str(err)


def test_whole_floats_are_ids(fields: Fields, tmp_path: Path) -> None:
    data: dict[str, Any] = make_data()
    data["tok"] = data["tok"].astype(np.float32)  # 3.0 is id 3
    src = open_data(write_npz(tmp_path / "d.npz", data), fields)
    assert (src.cache or {})["tok"].values.dtype == np.int32


def test_label_rules(label_fields: Fields, tmp_path: Path) -> None:
    n = 6
    data = {
        "x": np.zeros((n, 2), np.float32),
        "yes": np.array([0, 1, 1.5, 0, 1, 0], np.float32),
        "pick": np.eye(3, dtype=np.float32)[[0, 1, 2, 0, 1, 2]],
        "side": np.array([-1, 1, 0, 2, 1, -1], np.float32),
    }
    data["pick"][4] = [0.5, 0.2, 0.2]
    err = refused(write_npz(tmp_path / "d.npz", data), label_fields)
    text = str(err)
    assert "array `yes`, row 2: 1.5 is outside [0, 1]" in text
    assert "array `pick`, row 4: a row of probabilities sums to 0.9, not 1" in text
    assert "array `side`, row 3: 2 is not -1, 0 or 1" in text


def test_npz_shapes_and_rows(fields: Fields, tmp_path: Path) -> None:
    data = make_data()
    data["grid"] = np.zeros((10, 2, 3), np.float32)
    data["size"] = data["size"][:9]
    err = refused(write_npz(tmp_path / "d.npz", data), fields)
    text = str(err)
    assert "array `grid`: has shape (10, 2, 3): each example is [2, 3], but input `grid` takes [3, 2]" in text
    assert "array `size`: has 9 rows, but `x` has 10" in text


def test_npz_refuses_strings(fields: Fields, tmp_path: Path) -> None:
    data: dict[str, Any] = make_data()
    data["x"] = np.array([["a"] * 4] * 10)
    assert "array `x`: holds strings, not numbers" in str(refused(write_npz(tmp_path / "d.npz", data), fields))


class Evil:
    """Unpickling this creates a file: the proof that a data file was run as code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def test_hostile_npz_is_never_unpickled(fields: Fields, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    data: dict[str, Any] = make_data()
    data["x"] = np.array([Evil(marker)] * 10, dtype=object)
    path = write_npz(tmp_path / "evil.npz", data)
    assert not marker.exists()
    with zipfile.ZipFile(path) as z:
        assert str(marker).encode() in z.read("x.npy")  # the payload is there
    err = refused(path, fields)
    assert "array `x`: holds Python objects" in str(err) and "never unpickles" in str(err)
    assert not marker.exists()


def test_csv_rows_and_cells(fields: Fields, tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    good = "1 2 3 4,1 2 3 4 5 6,3,1,0.5 0.5"
    rows = [good, "1 2 3,1 2 3 4 5 6,3,1,0.5 0.5", "", good + ",9", "1 2 3 4,1 2 3 4 5 6,x,1,0.5 0.5", good]
    path.write_text("x,grid,tok,kind,size\n" + "\n".join(rows) + "\n")
    err = refused(path, fields)
    lines = err.lines()
    assert any("$.x[1]: column `x`, row 1 (line 3): 3 values, expected 4" in s for s in lines)
    assert any("$[2]: row 2 (line 5): has 6 fields, the header has 5" in s for s in lines)  # blank line 4 skipped
    assert any("$.tok[3]: column `tok`, row 3 (line 6): `x` is not a number" in s for s in lines)


def test_csv_quoted_value_across_lines(fields: Fields, tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text('x,grid,tok,kind,size\n"1 2\n3 4",1 2 3 4 5 6,3,1,0.5 0.5\n')
    assert "a quoted value spans lines 2 to 3" in str(refused(path, fields))


def test_csv_refuses_what_tensorflow_cannot_read(fields: Fields, tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("x,grid,tok,kind,size\n1_0 2 3 4,1 2 3 4 5 6,3,1,0.5 0.5\n")
    assert "`1_0` is not a number" in str(refused(path, fields))


def test_parquet_cells(fields: Fields, tmp_path: Path) -> None:
    data: dict[str, Any] = {k: list(v) for k, v in make_data(4).items()}
    table = {
        "x": pa.array([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0], None, [1.0, 2.0, 3.0, 4.0]]),
        "grid": pa.array([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]] * 3 + [[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]]),
        "tok": pa.array([1, 2, 3, 4], pa.int32()),
        "kind": pa.array(["a", "b", "c", "d"]),
        "size": pa.array([r.tolist() for r in data["size"]]),
    }
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table(table), path)
    lines = refused(path, fields).lines()
    assert any("$.kind: column `kind`: holds string values, not numbers" in s for s in lines)
    assert any("$.x[1]: column `x`, row 1: 3 values, expected 4" in s for s in lines)
    assert any("$.x[2]: column `x`, row 2: an empty value (null)" in s for s in lines)
    assert any("$.grid[3]: column `grid`, row 3: nested lists whose lengths do not match [3, 2]" in s for s in lines)


def test_parquet_scalar_column_for_a_vector(fields: Fields, tmp_path: Path) -> None:
    data: dict[str, Any] = make_data()
    data["x"] = data["x"][:, 0]
    assert "column `x`: holds one number per row" in str(refused(write_parquet(tmp_path / "d.parquet", data), fields))


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_empty_files(fmt: str, fields: Fields, tmp_path: Path) -> None:
    err = refused(WRITERS[fmt](tmp_path / "d", make_data(0)), fields)
    assert "the file holds no examples" in str(err)


def test_empty_csv(fields: Fields, tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("")
    assert "the file is empty" in str(refused(path, fields))


@pytest.mark.parametrize(
    ("name", "content", "said"),
    [
        ("d.npz", b"PK\x03\x04 not really a zip", "not a readable .npz archive"),
        ("d.parquet", b"PAR1 not really parquet", "not a readable Parquet file"),
        ("d.csv", b"x,grid\n\xff\xfe,1\n", "not UTF-8 text"),
    ],
)
def test_corrupt_files(name: str, content: bytes, said: str, fields: Fields, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    err = refused(path, fields)
    assert said in str(err) and err.file == str(path)


def test_truncated_npz_member(fields: Fields, tmp_path: Path) -> None:
    path = write_npz(tmp_path / "d.npz", make_data(200))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    assert "not a readable .npz archive" in str(refused(path, fields))


def test_paths(fields: Fields, tmp_path: Path) -> None:
    write_csv(tmp_path / "train.csv", make_data())
    err = refused(tmp_path / "trian.csv", fields)
    assert "no such file or folder" in str(err) and "train.csv" in str(err)
    assert err.problems[0].code == "file"
    (tmp_path / "d.txt").write_text("1,2")
    assert "unknown data format (`.txt`)" in str(refused(tmp_path / "d.txt", fields))
    assert ".npz, .csv, .parquet, .tfrecord" in str(refused(tmp_path / "d.txt", fields))
    (tmp_path / "empty").mkdir()
    assert "the folder holds no data files" in str(refused(tmp_path / "empty", fields))
    assert "no file matches" in str(refused(str(tmp_path / "nothing-*.csv"), fields))
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    write_npz(mixed / "a.npz", make_data())
    write_csv(mixed / "b.csv", make_data())
    assert "files of several formats (csv, npz)" in str(refused(mixed, fields))


def test_problems_are_capped(fields: Fields, tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    names = [f"junk{i}" for i in range(30)]
    path.write_text(",".join(["x", "grid", "tok", "kind", "size", *names]) + "\n")
    err = refused(path, fields)
    assert len(err.problems) == 21
    assert err.problems[-1].message == "... and 10 more problems of other kinds or columns"


def test_several_files_name_theirs(fields: Fields, tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", make_data(3))
    bad = make_data(3)
    bad["x"][1, 0] = np.nan
    write_csv(tmp_path / "b.csv", bad)
    err = refused(str(tmp_path / "*.csv"), fields)
    assert err.file == str(tmp_path / "*.csv")
    assert "file `b.csv`, column `x`, row 1 (line 3): NaN or infinity" in str(err)


def test_variable_axis_only_first(tmp_path: Path) -> None:
    doc = {
        "fusec": 1,
        "name": "late_none",
        "inputs": {"x": {"shape": [4, None, 3]}},
        "nodes": {
            "p": {"layer": "GlobalAveragePooling2D", "inputs": "x"},
            "y": {"layer": "Dense", "config": {"units": 1}, "inputs": "p"},
        },
        "outputs": {"y": {"from": "y", "loss": "mse"}},
    }
    fs = fields_of(tmp_path, doc)
    path = write_npz(tmp_path / "d.npz", {"x": np.zeros((2, 4, 5, 3)), "y": np.zeros((2, 1))})
    assert "variable size only to the first axis" in str(refused(path, fs))


def test_source_is_a_plain_record(fields: Fields, tmp_path: Path) -> None:
    src = open_data(write_npz(tmp_path / "d.npz", make_data()), fields)
    assert isinstance(src, Source) and "cache" not in repr(src)


def test_csv_cells_of_megabytes(tmp_path: Path) -> None:
    from fusec.data import Field

    fs = Fields([Field("pixels", "input", (40_000,), "float32", "float", (40_000,))])
    path = tmp_path / "d.csv"
    path.write_text("pixels\n" + " ".join(["0.123456"] * 40_000) + "\n")  # 320 KB in one cell
    src = open_data(path, fs)
    assert (src.cache or {})["pixels"].values.shape == (1, 40_000)
