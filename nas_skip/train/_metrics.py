"""What a run reports: per-epoch metrics, the final result, and how each number is measured.

Evaluation runs in eval mode without autograd and syncs with the device once per pass.
Accuracy and mIoU come from one confusion matrix over the whole split: mIoU is the mean,
over classes whose union (true or predicted pixels) is non-empty, of TP / (TP + FP + FN).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # SCORE_NAMES and the dataclasses are read where no torch is loaded
    import torch
    from torch import nn


@dataclass(frozen=True)
class EpochMetrics:
    """What the callback receives after each epoch (and what ``history`` holds)."""

    epoch: int  # counted from 1
    train_loss: float  # mean training loss over the epoch's samples (label smoothing incl.)
    val_loss: float  # mean cross-entropy on validation (per pixel for segmentation)
    val_accuracy: float  # the score: accuracy, or mIoU for segmentation (as TrainResult)
    val_miou: float | None  # segmentation: mean IoU (= val_accuracy); else None
    val_pixel_accuracy: float | None  # segmentation: fraction of pixels right; else None
    lr: float  # learning rate used during this epoch
    seconds: float  # wall time of the training pass (no evaluation)
    eval_seconds: float  # wall time of this epoch's validation pass
    val_bpc: float | None = None  # language modelling: validation bits per token; else None

    def value(self, objective: str) -> float:
        """This epoch's value of a search's first objective: ``bpc`` (bits per token) or
        the score ``accuracy`` (mIoU for segmentation)."""
        if objective == "bpc":
            assert self.val_bpc is not None, "bpc is a language model's objective"
            return self.val_bpc
        return self.val_accuracy

    def shown(self) -> tuple[str, float]:
        """The validation score as a progress bar shows it: ("val bpc", 2.71), ("val
        mIoU", 0.62) or ("val acc", 0.93)."""
        if self.val_bpc is not None:
            return "val bpc", self.val_bpc
        return ("val mIoU" if self.val_miou is not None else "val acc"), self.val_accuracy


@dataclass(frozen=True)
class TrainResult:
    """The outcome of one run. ``to_dict()`` gives the JSON form."""

    task: str  # "classification" or "segmentation"
    val_accuracy: float  # accuracy on validation; mIoU for segmentation
    test_accuracy: float  # accuracy on test; mIoU for segmentation
    val_pixel_accuracy: float | None  # segmentation only: per-pixel accuracy
    test_pixel_accuracy: float | None  # segmentation only: per-pixel accuracy
    val_loss: float  # mean cross-entropy on validation
    test_loss: float  # mean cross-entropy on test
    train_loss: float  # mean training loss of the last epoch (in train mode, as trained)
    # 1 - accuracy (pixel accuracy) on the training split in eval mode; None when
    # TrainConfig.train_error is off
    train_error: float | None
    params: int  # trainable and frozen parameters: sum of numel
    flops: int  # per sample, FlopCounterMode on a batch of 1 (2 x MACs)
    latency_ms: float  # median eval-mode forward of a batch of 1 on the training device
    train_seconds: float  # wall time of the training passes of all epochs
    eval_seconds: float  # wall time of the per-epoch validation passes
    epochs: int  # epochs run
    device: str  # where it ran, e.g. "cpu" or "cuda:0"
    amp: bool  # whether bf16 autocast was on
    channels_last: bool  # whether channels_last memory format was used
    history: list[EpochMetrics] = field(default_factory=list)  # one entry per epoch
    # language modelling: mean cross-entropy in bits per token (per character for
    # character data): val_loss / ln 2; None for other tasks
    val_bpc: float | None = None
    test_bpc: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON-ready types (history as a list of dicts)."""
        return asdict(self)


@dataclass(frozen=True)
class Evaluation:
    """One evaluation pass over a split."""

    loss: float  # mean cross-entropy per sample (per pixel or scored token)
    accuracy: float  # fraction of samples (pixels, scored tokens) predicted right
    miou: float | None  # segmentation only


def confusion_scores(confusion: torch.Tensor) -> tuple[float, float]:
    """Accuracy and mean IoU from a (true, predicted) confusion matrix.

    Args:
        confusion: (C, C) counts, rows true classes, columns predictions.

    Returns:
        ``(accuracy, miou)``; classes absent from both truth and prediction are skipped
        in the mean (and mIoU is 0 if the matrix is empty).
    """
    cm = confusion.double()
    tp = cm.diagonal()
    total = cm.sum()
    accuracy = (tp.sum() / total).item() if total > 0 else 0.0
    union = cm.sum(0) + cm.sum(1) - tp
    present = union > 0
    miou = (tp[present] / union[present]).mean().item() if present.any() else 0.0
    return accuracy, miou


def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    batch_size: int,
    autocast: Callable[[], AbstractContextManager[Any]],
    segmentation: bool,
    per_token: bool = False,
) -> Evaluation:
    """Loss, accuracy and (for segmentation) mIoU of ``model`` on one split, in eval mode.

    Args:
        model: the network; left in eval mode.
        x: inputs on the model's device (already in the model's memory format).
        y: labels, (N,), (N, H, W) or (N, L), on the same device.
        num_classes: number of classes (size of the confusion matrix).
        batch_size: evaluation batch size.
        autocast: a factory of the forward-pass context (autocast or a null context).
        segmentation: whether to report mIoU.
        per_token: the model outputs (N, L, classes) for (N, L) labels, of which those
            equal to ``IGNORE_INDEX`` are not scored.

    Returns:
        The :class:`Evaluation`.
    """
    import torch
    import torch.nn.functional as F  # noqa: N812

    model.eval()
    c = num_classes
    loss_sum = torch.zeros((), dtype=torch.float64, device=x.device)
    confusion = torch.zeros(c * c, dtype=torch.int64, device=x.device)
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            with autocast():
                logits = model(xb)
            logits = logits.float()  # bf16 logits: sum the loss and argmax in fp32
            if per_token:
                logits = class_first(logits)
            loss_sum += F.cross_entropy(logits, yb, reduction="sum").double()
            pred = logits.argmax(1)
            keys = (yb * c + pred).flatten()
            if per_token:  # unscored tokens (IGNORE_INDEX) count nowhere
                keys = keys[yb.flatten() >= 0]
            # not bincount: on CUDA it reads the max back to size its output (a sync a batch)
            confusion.index_add_(0, keys, torch.ones_like(keys))
    # one device sync per pass, here
    scored = int((y >= 0).sum().item()) if per_token else y.numel()
    loss = loss_sum.item() / max(scored, 1)
    accuracy, miou = confusion_scores(confusion.view(c, c).cpu())
    return Evaluation(loss, accuracy, miou if segmentation else None)


def class_first(logits: torch.Tensor) -> torch.Tensor:
    """Per-token logits (N, L, classes) as cross-entropy takes them: (N, classes, L)."""
    return logits.transpose(1, 2)


def count_flops(model: nn.Module, example: torch.Tensor) -> int:
    """FLOPs of one eval-mode forward pass of ``example`` (a batch of 1: per sample).

    Args:
        model: the network.
        example: an input batch of one sample on the model's device.

    Returns:
        The total FlopCounterMode counts (2 x multiply-accumulates of convs and matmuls).
    """
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    counter = FlopCounterMode(display=False)
    # attention through the math kernel: the counter counts no FLOPs of the fused CPU one
    with torch.no_grad(), counter, sdpa_kernel(SDPBackend.MATH):
        model(example)
    return int(counter.get_total_flops())


def measure_latency_ms(
    model: nn.Module,
    example: torch.Tensor,
    runs: int,
    autocast: Callable[[], AbstractContextManager[Any]],
    warmup: int = 3,
) -> float:
    """Median wall time of one eval-mode forward of ``example`` in milliseconds.

    Args:
        model: the network, on ``example``'s device.
        example: a batch of one.
        runs: timed forwards.
        autocast: the forward-pass context factory used in training.
        warmup: untimed forwards first (allocator, kernel selection).

    Returns:
        The median latency in ms; on CUDA each run is synchronised so the GPU time counts.
    """
    import torch

    model.eval()
    cuda = example.device.type == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(example.device)

    samples = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            sync()
            t0 = time.perf_counter()
            with autocast():
                model(example)
            sync()
            if i >= warmup:
                samples.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(samples)


#: the score's name for people, per task (``val_accuracy`` holds mIoU for segmentation)
SCORE_NAMES = {"classification": "accuracy", "segmentation": "mIoU",
               "language_model": "accuracy", "token_classification": "accuracy"}  # fmt: skip
_MIOU_KEYS = {"val_accuracy": "val_miou", "test_accuracy": "test_miou"}


def named_scores(metrics: dict[str, Any], task: str) -> dict[str, Any]:
    """``metrics`` as a ``metrics.json`` shows them: ``metric`` names the score, and for
    segmentation the score keys say mIoU (``val_miou``, ``test_miou``, not the
    ``val_accuracy`` and ``test_accuracy`` that hold it in code); each epoch of
    ``history`` keeps its ``val_miou`` and drops the equal ``val_accuracy``."""
    if task != "segmentation":
        return {"metric": SCORE_NAMES.get(task, "accuracy"), **metrics}
    out: dict[str, Any] = {"metric": SCORE_NAMES[task]}
    for key, value in metrics.items():
        if key == "history" and isinstance(value, list):
            value = [{k: v for k, v in e.items() if k != "val_accuracy"} for e in value]
        out[_MIOU_KEYS.get(key, key)] = value
    return out
