"""The dataset contract shared by every loader, the trainer and the search spaces."""

from __future__ import annotations

from dataclasses import dataclass

import torch

#: What a search space needs from a dataset: vector (F,), signal (C, L) or image (C, H, W)
#: classification, or segmentation (C, H, W) -> per-pixel classes (H, W).
DATA_DOMAINS = ("vector", "signal", "image", "segmentation")


@dataclass(frozen=True)
class Dataset:
    """A dataset held in memory as tensors, split deterministically.

    ``x_*`` are float32 tensors shaped ``(N, *input_shape)``; ``y_*`` are int64 class
    labels, shaped ``(N,)`` for classification and ``(N, H, W)`` for segmentation.
    """

    name: str
    domain: str  # one of DATA_DOMAINS
    input_shape: tuple[int, ...]
    num_classes: int
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def task(self) -> str:
        """ "segmentation" or "classification"."""
        return "segmentation" if self.domain == "segmentation" else "classification"

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, domain={self.domain!r}, input={list(self.input_shape)}, "
            f"classes={self.num_classes}, train={len(self.x_train)}, val={len(self.x_val)}, "
            f"test={len(self.x_test)})"
        )
