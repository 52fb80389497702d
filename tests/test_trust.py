"""Sub-models on trust (``"trust": PKG`` and ``--trust PKG``): refused by default, verified when loaded.

The fast tests write trusted-looking archives by hand (no TensorFlow); the
slow ones save real models: a tiny randomly initialised keras_hub
``BertBackbone`` (no download) fused with an image branch as in seed 001, and
a layer class registered under this test module's own package, for machines
without keras_hub.
"""

from __future__ import annotations

import copy
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from test_corpus_archives import archive, dense, functional, input_layer, layer, weights_h5

from fusec.cli import cli
from fusec.errors import FusecError
from fusec.static.archive.trusted import trusting
from fusec.static.check import check_spec
from helpers import spec, write

#: This module's top-level package, under which the slow test registers its layer class.
PKG = __name__.split(".")[0]
HUB_MODULE = "keras_hub.src.models.bert.bert_backbone"


def hub_config(**changes: Any) -> dict[str, Any]:
    """A config.json as keras_hub writes a BertBackbone's (its constructor's arguments)."""
    config: dict[str, Any] = {
        "module": HUB_MODULE,
        "class_name": "BertBackbone",
        "config": {
            "name": "bert_backbone",
            "trainable": True,
            "dtype": {
                "module": "keras",
                "class_name": "DTypePolicy",
                "config": {"name": "float32"},
                "registered_name": None,
            },
            "vocabulary_size": 100,
            "num_layers": 1,
            "hidden_dim": 16,
        },
        "registered_name": "keras_hub>BertBackbone",
        "build_config": {"input_shape": None},
        "compile_config": {},
    }
    config.update(changes)
    return config


def hub_archive(folder: Path, config: Any = None, name: str = "bert.keras", **kw: Any) -> Path:
    """A hand-written archive: the config above and 100 x 16 + 16 x 16 + 16 stored values (1,872)."""
    weights = weights_h5(
        {"layers/embedding/vars/0": (100, 16), "layers/dense/vars/0": (16, 16), "layers/dense/vars/1": (16,)}
    )
    return archive(folder / name, hub_config() if config is None else config, weights, **kw)


def fusion_spec(node: dict[str, Any] | None = None, seq: int = 8) -> dict[str, Any]:
    """Seed 001's fusion: BERT's pooled output concatenated with a small CNN's features, one softmax head."""
    bert = {
        "model": "bert.keras",
        "trust": "keras_hub",
        "output": "pooled_output",
        "shapes": {"pooled_output": [16], "sequence_output": [seq, 16]},
        "inputs": {"token_ids": "tokens", "segment_ids": "segments", "padding_mask": "mask"},
    }
    return spec(
        inputs={
            "tokens": {"shape": [seq], "dtype": "int32"},
            "segments": {"shape": [seq], "dtype": "int32"},
            "mask": {"shape": [seq], "dtype": "int32"},
            "image": {"shape": [12, 12, 3]},
        },
        nodes={
            "bert": bert if node is None else node,
            "conv": {
                "layer": "Conv2D",
                "config": {"filters": 4, "kernel_size": 3, "activation": "relu"},
                "inputs": "image",
            },
            "pool": {"layer": "GlobalAveragePooling2D", "inputs": "conv"},
            "merged": {"merge": "concat", "inputs": ["bert", "pool"]},
            "head": {"layer": "Dense", "config": {"units": 3, "activation": "softmax"}, "inputs": "merged"},
        },
        outputs={"label": {"from": "head", "loss": "sparse_categorical_crossentropy"}},
    )


def refusal(path: Path, trust: tuple[str, ...] = ("keras_hub",)) -> str:
    """The one problem checking ``path`` under ``trust`` reports, as the CLI prints it."""
    with trusting(trust), pytest.raises(FusecError) as err:
        check_spec(path)
    assert err.value.exit_code == 1
    return str(err.value)


# --- statically, without TensorFlow ---------------------------------------------------------------


def test_trusted_node_checks_only_when_the_command_trusts_the_package(tmp_path: Path) -> None:
    hub_archive(tmp_path)
    f = write(tmp_path, fusion_spec())
    text = refusal(f, ())
    assert "$.nodes.bert.trust" in text
    assert f"`{HUB_MODULE}.BertBackbone`" in text
    assert "pass --trust keras_hub" in text
    result = CliRunner().invoke(cli, ["check", str(f)])
    assert result.exit_code == 1 and "--trust keras_hub" in result.output
    result = CliRunner().invoke(cli, ["check", "--trust", "keras_hub", str(f)])
    assert result.exit_code == 0, result.output
    # 1,872 stored values + conv (3*3*3*4 + 4) + head ((16 + 4) * 3 + 3)
    assert "2,047 params" in result.output
    with trusting(["keras_hub"]):
        checked = check_spec(f)
    assert checked.shapes.info["bert"].shape == (None, 16)
    assert checked.shapes.models["bert"].sub.kind == "trusted:keras_hub"


def test_another_package_lambda_and_functions_are_refused_on_trust(tmp_path: Path) -> None:
    f = write(tmp_path, fusion_spec())
    evil = hub_config()
    evil["config"]["pooler"] = {"module": "evil.layers", "class_name": "Pooler", "config": {}, "registered_name": None}
    hub_archive(tmp_path, evil)
    assert "module `evil.layers` at config.config.pooler" in refusal(f)
    for inner in (
        {"module": "keras.layers", "class_name": "Lambda", "config": {}, "registered_name": None},
        {"module": "keras_hub.src.layers", "class_name": "__lambda__", "config": {}, "registered_name": None},
        {"module": "keras_hub.src.utils", "class_name": "function", "config": "gelu", "registered_name": "function"},
        {"class_name": "X", "module": "keras_hub.src.x", "config": {"function": "abc", "function_type": "lambda"}},
        {"module": "keras_hub.src.layers", "class_name": "Pooler", "config": {}, "registered_name": "evil>Pooler"},
    ):
        config = hub_config()
        config["config"]["activation"] = inner
        hub_archive(tmp_path, config)
        text = refusal(f)
        assert "will not load on trust of `keras_hub`" in text and "at config.config.activation" in text, text
    other = write(tmp_path, fusion_spec(dict(fusion_spec()["nodes"]["bert"], trust="other_pkg")), "other.json")
    hub_archive(tmp_path)
    assert f"module `{HUB_MODULE}` at config" in refusal(other, ("other_pkg",))
    keras_only = functional("m", [input_layer("x", [4]), dense("d", 3, "x", 4)], [["x", 0, 0]], [["d", 0, 0]])
    hub_archive(tmp_path, keras_only)
    assert "names no class of `keras_hub`" in refusal(f)


def test_trusted_archives_are_still_zip_verified(tmp_path: Path) -> None:
    hub_archive(tmp_path, extra={"assets/vocab.txt": b"[PAD]"})
    assert "holds assets" in refusal(write(tmp_path, fusion_spec()))


def test_shapes_are_declared_and_only_with_trust(tmp_path: Path) -> None:
    hub_archive(tmp_path)
    node = dict(fusion_spec()["nodes"]["bert"])
    del node["shapes"]
    assert "declare them" in refusal(write(tmp_path, fusion_spec(node)))
    node = dict(fusion_spec()["nodes"]["bert"])
    del node["trust"]
    assert "this node has no `trust`" in refusal(write(tmp_path, fusion_spec(node)))
    node = dict(fusion_spec()["nodes"]["bert"], output="cls_output")
    assert "no output `cls_output`" in refusal(write(tmp_path, fusion_spec(node)))


def test_a_plain_node_on_a_zoo_archive_says_how_to_trust_it(tmp_path: Path) -> None:
    hub_archive(tmp_path)
    node = {"model": "bert.keras", "inputs": {"token_ids": "tokens", "segment_ids": "segments", "padding_mask": "mask"}}
    doc = fusion_spec(node)
    text = refusal(write(tmp_path, doc))
    assert "module `keras_hub" in text and '"trust": "keras_hub"' in text and "--trust keras_hub" in text


def test_one_file_on_trust_and_off_is_refused(tmp_path: Path) -> None:
    hub_archive(tmp_path)
    doc = fusion_spec()
    doc["nodes"]["again"] = {"model": "bert.keras", "inputs": {"token_ids": "tokens"}}
    doc["nodes"]["merged"]["inputs"].append("again")
    assert "on trust and by another without" in refusal(write(tmp_path, doc))


@pytest.mark.parametrize("value", ["keras", "a.b", "os;rm", ""])
def test_the_flag_takes_a_package_name(tmp_path: Path, value: str) -> None:
    f = write(tmp_path, fusion_spec())
    result = CliRunner().invoke(cli, ["check", "--trust", value, str(f)])
    assert result.exit_code == 2 and "--trust" in result.output


def test_schema_knows_trust_and_shapes(tmp_path: Path) -> None:
    hub_archive(tmp_path)
    node = dict(fusion_spec()["nodes"]["bert"], shapes={"pooled_output": ["16"]})
    assert "$.nodes.bert.shapes" in refusal(write(tmp_path, fusion_spec(node)))
    node = dict(fusion_spec()["nodes"]["bert"], trust="keras_hub.models")
    assert "$.nodes.bert.trust" in refusal(write(tmp_path, fusion_spec(node)))
    layer_node = {"layer": "Dense", "config": {"units": 2}, "trust": "keras_hub", "inputs": "tokens"}
    assert "$.nodes.bert" in refusal(write(tmp_path, fusion_spec(layer_node)))


# --- loaded by Keras ---------------------------------------------------------------------------------


def _compile(f: Path, out: Path, *trust: str) -> Any:
    args = ["compile", *(a for t in trust for a in ("--trust", t)), str(f), "-o", str(out)]
    return CliRunner().invoke(cli, args)


def _label(out: Any) -> Any:
    """A compiled one-output model's prediction (a dict keyed by the output's name)."""
    return np.asarray(out["label"] if isinstance(out, dict) else out)


def _same_fusion(keras: Any, sub: Any, compiled: Any, pooled: str | None) -> Any:
    """The spec's fusion written in Keras, around the same sub-model, with the compiled model's head weights."""
    names = list(sub.input) if isinstance(sub.input, dict) else ["x"]
    ins = {
        n: keras.Input(shape=tuple(t.shape[1:]), dtype=t.dtype, name=n) for n, t in zip(names, sub.inputs, strict=True)
    }
    image = keras.Input(shape=(12, 12, 3), name="image")
    out = sub(ins if isinstance(sub.input, dict) else ins["x"])
    text = out[pooled] if pooled else out
    conv = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(image)
    pool = keras.layers.GlobalAveragePooling2D(name="pool")(conv)
    merged = keras.layers.Concatenate(name="merged")([text, pool])
    head = keras.layers.Dense(3, activation="softmax", name="head")(merged)
    model = keras.Model([*ins.values(), image], head)
    for name in ("conv", "head"):
        model.get_layer(name).set_weights(compiled.get_layer(name).get_weights())
    return model


def test_keras_hub_bert_fused_with_an_image_branch(keras: Any, tmp_path: Path) -> None:
    keras_hub = pytest.importorskip("keras_hub")
    bert = keras_hub.models.BertBackbone(
        vocabulary_size=100, num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32, max_sequence_length=8
    )
    bert.save(tmp_path / "bert.keras")
    f = write(tmp_path, fusion_spec())
    result = _compile(f, tmp_path / "out", "keras_hub")
    assert result.exit_code == 0, result.output
    import fusec

    compiled = fusec.load_model(tmp_path / "out", compile=False)
    rng = np.random.default_rng(0)
    feeds = {
        "tokens": rng.integers(1, 100, (4, 8)).astype("int32"),
        "segments": rng.integers(0, 2, (4, 8)).astype("int32"),
        "mask": np.array([[1] * 8, [1] * 5 + [0] * 3, [1] * 2 + [0] * 6, [1] * 8], "int32"),
        "image": rng.normal(size=(4, 12, 12, 3)).astype("float32"),
    }
    got = _label(compiled.predict([feeds[k] for k in ("tokens", "segments", "mask", "image")], verbose=0))
    sub = keras.saving.load_model(tmp_path / "bert.keras", compile=False, safe_mode=True)
    ref = _same_fusion(keras, sub, compiled, "pooled_output")
    want = ref.predict(
        {
            "token_ids": feeds["tokens"],
            "segment_ids": feeds["segments"],
            "padding_mask": feeds["mask"],
            "image": feeds["image"],
        },
        verbose=0,
    )
    assert np.abs(got - want).max() <= 1e-6
    assert compiled.count_params() == ref.count_params() == 4288 + 112 + 63

    # a declared shape that is wrong: exit 1 naming the node, the output and both shapes; nothing written
    wrong = write(tmp_path, fusion_spec(dict(fusion_spec()["nodes"]["bert"], shapes={"pooled_output": [32]})), "w.json")
    result = _compile(wrong, tmp_path / "out2", "keras_hub")
    assert result.exit_code == 1
    assert "$.nodes.bert" in result.output and "`pooled_output` is declared (None, 32)" in result.output
    assert "gives (None, 16)" in result.output
    assert not (tmp_path / "out2").exists()


def _registered_layer(keras: Any) -> type:
    """A layer class registered under this module's package: a learned per-feature scale."""

    @keras.saving.register_keras_serializable(package=PKG)
    class TrustScale(keras.layers.Layer):
        def build(self, shape: Any) -> None:
            self.scale = self.add_weight(shape=(shape[-1],), initializer="random_normal", name="scale")

        def call(self, x: Any) -> Any:
            return x * self.scale

    return TrustScale


def test_a_registered_package_layer_on_trust(keras: Any, tmp_path: Path) -> None:
    scale = _registered_layer(keras)
    x = keras.Input(shape=(6,), name="x")
    sub = keras.Model(x, scale(name="scaled")(keras.layers.Dense(16, name="d")(x)), name="text_part")
    sub.save(tmp_path / "bert.keras")
    config = json.loads(zipfile.ZipFile(tmp_path / "bert.keras").read("config.json"))
    assert any(f'"{PKG}>TrustScale"' in json.dumps(v) for v in config["config"]["layers"])
    node = {"model": "bert.keras", "trust": PKG, "shapes": {"scaled": [16]}, "inputs": "feats"}
    doc = fusion_spec(node)
    doc["inputs"] = {"feats": {"shape": [6]}, "image": {"shape": [12, 12, 3]}}
    f = write(tmp_path, doc)
    assert _compile(f, tmp_path / "no", "keras_hub").exit_code == 1  # another package trusted: still refused
    result = _compile(f, tmp_path / "out", PKG)
    assert result.exit_code == 0, result.output
    import fusec

    compiled = fusec.load_model(tmp_path / "out", compile=False)
    rng = np.random.default_rng(1)
    feats, image = rng.normal(size=(3, 6)).astype("float32"), rng.normal(size=(3, 12, 12, 3)).astype("float32")
    ref = _same_fusion(
        keras, keras.saving.load_model(tmp_path / "bert.keras", compile=False, safe_mode=True), compiled, None
    )
    got = _label(compiled.predict([feats, image], verbose=0))
    assert np.abs(got - ref.predict([feats, image], verbose=0)).max() <= 1e-6

    # a Lambda beside the package's layer: refused before Keras sees the archive
    lam = copy.deepcopy(config)
    lam["config"]["layers"].append(layer("Lambda", "lam", {"function": {"class_name": "__lambda__"}}, "d"))
    archive(tmp_path / "bert.keras", lam, weights_h5({"layers/dense/vars/0": (6, 16)}))
    result = _compile(f, tmp_path / "out3", PKG)
    assert result.exit_code == 1 and "`Lambda` at config.config.layers[3]" in result.output
    assert not (tmp_path / "out3").exists()


def test_a_keras_only_config_passes_the_trusted_scan() -> None:
    """Keras's own classes need no trust: the scan accepts them and reports no package class."""
    config = functional("m", [input_layer("x", [4]), dense("d", 3, "x", 4)], [["x", 0, 0]], [["d", 0, 0]])
    from fusec.static.archive.trusted import scan_trusted

    assert scan_trusted(config, "keras_hub", "m.keras") == ()
