"""``TrainConfig``: every knob of one training run, validated when it is made.

Device-dependent choices (``device``, ``amp``, ``channels_last`` set to "auto") are
resolved by :func:`resolve` when training starts, not here: a config is often made on a
driver machine without a GPU and shipped to a worker that has one.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from nas_skip.errors import brief
from nas_skip.train._errors import TrainError

if TYPE_CHECKING:  # a config is data: a search process that only waits loads no torch
    import torch

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "constant")
SWITCHES = ("auto", "on", "off")
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters and placement of one training run (all fields validated).

    Same seed, same config, same data -> identical metrics (bitwise on CPU with
    ``threads=1``; on CUDA, up to the GPU's non-deterministic kernels).
    """

    epochs: int = 10  # full passes over the training split, >= 1
    lr: float = 0.05  # peak learning rate, > 0
    weight_decay: float = 5e-4  # decoupled for adamw, L2 for sgd; on every parameter
    batch_size: int = 128  # training batch size, >= 1
    optimizer: str = "sgd"  # "sgd" (with Nesterov momentum) or "adamw"
    momentum: float = 0.9  # sgd only, in [0, 1); Nesterov when > 0
    schedule: str = "cosine"  # "cosine" (per epoch, down to 0) or "constant"
    # linear warm-up from lr / steps to lr over the first warmup_epochs (per step; may be a
    # fraction of an epoch), then the schedule; 0: none
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0  # training loss only, in [0, 1); eval loss is plain CE
    grad_clip: float | None = None  # max global gradient norm, > 0; None: no clipping
    seed: int = 0  # seeds the weights (torch.manual_seed) and the batch order
    # evaluate the whole training split after the last epoch for TrainResult.train_error
    # (a fifth to a third of a short run on CPU); False: train_error is None
    train_error: bool = True
    threads: int = 1  # torch.set_num_threads during the run; 1 as search workers use
    device: str = "auto"  # "auto" (cuda if available, else cpu), "cpu", "cuda", "cuda:N"
    amp: str = "auto"  # bf16 autocast: "auto" (on CUDA with bf16 support), "on", "off"
    channels_last: str = "auto"  # "auto" (CUDA and image input), "on", "off"
    # evaluation batch size, >= 1; None: 64 on CPU, where cache-sized batches run convs
    # fastest (2-3x faster than 1024, measured), and 1024 on CUDA
    eval_batch_size: int | None = None
    latency_runs: int = 20  # timed batch-of-1 forwards for latency_ms, >= 1
    # torch.compile the network for training and evaluation: a compile of tens of seconds,
    # then faster epochs (pays for long runs); the returned model is the plain module
    compile: bool = False

    def __post_init__(self) -> None:
        _check_int("epochs", self.epochs, 1)
        _check_float("lr", self.lr, 0.0, math.inf, low_open=True)
        _check_float("weight_decay", self.weight_decay, 0.0, math.inf)
        _check_int("batch_size", self.batch_size, 1)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_float("momentum", self.momentum, 0.0, 1.0, high_open=True)
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_float("label_smoothing", self.label_smoothing, 0.0, 1.0, high_open=True)
        _check_float("warmup_epochs", self.warmup_epochs, 0.0, math.inf)
        for name in ("train_error", "compile"):
            if not isinstance(getattr(self, name), bool):
                raise TrainError(f"TrainConfig.{name} must be true or false, got "
                                 f"{brief(getattr(self, name))}")  # fmt: skip
        if self.grad_clip is not None:
            _check_float("grad_clip", self.grad_clip, 0.0, math.inf, low_open=True, none=True)
        _check_int("seed", self.seed, 0, 2**63 - 1)
        _check_int("threads", self.threads, 1, 1024)
        if not isinstance(self.device, str) or not _DEVICE.fullmatch(self.device):
            raise TrainError(
                "TrainConfig.device must be 'auto', 'cpu', 'cuda' or 'cuda:N', "
                f"got {brief(self.device)}"
            )
        _check_choice("amp", self.amp, SWITCHES)
        _check_choice("channels_last", self.channels_last, SWITCHES)
        if self.eval_batch_size is not None:
            _check_int("eval_batch_size", self.eval_batch_size, 1, none=True)
        _check_int("latency_runs", self.latency_runs, 1, 10_000)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        return asdict(self)


def _check_int(
    name: str, value: object, low: int, high: int | None = None, none: bool = False
) -> None:
    # bool is an int subclass; epochs=True is a mistake, not 1
    ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok or value < low or (high is not None and value > high):  # type: ignore[operator]
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        tail = " or None" if none else ""
        got = brief(value)
        raise TrainError(f"TrainConfig.{name} must be an integer {bound}{tail}, got {got}")


def _check_float(
    name: str,
    value: object,
    low: float,
    high: float,
    low_open: bool = False,
    high_open: bool = False,
    none: bool = False,
) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        v = float(value)  # type: ignore[arg-type]
        ok = (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if not ok:
        if math.isinf(high):
            bound = f"> {low:g}" if low_open else f">= {low:g}"
        else:
            bound = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        tail = " or None" if none else ""
        raise TrainError(
            f"TrainConfig.{name} must be a finite number {bound}{tail}, got {brief(value)}"
        )


def _check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise TrainError(f"TrainConfig.{name} must be one of {choices}, got {brief(value)}")


@dataclass(frozen=True)
class Placement:
    """Where and how a run executes, after resolving the config's "auto" fields."""

    device: torch.device
    amp: bool  # bf16 autocast on the forward pass and loss (CUDA only)
    channels_last: bool  # image inputs and the model in channels_last memory format
    eval_batch_size: int  # batch size of evaluation passes


def resolve(config: TrainConfig, image_input: bool) -> Placement:
    """Resolve ``device``, ``amp`` and ``channels_last`` on this machine.

    Args:
        config: the run's config.
        image_input: whether the model takes (C, H, W) inputs (channels_last applies).

    Returns:
        The placement.

    Raises:
        TrainError: CUDA was asked for but is not available, or amp="on" off CUDA.
    """
    import torch

    cuda = torch.cuda.is_available()
    if config.device == "auto":
        device = torch.device("cuda" if cuda else "cpu")
    else:
        device = torch.device(config.device)
    if device.type == "cuda":
        if not cuda:
            raise TrainError(
                f"TrainConfig.device is {brief(config.device)} but CUDA is not available; "
                "use 'auto' or 'cpu'"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise TrainError(
                f"TrainConfig.device is {brief(config.device)} but there are only "
                f"{torch.cuda.device_count()} CUDA devices"
            )
    on_cuda = device.type == "cuda"
    if config.amp == "on" and not on_cuda:
        raise TrainError(
            "TrainConfig.amp='on' needs a CUDA device (bf16 autocast runs on CUDA only); "
            f"the device is {device}"
        )
    # autocast never runs on CPU: CPU bf16 is slow on most hosts and changes the numbers
    amp = config.amp == "on" or (
        config.amp == "auto" and on_cuda and torch.cuda.is_bf16_supported()
    )
    channels_last = image_input and (
        config.channels_last == "on" or (config.channels_last == "auto" and on_cuda)
    )
    eval_batch_size = config.eval_batch_size or (1024 if on_cuda else 64)
    return Placement(device, amp, channels_last, eval_batch_size)
