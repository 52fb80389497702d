"""Rebuild the two "pretrained" sub-models used by specs/late_fusion_pretrained.json.

Compiles specs/parts/image_classifier.json and text_classifier.json, trains
each for one short epoch on random data (so the weights are not the initial
ones), and writes image_classifier.keras and text_classifier.keras beside
this script. The archives are committed; run this only to regenerate them:

    .venv/bin/python specs/parts/make_pretrained.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fusec.build import build_model
from fusec.check import check_spec

HERE = Path(__file__).resolve().parent


def main() -> None:
    rng = np.random.default_rng(0)
    data = {
        "image_classifier": {"image": rng.uniform(0, 255, (64, 32, 32, 3)).astype("float32")},
        "text_classifier": {"text": rng.integers(0, 1000, (64, 24)).astype("int32")},
    }
    labels = np.eye(5, dtype="float32")[rng.integers(0, 5, 64)]
    for name, x in data.items():
        model = build_model(check_spec(HERE / f"{name}.json"))
        model.fit(x, {"probs": labels}, epochs=1, batch_size=16, verbose=0)
        # Save the trained weights without optimizer state: what a "pretrained model" ships as.
        frozen = build_model(check_spec(HERE / f"{name}.json"), compile=False)
        frozen.set_weights(model.get_weights())
        frozen.save(HERE / f"{name}.keras")
        print(f"wrote {HERE / f'{name}.keras'}")


if __name__ == "__main__":
    main()
