"""Convolution, pooling, padding, cropping and upsampling layers."""

from __future__ import annotations

from .rules import LayerRule

LAYERS: tuple[LayerRule, ...] = ()
