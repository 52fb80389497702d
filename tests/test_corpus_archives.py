"""Hostile sub-model archives and weights files: each ends in a clean error naming the archive and the fix.

The archives are crafted at test time, without Keras, by the small kit below:
a Keras 3 ``config.json`` (the format ``model.save`` writes) and an HDF5
weights file written with h5py, zipped as Keras zips them. Each is a few KB
(inflation cases use compressed zeros). Every case runs through ``check``,
``compile`` and ``render`` with ``run_case`` (exit code, the file, the JSON
path and the message fragment, ``--json`` valid, nothing written). The
committed cases of ``tests/corpus/cases_archives.json`` (files ``arc_*``)
run in tests/test_corpus.py with the rest of the committed corpus.

The classes covered: shapes never trusted from ``build_config`` (and counts
cross-checked with the weights file), every config object scanned (nested
layers, wrappers, initializers, dtype policies), every zip member inspected
(names, count, inflated sizes, compression), HDF5 files (links, external and
virtual storage, declared sizes, data types), ``weights`` files of spec
sub-models inspected just as thoroughly, and Sequential archives.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from corpus_kit import Case, error_line, spec, write

POLICY = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None}


# --- a kit for Keras 3 archives, without Keras ----------------------------------------------


def tensor(layer: str, node: int = 0, index: int = 0) -> dict[str, Any]:
    """A tensor reference as Keras writes it in a layer call."""
    return {
        "class_name": "__keras_tensor__",
        "config": {"shape": None, "dtype": "float32", "keras_history": [layer, node, index]},
    }


def input_layer(name: str, shape: list[int | None], dtype: str = "float32") -> dict[str, Any]:
    return {
        "module": "keras.layers",
        "class_name": "InputLayer",
        "config": {
            "batch_shape": [None, *shape],
            "dtype": dtype,
            "sparse": False,
            "ragged": False,
            "name": name,
            "optional": False,
        },
        "registered_name": None,
        "name": name,
        "inbound_nodes": [],
    }


def layer(
    cls: str,
    name: str,
    config: dict[str, Any],
    *inputs: str | tuple[str, int, int],
    build: Any = None,
    kwargs: dict[str, Any] | None = None,
    module: str = "keras.layers",
) -> dict[str, Any]:
    """A layer called once on ``inputs`` (layer names, or (layer, node, index) references)."""
    refs = [tensor(*i) if isinstance(i, tuple) else tensor(i) for i in inputs]
    out: dict[str, Any] = {
        "module": module,
        "class_name": cls,
        "config": {"name": name, "trainable": True, "dtype": POLICY, **config},
        "registered_name": None,
        "name": name,
        "inbound_nodes": [{"args": refs, "kwargs": kwargs or {}}] if refs else [],
    }
    if build is not None:
        out["build_config"] = {"input_shape": build}
    return out


def dense(name: str, units: int, source: str, fan_in: int, **extra: Any) -> dict[str, Any]:
    config = {"units": units, "activation": "linear", "use_bias": True, **extra}
    return layer("Dense", name, config, source, build=[None, fan_in])


def functional(name: str, layers: list[dict[str, Any]], inputs: Any, outputs: Any) -> dict[str, Any]:
    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {"name": name, "trainable": True, "layers": layers, "input_layers": inputs, "output_layers": outputs},
        "registered_name": "Functional",
        "build_config": {"input_shape": None},
        "compile_config": {},
    }


def weights_h5(arrays: dict[str, tuple[int, ...]], extra: Callable[[Any], None] | None = None) -> bytes:
    """An HDF5 weights file: zeros of the given shapes at the given paths (``layers/dense/vars/0``...)."""
    buf = io.BytesIO()
    with h5py.File(buf, "w") as h5:
        h5.create_group("layers")
        h5.create_group("vars")
        for path, shape in arrays.items():
            h5.create_dataset(path, data=np.zeros(shape, "float32"))
        if extra is not None:
            extra(h5)
    return buf.getvalue()


def dense_weights(fan_in: int, units: int, group: str = "dense") -> dict[str, tuple[int, ...]]:
    return {f"layers/{group}/vars/0": (fan_in, units), f"layers/{group}/vars/1": (units,)}


def archive(
    path: Path,
    config: Any,
    weights: bytes,
    extra: dict[str, bytes] | None = None,
    compress: int = zipfile.ZIP_STORED,
) -> Path:
    """A .keras zip: metadata.json, config.json, model.weights.h5 (stored, as Keras writes them), and ``extra``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.15.1", "date_saved": "2026-01-01@00:00:00"}))
        zf.writestr("config.json", json.dumps(config))
        zf.writestr(zipfile.ZipInfo("model.weights.h5"), weights, compress_type=compress)
        for name, data in (extra or {}).items():
            zf.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
    return path


def tiny_model(name: str = "tiny") -> dict[str, Any]:
    """x (4,) -> Dense(3): 15 parameters."""
    return functional(name, [input_layer("x", [4]), dense("d", 3, "x", 4)], [["x", 0, 0]], [["d", 0, 0]])


def tiny_archive(path: Path, mutate: Callable[[dict[str, Any]], Any] | None = None, **kw: Any) -> Path:
    config = tiny_model()
    if mutate is not None:
        mutate(config)
    return archive(path, config, kw.pop("weights", weights_h5(dense_weights(4, 3))), **kw)


def model_case(cid: str, target: Path, fragment: str, *, key: str = "model", args: tuple[str, ...] = ()) -> Case:
    """A spec whose node `y` calls the archive on an input of shape (4,)."""
    doc = spec(inputs={"x": {"shape": [4]}}, nodes={"y": {"model": target.name, "inputs": "x"}})
    f = write(target.parent / f"{cid}.json", doc)
    return Case(cid, f, 1, f"$.nodes.y.{key}", fragment, "model", args=args)


SUB_SPEC = {
    "fusec": 1,
    "name": "sub",
    "inputs": {"x": {"shape": [4]}},
    "nodes": {"d": {"layer": "Dense", "config": {"units": 3}, "inputs": "x"}},
    "outputs": {"d": {"from": "d"}},
}


def weights_case(cid: str, weights: Path, fragment: str) -> Case:
    """A spec whose node `y` is the spec SUB_SPEC (x (4,) -> Dense(3)) with trained weights from ``weights``."""
    write(weights.parent / "sub.json", SUB_SPEC)
    doc = spec(
        inputs={"x": {"shape": [4]}},
        nodes={"y": {"model": "sub.json", "weights": weights.name, "inputs": "x"}},
    )
    f = write(weights.parent / f"{cid}.json", doc)
    return Case(cid, f, 1, "$.nodes.y.weights", fragment, "model")


# --- class 1: shapes and counts computed, never read from build_config ----------------------


def _wide(units: int, build: Any) -> dict[str, Any]:
    """x (4,) -> Dense(units) -> Activation: the output's width is the Dense's."""
    act = layer("Activation", "out", {"activation": "linear"}, "wide", build=build)
    return functional(
        "wide", [input_layer("x", [4]), dense("wide", units, "x", 4), act], [["x", 0, 0]], [["out", 0, 0]]
    )


def _build_config_lies(tmp: Path) -> Case:
    """The review's budget bypass: the output layer's build_config claims (None, 2); the layers give (None, 3000)."""
    path = archive(tmp / "lies.keras", _wide(3000, [None, 2]), weights_h5(dense_weights(4, 3000)), compress=8)
    doc = spec(
        inputs={"x": {"shape": [4]}},
        nodes={
            "m": {"model": path.name, "inputs": "x"},
            "y": {"layer": "Dense", "config": {"units": 1000}, "inputs": "m"},
        },
    )
    f = write(tmp / "arc_build_config_lies.json", doc)
    return Case(
        "arc_build_config_lies", f, 1, "$.nodes.m.model", "is built for [null, 2] by its build_config", "model",
        args=("--max-params", "100000"),
    )  # fmt: skip


def _computed_width_budget(tmp: Path) -> Case:
    """With no build_config to lie in, the width computed from the layers puts the parent over the budget."""
    path = archive(tmp / "wide.keras", _wide(3000, None), weights_h5(dense_weights(4, 3000)), compress=8)
    doc = spec(
        inputs={"x": {"shape": [4]}},
        nodes={
            "m": {"model": path.name, "inputs": "x"},
            "y": {"layer": "Dense", "config": {"units": 1000}, "inputs": "m"},
        },
    )
    f = write(tmp / "arc_computed_width.json", doc)
    return Case(
        "arc_computed_width_budget", f, 1, "$", "the model has 3,016,000 parameters, over the budget of 100,000",
        "budget", args=("--max-params", "100000"),
    )  # fmt: skip


def _weights_disagree(tmp: Path) -> Case:
    path = tiny_archive(tmp / "disagree.keras", weights=weights_h5(dense_weights(4, 3000)), compress=8)
    return model_case("arc_weights_disagree_with_config", path, "holds 15,000 values in 1 layers, but its layers")


def _build_config_of_wrapped_layer(tmp: Path) -> Case:
    """Keras builds Bidirectional's inner layers from their own build_configs: they must agree too."""

    def mutate(config: dict[str, Any]) -> None:
        inner = {
            "module": "keras.layers",
            "class_name": "LSTM",
            "config": {"name": "fw", "units": 2, "return_sequences": False, "go_backwards": False},
            "registered_name": None,
            "build_config": {"input_shape": [None, 5, 999]},
        }
        bi = layer("Bidirectional", "bi", {"layer": inner, "merge_mode": "concat"}, "x", build=[None, 5, 4])
        config["config"]["layers"] = [input_layer("x", [5, 4]), bi]
        config["config"]["output_layers"] = [["bi", 0, 0]]

    path = tiny_archive(tmp / "inner_build.keras", mutate, weights=weights_h5({}))
    doc = spec(inputs={"x": {"shape": [5, 4]}}, nodes={"y": {"model": path.name, "inputs": "x"}})
    f = write(tmp / "arc_inner_build_config.json", doc)
    return Case("arc_inner_build_config", f, 1, "$.nodes.y.model", "is built for [null, 5, 999]", "model")


def _graph_cycle(tmp: Path) -> Case:
    def mutate(config: dict[str, Any]) -> None:
        a = dense("a", 4, "b", 4)
        b = dense("b", 4, "a", 4)
        config["config"]["layers"] = [input_layer("x", [4]), a, b]
        config["config"]["output_layers"] = [["b", 0, 0]]

    return model_case("arc_graph_cycle", tiny_archive(tmp / "cycle.keras", mutate), "form a cycle")


def _setting_outside_vocabulary(tmp: Path) -> Case:
    """A setting Keras has and fusec's rules do not model (here: LoRA adds weights)."""

    def mutate(config: dict[str, Any]) -> None:
        config["config"]["layers"][1]["config"]["lora_rank"] = 4

    return model_case("arc_lora_rank", tiny_archive(tmp / "lora.keras", mutate), "has `lora_rank` 4, a setting")


def _channels_first(tmp: Path) -> Case:
    def mutate(config: dict[str, Any]) -> None:
        conv = layer(
            "Conv1D", "c", {"filters": 2, "kernel_size": [1], "data_format": "channels_first"}, "x", build=[None, 4, 4]
        )
        config["config"]["layers"] = [input_layer("x", [4, 4]), conv]
        config["config"]["output_layers"] = [["c", 0, 0]]

    path = tiny_archive(tmp / "cf.keras", mutate, weights=weights_h5({}))
    doc = spec(inputs={"x": {"shape": [4, 4]}}, nodes={"y": {"model": path.name, "inputs": "x"}})
    f = write(tmp / "arc_channels_first.json", doc)
    return Case("arc_channels_first", f, 1, "$.nodes.y.model", '`data_format` "channels_first"', "model")


def _call_argument(tmp: Path) -> Case:
    def mutate(config: dict[str, Any]) -> None:
        config["config"]["layers"][1]["inbound_nodes"][0]["kwargs"] = {"training": False, "extra_state": 7}

    return model_case("arc_call_argument", tiny_archive(tmp / "kw.keras", mutate), "is called with `extra_state`=7")


# --- class 2: every config object, nested ones too -----------------------------------------

_LAMBDA = {
    "module": "keras.layers",
    "class_name": "Lambda",
    "config": {
        "name": "evil",
        "function": {"class_name": "__lambda__", "config": {"code": "4wEAAAAAAAAA", "defaults": None}},
    },
    "registered_name": None,
}


def _backward_lambda(tmp: Path) -> Case:
    """Bidirectional's backward_layer is a config of its own: a Lambda there must be seen."""

    def mutate(config: dict[str, Any]) -> None:
        forward = {"module": "keras.layers", "class_name": "LSTM", "config": {"name": "f", "units": 2}}
        bi = layer("Bidirectional", "bi", {"layer": forward, "backward_layer": _LAMBDA}, "x")
        config["config"]["layers"] = [input_layer("x", [5, 4]), bi]

    path = tiny_archive(tmp / "backward.keras", mutate)
    return model_case("arc_bidirectional_backward_lambda", path, "layer `Lambda` at config.config.layers[1]")


def _time_distributed(tmp: Path) -> Case:
    def mutate(config: dict[str, Any]) -> None:
        inner = {"module": "keras.layers", "class_name": "Dense", "config": {"name": "i", "units": 3}}
        config["config"]["layers"][1] = layer("TimeDistributed", "d", {"layer": inner}, "x")

    return model_case("arc_time_distributed", tiny_archive(tmp / "td.keras", mutate), "layer `TimeDistributed`")


def _nested_sequential_lambda(tmp: Path) -> Case:
    def mutate(config: dict[str, Any]) -> None:
        inner = {
            "module": "keras",
            "class_name": "Sequential",
            "config": {"name": "inner", "layers": [input_layer("i", [4]), _LAMBDA]},
            "registered_name": None,
            "name": "inner",
            "inbound_nodes": [{"args": [tensor("x")], "kwargs": {}}],
        }
        config["config"]["layers"].insert(1, inner)

    path = tiny_archive(tmp / "nested.keras", mutate)
    return model_case(
        "arc_nested_sequential_lambda", path, "layer `Lambda` at config.config.layers[1].config.layers[1]"
    )


def _initializer_class(tmp: Path) -> Case:
    """An allowed module, a class outside its allow-list (a function Keras would call by name)."""

    def mutate(config: dict[str, Any]) -> None:
        config["config"]["layers"][1]["config"]["kernel_initializer"] = {
            "module": "keras.initializers",
            "class_name": "deserialize",
            "config": {"config": {"module": "os", "class_name": "system"}},
            "registered_name": None,
        }

    path = tiny_archive(tmp / "init.keras", mutate)
    return model_case("arc_initializer_class", path, "class `deserialize` of `keras.initializers`")


def _quantized_policy(tmp: Path) -> Case:
    """A quantized dtype policy changes the weights Keras creates: not fusec's vocabulary."""

    def mutate(config: dict[str, Any]) -> None:
        config["config"]["layers"][1]["config"]["dtype"] = {
            "module": "keras",
            "class_name": "QuantizedDTypePolicy",
            "config": {"name": "int8_from_float32", "source_name": "float32"},
            "registered_name": None,
        }

    path = tiny_archive(tmp / "quant.keras", mutate)
    return model_case("arc_quantized_policy", path, "class `QuantizedDTypePolicy` of `keras`")


def _constraint_module(tmp: Path) -> Case:
    def mutate(config: dict[str, Any]) -> None:
        config["config"]["layers"][1]["config"]["kernel_constraint"] = {
            "module": "keras.src.utils.file_utils",
            "class_name": "File",
            "config": {"path": "/etc/passwd"},
            "registered_name": None,
        }

    path = tiny_archive(tmp / "constraint.keras", mutate)
    return model_case("arc_constraint_module", path, "module `keras.src.utils.file_utils`")


def _compile_config_loss(tmp: Path) -> Case:
    """Keras drops the compile config when loading with compile=False, but it is scanned all the same."""

    def mutate(config: dict[str, Any]) -> None:
        config["compile_config"] = {
            "loss": {"module": "builtins", "class_name": "eval", "config": {}, "registered_name": "builtins>eval"}
        }

    path = tiny_archive(tmp / "compile.keras", mutate)
    return model_case("arc_compile_config", path, "module `builtins`")


# --- class 3: every zip member, and the HDF5 file ------------------------------------------

_ZEROS = b"\0" * (1 << 20)


def _zeros(mib: int) -> bytes:
    return _ZEROS * mib


def _extra_members(tmp: Path) -> Case:
    """Members Keras would extract to the temp folder: refused by name before any is inflated."""
    extra = {f"pad{i}.bin": _zeros(32) for i in range(8)}
    path = tiny_archive(tmp / "padded.keras", extra=extra)
    return model_case("arc_extra_members", path, "holds a member fusec does not load: `pad0.bin`")


def _assets(tmp: Path) -> Case:
    path = tiny_archive(tmp / "assets.keras", extra={"assets/vocab.txt": b"a\nb\n"})
    return model_case("arc_assets", path, "holds assets (`assets/vocab.txt`)")


def _many_members(tmp: Path) -> Case:
    extra = {f"m{i}": b"" for i in range(40)}
    path = tiny_archive(tmp / "many.keras", extra=extra)
    return model_case("arc_many_members", path, "holds 43 members; a .keras archive holds at most 3")


def _duplicate_member(tmp: Path) -> Case:
    path = tiny_archive(tmp / "dup.keras")
    with pytest.warns(UserWarning), zipfile.ZipFile(path, "a") as zf:
        zf.writestr("config.json", json.dumps(tiny_model("other")))
    return model_case("arc_duplicate_member", path, "holds `config.json` twice")


def _weights_bomb(tmp: Path) -> Case:
    """A 100 KB archive whose weights member inflates to 96 MiB."""
    path = tiny_archive(tmp / "bomb.keras", weights=_zeros(96), compress=zipfile.ZIP_DEFLATED)
    return model_case("arc_weights_bomb", path, "would expand to 100,663,296 bytes")


def _bzip2(tmp: Path) -> Case:
    path = tiny_archive(tmp / "bz.keras", compress=zipfile.ZIP_BZIP2)
    return model_case("arc_bzip2_member", path, "uses compression method 12")


def _no_weights(tmp: Path) -> Case:
    path = tmp / "noweights.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", json.dumps(tiny_model()))
    return model_case("arc_no_weights", path, "has no `model.weights.h5`")


def _h5_case(cid: str, tmp: Path, extra: Callable[[Any], None], fragment: str) -> Case:
    path = tiny_archive(tmp / f"{cid}.keras", weights=weights_h5(dense_weights(4, 3), extra))
    return model_case(cid, path, fragment)


def _h5_external_link(tmp: Path) -> Case:
    def extra(h5: Any) -> None:
        h5["layers/dense/vars/2"] = h5py.ExternalLink("/etc/passwd", "/x")

    return _h5_case("arc_h5_external_link", tmp, extra, "has an external link at `layers/dense/vars/2`")


def _h5_soft_link(tmp: Path) -> Case:
    def extra(h5: Any) -> None:
        h5["layers/alias"] = h5py.SoftLink("/layers/dense")

    return _h5_case("arc_h5_soft_link", tmp, extra, "has a soft link at `layers/alias`")


def _h5_external_storage(tmp: Path) -> Case:
    """What Keras reported as "A total of 1 objects could not be loaded": data kept in another file."""

    def extra(h5: Any) -> None:
        del h5["layers/dense/vars/1"]
        h5.create_dataset("layers/dense/vars/1", shape=(3,), dtype="f4", external=[("/etc/hostname", 0, 12)])

    return _h5_case("arc_h5_external_storage", tmp, extra, "stores `layers/dense/vars/1` in external files")


def _h5_virtual(tmp: Path) -> Case:
    def extra(h5: Any) -> None:
        layout = h5py.VirtualLayout(shape=(3,), dtype="f4")
        layout[:] = h5py.VirtualSource("/etc/other.h5", "data", shape=(3,))
        del h5["layers/dense/vars/1"]
        h5.create_virtual_dataset("layers/dense/vars/1", layout)

    return _h5_case("arc_h5_virtual_dataset", tmp, extra, "has a virtual dataset at `layers/dense/vars/1`")


def _h5_declared_huge(tmp: Path) -> Case:
    """A chunked dataset declaring a terabyte and storing nothing: Keras would allocate it."""

    def extra(h5: Any) -> None:
        h5.create_dataset("optimizer/vars/0", shape=(1 << 38,), dtype="f4", chunks=(1024,))

    return _h5_case("arc_h5_declared_huge", tmp, extra, "declares 1,099,511,627,776 bytes of data")


def _h5_strings(tmp: Path) -> Case:
    def extra(h5: Any) -> None:
        h5.create_dataset("layers/dense/vars/2", data=np.array([b"x" * 10]), dtype=h5py.string_dtype())

    return _h5_case("arc_h5_strings", tmp, extra, "not plain numbers")


def _h5_not_hdf5(tmp: Path) -> Case:
    path = tiny_archive(tmp / "garbage.keras", weights=b"\x89HDF\r\n\x1a\n" + b"\xff" * 200)
    return model_case("arc_h5_garbage", path, "is not a readable .keras archive")


# --- class 4: weights files of spec sub-models ----------------------------------------------


def _weights_lambda(tmp: Path) -> Case:
    def mutate(config: dict[str, Any]) -> None:
        config["config"]["layers"].insert(1, {**_LAMBDA, "name": "evil", "inbound_nodes": []})

    path = tiny_archive(tmp / "trained.keras", mutate)
    return weights_case("arc_weights_archive_lambda", path, "holds classes fusec will not load: layer `Lambda`")


def _weights_inflate(tmp: Path) -> Case:
    path = tiny_archive(tmp / "trained.keras", weights=_zeros(96), compress=zipfile.ZIP_DEFLATED)
    return weights_case("arc_weights_archive_bomb", path, "would expand to 100,663,296 bytes")


def _weights_h5_counts(tmp: Path) -> Case:
    path = write(tmp / "trained.weights.h5", weights_h5(dense_weights(4, 5)))
    return weights_case(
        "arc_weights_h5_counts", path, "holds 25 weight values in 1 layers; the sub-model's spec has 15"
    )


def _weights_archive_counts(tmp: Path) -> Case:
    def mutate(config: dict[str, Any]) -> None:
        config["config"]["layers"][1] = dense("d", 5, "x", 4)

    path = tiny_archive(tmp / "trained.keras", mutate, weights=weights_h5(dense_weights(4, 5)))
    return weights_case("arc_weights_archive_counts", path, "holds 25 weight values")


def _weights_h5_external(tmp: Path) -> Case:
    def extra(h5: Any) -> None:
        h5["layers/dense/vars/2"] = h5py.ExternalLink("secret.h5", "/x")

    path = write(tmp / "trained.weights.h5", weights_h5(dense_weights(4, 3), extra))
    return weights_case("arc_weights_h5_external_link", path, "has an external link")


# --- class 6: Sequential archives and messages ---------------------------------------------


def _sequential_without_input(tmp: Path) -> Case:
    seq = {
        "module": "keras",
        "class_name": "Sequential",
        "config": {"name": "seq", "trainable": True, "layers": [{**dense("d", 3, "x", 4), "inbound_nodes": []}]},
        "registered_name": None,
    }
    path = archive(tmp / "seq.keras", seq, weights_h5(dense_weights(4, 3)))
    return model_case("arc_sequential_without_input", path, "Sequential model `seq` declares no input shape")


def _sequential_wrong_input(tmp: Path) -> Case:
    """A usable Sequential archive (its InputLayer gives the input): the message blames the shapes, not the names."""
    seq = {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "name": "seq",
            "trainable": True,
            "layers": [input_layer("feat", [6]), {**dense("d", 3, "x", 6), "inbound_nodes": []}],
        },
        "registered_name": None,
    }
    path = archive(tmp / "seq6.keras", seq, weights_h5(dense_weights(6, 3)))
    doc = spec(inputs={"x": {"shape": [4]}}, nodes={"y": {"model": path.name, "inputs": "x"}})
    f = write(tmp / "arc_sequential_wrong_input.json", doc)
    return Case(
        "arc_sequential_wrong_input", f, 1, "$.nodes.y.inputs", "input `feat` takes (None, 6). Received: (None, 4)",
        "model",
    )  # fmt: skip


# --- the second review: objects standing for others, damaged members, names, weights layout -----


def _shared_object_layer(tmp: Path) -> Case:
    """Keras hands back the first object carrying a shared-object id: a layer with one stands for another."""

    def mutate(config: dict[str, Any]) -> None:
        config["config"]["layers"][1]["shared_object_id"] = 777

    path = tiny_archive(tmp / "shared.keras", mutate)
    return model_case("arc_shared_object_layer", path, "a layer or model standing for another (`shared_object_id`)")


def _shared_object_differs(tmp: Path) -> Case:
    """Two initializers under one shared-object id with different configs: Keras would build only the first."""

    def mutate(config: dict[str, Any]) -> None:
        d = config["config"]["layers"][1]["config"]
        d["kernel_initializer"] = {
            "module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": 1},
            "registered_name": None, "shared_object_id": 5,
        }  # fmt: skip
        d["bias_initializer"] = {
            "module": "keras.initializers", "class_name": "Zeros", "config": {},
            "registered_name": None, "shared_object_id": 5,
        }  # fmt: skip

    path = tiny_archive(tmp / "shared2.keras", mutate)
    return model_case("arc_shared_object_differs", path, "an object standing for a different one")


def _damaged_weights_member(tmp: Path) -> Case:
    """One byte of the stored weights member changed after zipping: its CRC-32 no longer matches."""
    path = tiny_archive(tmp / "crc.keras")
    data = bytearray(path.read_bytes())
    at = data.index(b"\x89HDF") + 1200
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    return model_case("arc_damaged_weights_member", path, "is damaged (its bytes do not match its CRC-32)")


def _layer_name_slash(tmp: Path) -> Case:
    def mutate(config: dict[str, Any]) -> None:
        config["config"]["layers"][1]["config"]["name"] = "a/b"

    path = tiny_archive(tmp / "slash.keras", mutate)
    return model_case("arc_layer_name_slash", path, 'has the name "a/b", which Keras refuses')


def _model_name_path(tmp: Path) -> Case:
    def mutate(config: dict[str, Any]) -> None:
        config["config"]["name"] = "../../evil"

    path = tiny_archive(tmp / "evil.keras", mutate)
    return model_case("arc_model_name_path", path, 'has the name "../../evil", which Keras refuses')


def _weights_group_renamed(tmp: Path) -> Case:
    """The right counts under a group Keras never reads (it reads `layers/dense` for the first Dense)."""
    path = tiny_archive(tmp / "renamed.keras", weights=weights_h5(dense_weights(4, 3, group="dense_renamed")))
    return model_case("arc_weights_group_renamed", path, "holds 0 values in group `layers/dense`")


def _weights_variable_gap(tmp: Path) -> Case:
    """A bias stored as `vars/7`: Keras reads `vars/0` and `vars/1`."""
    arrays = {"layers/dense/vars/0": (4, 3), "layers/dense/vars/7": (3,)}
    path = tiny_archive(tmp / "gap.keras", weights=weights_h5(arrays))
    return model_case("arc_weights_variable_gap", path, "Keras reads a layer's variables from `vars/0` to `vars/1`")


def _mask_ops(tmp: Path) -> Case:
    """A Keras op carrying settings Keras never writes for a mask: refused."""

    def mutate(config: dict[str, Any]) -> None:
        op = layer("NotEqual", "not_equal", {"name": "not_equal"}, "x", module="keras.src.ops.numpy")
        config["config"]["layers"].insert(1, op)

    path = tiny_archive(tmp / "masked.keras", mutate)
    return model_case("arc_mask_ops", path, "which Keras never writes for a mask")


GENERATED: list[Callable[[Path], Case]] = [
    _build_config_lies,
    _computed_width_budget,
    _weights_disagree,
    _build_config_of_wrapped_layer,
    _graph_cycle,
    _setting_outside_vocabulary,
    _channels_first,
    _call_argument,
    _backward_lambda,
    _time_distributed,
    _nested_sequential_lambda,
    _initializer_class,
    _quantized_policy,
    _constraint_module,
    _compile_config_loss,
    _extra_members,
    _assets,
    _many_members,
    _duplicate_member,
    _weights_bomb,
    _bzip2,
    _no_weights,
    _h5_external_link,
    _h5_soft_link,
    _h5_external_storage,
    _h5_virtual,
    _h5_declared_huge,
    _h5_strings,
    _h5_not_hdf5,
    _weights_lambda,
    _weights_inflate,
    _weights_h5_counts,
    _weights_archive_counts,
    _weights_h5_external,
    _sequential_without_input,
    _sequential_wrong_input,
    _shared_object_layer,
    _shared_object_differs,
    _damaged_weights_member,
    _layer_name_slash,
    _model_name_path,
    _weights_group_renamed,
    _weights_variable_gap,
    _mask_ops,
]
IDS = [g.__name__.lstrip("_") for g in GENERATED]


@pytest.mark.parametrize("make", GENERATED, ids=IDS)
def test_archive_case(make: Callable[[Path], Case], corpus_run: Any) -> None:
    corpus_run(make)


def test_the_kit_makes_a_valid_archive(tmp_path: Path) -> None:
    """The cases differ from an accepted archive only in what each one breaks."""
    from fusec.static.check import check_spec

    path = tiny_archive(tmp_path / "ok.keras")
    doc = spec(inputs={"x": {"shape": [4]}}, nodes={"y": {"model": path.name, "inputs": "x"}})
    checked = check_spec(write(tmp_path / "ok.json", doc))
    assert checked.info["y"].shape == (None, 3)
    assert checked.info["y"].params == 15
    trained = tiny_archive(tmp_path / "trained.keras")
    write(tmp_path / "trained.weights.h5", weights_h5(dense_weights(4, 3)))
    for weights in (trained, tmp_path / "trained.weights.h5"):
        case = weights_case("ok", weights, "")
        assert check_spec(case.file).totals.params == 15


IN_A_PROCESS = [_build_config_lies, _backward_lambda, _extra_members, _h5_external_storage, _weights_inflate]


@pytest.mark.parametrize("make", IN_A_PROCESS, ids=[g.__name__.lstrip("_") for g in IN_A_PROCESS])
def test_archive_case_without_tensorflow(make: Callable[[Path], Case], no_tf: Path, tmp_path: Path) -> None:
    """``fusec check`` inspects archives with TensorFlow and Keras unimportable: nothing of Keras runs."""
    case = make(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(no_tf), "TMPDIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "fusec", "check", str(case.file), *case.args],
        capture_output=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    stderr = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == case.exit, stderr
    assert any(error_line(line, case.file, case.path) and case.fragment in line for line in stderr.splitlines()), stderr


def test_at_least_twelve_new_cases() -> None:
    table = json.loads((Path(__file__).parent / "corpus" / "cases_archives.json").read_text(encoding="utf-8"))
    assert all(c["id"].startswith("arc_") and c["file"].startswith("arc_") for c in table)
    assert len(GENERATED) + len(table) >= 12
    assert len(set(IDS)) == len(IDS)
