"""The dataset contract shared by every loader, the trainer and the search spaces."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is loaded by what makes tensors, not by this contract
    import torch

#: What a search space needs from a dataset: vector (F,), signal (C, L) or image (C, H, W)
#: classification, segmentation (C, H, W) -> per-pixel classes (H, W), or sequence: token
#: ids (L,) -> one target per position (L,).
DATA_DOMAINS = ("vector", "signal", "image", "segmentation", "sequence")

#: What the labels ``y`` mean, and so how a model is scored:
#:
#: - ``classification``: one class per sample, ``y`` (N,);
#: - ``segmentation``: one class per pixel, ``y`` (N, H, W);
#: - ``language_model``: the next token at every position, ``y`` (N, L), every position
#:   scored;
#: - ``token_classification``: a class per position, ``y`` (N, L), scored only where it is
#:   not :data:`IGNORE_INDEX`.
TASKS = ("classification", "segmentation", "language_model", "token_classification")
#: the tasks whose labels are per token: (N, L) for (N, L, classes) logits
PER_TOKEN_TASKS = ("language_model", "token_classification")

#: The label of a position that is not scored (token_classification); the same value as
#: the default ``ignore_index`` of ``torch.nn.functional.cross_entropy``.
IGNORE_INDEX = -100


@dataclass(frozen=True)
class Dataset:
    """A dataset held in memory as tensors, split deterministically.

    ``x_*`` are float32 tensors shaped ``(N, *input_shape)``, except in the ``sequence``
    domain, where they are int64 token ids ``(N, L)`` in ``[0, num_classes)`` (the
    vocabulary is the set of classes). ``y_*`` are int64 labels whose shape and meaning
    follow ``task`` (see :data:`TASKS`): ``(N,)`` for classification, ``(N, H, W)`` for
    segmentation, ``(N, L)`` for language_model and token_classification, the latter
    holding :data:`IGNORE_INDEX` at the positions that are not scored.

    ``task`` left empty resolves to ``"segmentation"`` in the segmentation domain and to
    ``"classification"`` elsewhere.

    Raises:
        ValueError: ``task`` is not one of :data:`TASKS`.
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
    task: str = ""  # one of TASKS; "" for the domain's default

    def __post_init__(self) -> None:
        if not self.task:
            default = "segmentation" if self.domain == "segmentation" else "classification"
            object.__setattr__(self, "task", default)
        if self.task not in TASKS:
            raise ValueError(
                f"dataset {self.name!r}: unknown task {self.task!r}; known: {', '.join(TASKS)}"
            )

    def __repr__(self) -> str:
        task = "" if self.task == "classification" else f", task={self.task!r}"
        return (
            f"Dataset({self.name!r}, domain={self.domain!r}{task}, "
            f"input={list(self.input_shape)}, classes={self.num_classes}, "
            f"train={len(self.x_train)}, val={len(self.x_val)}, test={len(self.x_test)})"
        )
