"""A module that registers an op when imported, as a user's plugin module would."""

from __future__ import annotations

from torch import nn

from nas_skip import register_op


class Doubler(nn.Module):
    def __init__(self, in_shape: tuple[int, ...]) -> None:
        super().__init__()

    def forward(self, x):  # type: ignore[no-untyped-def]
        return 2 * x


register_op("plugin_doubler", Doubler, doc="twice the input")
