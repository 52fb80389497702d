"""Recurrent layers: SimpleRNN, LSTM, GRU and Bidirectional."""

from __future__ import annotations

from .rules import LayerRule

LAYERS: tuple[LayerRule, ...] = ()
