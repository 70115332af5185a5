"""A user's own ops for tests/test_custom_ops.py: module-level factories, importable."""

from __future__ import annotations

import torch
from torch import nn


class ScaledTanh(nn.Module):
    """``scale * tanh(W x)``: a linear layer to ``features``, a tanh scaled by ``scale``."""

    def __init__(self, in_shape: tuple[int, ...], features: int, scale: float = 1.0) -> None:
        super().__init__()
        self.fc = nn.Linear(in_shape[0], features)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * torch.tanh(self.fc(x))


def gated_conv(in_shape: tuple[int, ...], channels: int) -> nn.Module:
    """A 3x3 convolution to ``channels`` gated by a sigmoid 1x1 convolution."""
    return GatedConv(in_shape[0], channels)


class GatedConv(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.gate = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * torch.sigmoid(self.gate(x))
