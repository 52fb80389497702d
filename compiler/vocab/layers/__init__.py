"""The layer vocabulary: one registry table, keyed by the spec's ``layer`` name.

Searching this file for a layer name finds its rule module. A name that is not
a key here is refused, whatever Keras itself might accept: the table is closed
and matched by exact name, so nothing in a spec can reach Lambda, TFSMLayer,
lookup layers that read files, or a dotted import path.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..rule import LayerRule
from . import attention as layers_attention
from . import conv as layers_conv
from . import core as layers_core
from . import rnn as layers_rnn
from . import text as layers_text

#: Every layer a spec may name, by its Keras class name.
LAYERS: Mapping[str, LayerRule] = {
    rule.name: rule
    for rule in (
        *layers_core.LAYERS,
        *layers_conv.LAYERS,
        *layers_rnn.LAYERS,
        *layers_attention.LAYERS,
        *layers_text.LAYERS,
    )
}

#: Layers refused on purpose, with the reason shown to the user.
REFUSED: Mapping[str, str] = {
    "Lambda": "runs arbitrary Python code; write the computation as layers and merges",
    "TFSMLayer": "loads and runs a SavedModel from a path; use a `model` node instead",
    "StringLookup": "can read a vocabulary file; map strings to ids before the model",
    "IntegerLookup": "can read a vocabulary file; map values to ids before the model",
    "TextVectorization": "can read a vocabulary file and runs custom standardisation code",
    "Hashing": "not in the vocabulary; hash features before the model",
}
