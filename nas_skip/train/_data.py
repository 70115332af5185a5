"""The data side of a run: checking that a dataset fits a genotype, and batching it.

The splits are moved to the device once, as tensors; a batch is an index slice of one
seeded permutation per epoch (no DataLoader, no workers: for datasets this size a
DataLoader's per-sample collation costs more than the step).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from nas_skip.data._base import IGNORE_INDEX, PER_TOKEN_TASKS, Dataset
from nas_skip.genotype import INPUT, Genotype
from nas_skip.train._config import Placement
from nas_skip.train._errors import TrainError

SPLITS = ("train", "val", "test")


def check_fit(genotype: Genotype, dataset: Dataset) -> None:
    """Check that ``genotype`` takes the dataset's inputs and outputs its targets.

    Classification needs output ``(num_classes,)``, segmentation ``(num_classes, H, W)``
    with ``(H, W)`` the label maps' size, a per-token task (language model, token
    classification) ``(L, num_classes)``. Every split must be non-empty, shaped like
    ``input_shape``, and hold labels in ``[0, num_classes)`` (``IGNORE_INDEX`` too for token
    classification); token ids must be below the genotype's embedding vocabulary.

    Args:
        genotype: the network.
        dataset: the data.

    Raises:
        TrainError: naming the genotype, the dataset and both shapes.
    """
    gname = repr(genotype.name) if genotype.name else "the genotype"
    ds = repr(dataset.name)
    if tuple(genotype.input_shape) != tuple(dataset.input_shape):
        raise TrainError(
            f"{gname} takes input {list(genotype.input_shape)} but dataset {ds} has input "
            f"{list(dataset.input_shape)}"
        )
    c = dataset.num_classes
    label_shape = tuple(dataset.y_train.shape[1:])
    want = (c, *label_shape) if dataset.task == "segmentation" else (c,)
    if dataset.task in PER_TOKEN_TASKS:
        want = (*label_shape, c)
    vocabs = [genotype.node_params[n.id]["vocab"] for n in genotype.nodes
              if genotype.plans[n.id].base[0].edge.src == INPUT
              and "vocab" in genotype.node_params[n.id]]  # fmt: skip
    vocab = min(vocabs) if vocabs else None  # the embeddings' (a user op may have none)
    got = genotype.shapes[genotype.output]
    if tuple(got) != want:
        raise TrainError(
            f"{gname} outputs {list(got)} but dataset {ds} ({dataset.task}, {c} classes) "
            f"needs output {list(want)}"
        )
    for split in SPLITS:
        x, y = getattr(dataset, f"x_{split}"), getattr(dataset, f"y_{split}")
        if len(x) == 0 or len(x) != len(y):
            raise TrainError(
                f"dataset {ds}: split {split!r} has {len(x)} inputs and {len(y)} labels; "
                "need the same number, at least 1"
            )
        if tuple(x.shape[1:]) != tuple(dataset.input_shape) or tuple(y.shape[1:]) != label_shape:
            raise TrainError(
                f"dataset {ds}: split {split!r} has x {list(x.shape)} and y {list(y.shape)}, "
                f"expected x [N, {', '.join(map(str, dataset.input_shape))}] and y "
                f"[N{''.join(f', {d}' for d in label_shape)}]"
            )
        scored = y[y != IGNORE_INDEX] if dataset.task == "token_classification" else y
        low, high = (int(scored.min()), int(scored.max())) if scored.numel() else (0, 0)
        if y.dtype != torch.int64 or low < 0 or high >= c:
            raise TrainError(
                f"dataset {ds}: y_{split} must be int64 labels in [0, {c}), got {y.dtype} "
                f"in [{low}, {high}]"
            )
        if genotype.sequence and (x.dtype != torch.int64 or int(x.min()) < 0 or (
                vocab is not None and int(x.max()) >= vocab)):  # fmt: skip
            raise TrainError(
                f"dataset {ds}: x_{split} must be int64 token ids in [0, {vocab}) (the "
                f"embedding's vocab), got {x.dtype} in [{x.min().item()}, {x.max().item()}]"
            )


@dataclass
class DeviceData:
    """The three splits on the device, inputs in the model's memory format."""

    x: dict[str, torch.Tensor]
    y: dict[str, torch.Tensor]


def place_data(dataset: Dataset, place: Placement) -> DeviceData:
    """Move the splits to the device as float32 inputs and int64 labels."""
    fmt = torch.channels_last if place.channels_last else torch.contiguous_format
    xs, ys = {}, {}
    for split in SPLITS:
        x = getattr(dataset, f"x_{split}")
        # token ids stay integers; everything else is float32
        x = x.to(place.device, x.dtype if x.dtype == torch.int64 else torch.float32)
        xs[split] = x.contiguous(memory_format=fmt) if x.dim() == 4 else x
        ys[split] = getattr(dataset, f"y_{split}").to(place.device)
    return DeviceData(xs, ys)


def batch_starts(n: int, batch_size: int) -> range:
    """Where each batch of an epoch over ``n`` samples starts."""
    starts = range(0, n, batch_size)
    if len(starts) > 1 and n % batch_size == 1:
        # BatchNorm cannot normalise a batch of one sample in train mode; drop it (it is a
        # different sample each epoch, so nothing is left out for good)
        starts = starts[:-1]
    return starts


def batches(
    n: int, batch_size: int, generator: torch.Generator, device: torch.device
) -> Iterator[torch.Tensor]:
    """Index batches of one seeded permutation, drawn on the CPU (so the order does not
    depend on the device) and copied to ``device`` once per epoch: a copy per batch from
    pageable memory would wait for the GPU every step."""
    perm = torch.randperm(n, generator=generator).to(device)
    for start in batch_starts(n, batch_size):
        yield perm[start : start + batch_size]
