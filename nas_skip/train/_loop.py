"""``train``: fit a built genotype on an in-memory dataset, then measure it.

The loop keeps the training loss on the device and syncs once per epoch, which is also
where divergence is checked; validation follows each epoch, then the callback.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from nas_skip.data._base import PER_TOKEN_TASKS, Dataset
from nas_skip.genotype import Genotype
from nas_skip.train._config import TrainConfig, resolve
from nas_skip.train._data import batch_starts, batches, check_fit, place_data
from nas_skip.train._errors import TrainError, TrialDiverged
from nas_skip.train._metrics import (
    EpochMetrics,
    Evaluation,
    TrainResult,
    class_first,
    count_flops,
    evaluate,
    measure_latency_ms,
    named_scores,
)

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

#: ``callback(epoch, metrics)`` after each epoch's validation; what it raises propagates.
Callback = Callable[[int, EpochMetrics], None]


_ADVICE = "lower lr, or set grad_clip or warmup_epochs"


def _lr_at(config: TrainConfig, epoch: int) -> float:
    """Learning rate of ``epoch`` (from 1): CosineAnnealingLR(T_max=epochs) stepped per epoch."""
    if config.schedule == "constant":
        return config.lr
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / config.epochs))


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = list(model.parameters())
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        params,
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.momentum > 0,  # torch refuses Nesterov without momentum
        weight_decay=config.weight_decay,
    )


class _Warmup:
    """Linear learning-rate warm-up over the first ``steps`` optimizer steps: step k (from
    0) runs at ``lr * (k + 1) / steps`` of the epoch's rate, then the schedule alone."""

    def __init__(self, steps: int) -> None:
        self.steps, self.done = steps, 0

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.done < self.steps:
            self.done += 1
            for group in optimizer.param_groups:
                group["lr"] = group["scheduled_lr"] * self.done / self.steps


@contextlib.contextmanager
def _num_threads(n: int) -> Iterator[None]:
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    index_batches: Iterator[torch.Tensor],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    autocast: Callable[[], AbstractContextManager[Any]],
    grad_clip: float | None,
    warmup: _Warmup,
) -> float:
    """One pass over the training split; returns the sample-weighted mean loss."""
    model.train()
    params = list(model.parameters())
    losses: list[torch.Tensor] = []
    sizes: list[int] = []
    for idx in index_batches:
        warmup.step(optimizer)
        xb, yb = x[idx], y[idx]
        with autocast():
            loss = loss_fn(model(xb), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
        # kept on the device: no sync per step (it would stall a GPU)
        losses.append(loss.detach())
        sizes.append(len(idx))
    weights = torch.tensor(sizes, dtype=torch.float64, device=x.device)
    total = (torch.stack(losses).double() * weights).sum() / weights.sum()
    return total.item()  # the one sync of the epoch


def _fit(
    genotype: Genotype,
    dataset: Dataset,
    config: TrainConfig,
    callback: Callback | None,
    progress: bool,
) -> tuple[TrainResult, nn.Module]:
    from nas_skip.compile import build

    if not isinstance(config, TrainConfig):
        raise TrainError(f"config must be a TrainConfig, got {type(config).__name__}")
    check_fit(genotype, dataset)
    place = resolve(config, image_input=len(genotype.input_shape) == 3)
    segmentation = dataset.task == "segmentation"
    per_token = dataset.task in PER_TOKEN_TASKS
    language_model = dataset.task == "language_model"
    autocast: Callable[[], AbstractContextManager[Any]] = (
        functools.partial(torch.autocast, "cuda", dtype=torch.bfloat16)
        if place.amp
        else contextlib.nullcontext
    )
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = functools.partial(
        F.cross_entropy, label_smoothing=config.label_smoothing
    )
    if per_token:  # (N, L, classes) logits; IGNORE_INDEX (-100) labels are not scored
        loss_fn = _per_token(loss_fn)
    cuda_devices = [place.device] if place.device.type == "cuda" else []
    with contextlib.ExitStack() as stack:
        stack.enter_context(_num_threads(config.threads))
        # seed a forked RNG: the run is reproducible and the caller's RNG state is untouched
        stack.enter_context(torch.random.fork_rng(devices=cuda_devices))
        torch.manual_seed(config.seed)
        model = build(genotype).to(place.device)
        if place.channels_last:
            model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        # the same parameters, run by compiled code; flops, latency and the returned model
        # stay the plain module's
        net: nn.Module = model
        if config.compile:
            net = torch.compile(model)  # type: ignore[assignment]
        data = place_data(dataset, place)
        optimizer = _optimizer(model, config)
        order = torch.Generator().manual_seed(config.seed)
        steps_per_epoch = len(batch_starts(len(data.x["train"]), config.batch_size))
        warmup = _Warmup(math.ceil(config.warmup_epochs * steps_per_epoch))
        bar = _progress_bar(stack, config.epochs, genotype) if progress else None

        def run_eval(split: str) -> Evaluation:
            return evaluate(
                net,
                data.x[split],
                data.y[split],
                dataset.num_classes,
                place.eval_batch_size,
                autocast,
                segmentation,
                per_token,
            )

        history: list[EpochMetrics] = []
        val = Evaluation(math.nan, math.nan, None)
        for epoch in range(1, config.epochs + 1):
            lr = _lr_at(config, epoch)
            for group in optimizer.param_groups:
                group["lr"] = group["scheduled_lr"] = lr
            t0 = time.perf_counter()
            epoch_batches = batches(len(data.x["train"]), config.batch_size, order, place.device)
            train_loss = _train_epoch(
                net,
                optimizer,
                data.x["train"],
                data.y["train"],
                epoch_batches,
                loss_fn,
                autocast,
                config.grad_clip,
                warmup,
            )
            t1 = time.perf_counter()
            if not math.isfinite(train_loss):
                raise TrialDiverged(
                    f"training diverged in epoch {epoch}: train loss is {train_loss} "
                    f"(lr {config.lr:g}); {_ADVICE}",
                    epoch,
                )
            val = run_eval("val")
            t2 = time.perf_counter()
            if not math.isfinite(val.loss):
                raise TrialDiverged(
                    f"training diverged in epoch {epoch}: validation loss is {val.loss} "
                    f"(lr {config.lr:g}); {_ADVICE}",
                    epoch,
                )
            metrics = EpochMetrics(
                epoch=epoch,
                train_loss=train_loss,
                val_loss=val.loss,
                val_accuracy=_score(val),
                val_miou=val.miou,
                val_pixel_accuracy=val.accuracy if segmentation else None,
                lr=lr,
                seconds=t1 - t0,
                eval_seconds=t2 - t1,
                val_bpc=val.loss / math.log(2) if language_model else None,
            )
            history.append(metrics)
            if bar is not None:
                bar(metrics)
            if callback is not None:
                callback(epoch, metrics)
        # the last epoch's validation is the final one: the weights have not moved since
        evals = {"val": val, "test": run_eval("test")}
        if config.train_error:
            evals["train"] = run_eval("train")
        example = data.x["val"][:1]
        result = TrainResult(
            task=dataset.task,
            val_accuracy=_score(evals["val"]),
            test_accuracy=_score(evals["test"]),
            val_pixel_accuracy=evals["val"].accuracy if segmentation else None,
            test_pixel_accuracy=evals["test"].accuracy if segmentation else None,
            val_loss=evals["val"].loss,
            test_loss=evals["test"].loss,
            train_loss=history[-1].train_loss,
            train_error=1.0 - evals["train"].accuracy if "train" in evals else None,
            params=sum(p.numel() for p in model.parameters()),
            flops=count_flops(model, example),
            latency_ms=measure_latency_ms(model, example, config.latency_runs, autocast),
            train_seconds=sum(m.seconds for m in history),
            eval_seconds=sum(m.eval_seconds for m in history),
            epochs=len(history),
            device=str(place.device),
            amp=place.amp,
            channels_last=place.channels_last,
            history=history,
            val_bpc=evals["val"].loss / math.log(2) if language_model else None,
            test_bpc=evals["test"].loss / math.log(2) if language_model else None,
        )
    return result, model


def _per_token(
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    def loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return loss_fn(class_first(logits), y)

    return loss


def _score(ev: Evaluation) -> float:
    return ev.miou if ev.miou is not None else ev.accuracy


def epoch_progress(console: Console | None = None) -> Progress:
    """The rich progress bar of training runs (description, bar, done/total, elapsed,
    remaining); ``nas-skip train`` and ``nas-skip retrain`` show it."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())  # fmt: skip
    return Progress(*columns, console=console)


def _progress_bar(
    stack: contextlib.ExitStack, epochs: int, genotype: Genotype
) -> Callable[[EpochMetrics], None]:
    """A rich progress bar over epochs, entered on ``stack``; returns its update function."""
    bar = stack.enter_context(epoch_progress())
    name = genotype.name or "genotype"
    task = bar.add_task(f"{name}: training", total=epochs)

    def update(m: EpochMetrics) -> None:
        score, value = m.shown()
        desc = f"{name}: loss {m.train_loss:.4f}  {score} {value:.4f}"
        bar.update(task, advance=1, description=desc)

    return update


def train(
    genotype: Genotype,
    dataset: Dataset,
    config: TrainConfig | None = None,
    callback: Callback | None = None,
    progress: bool = False,
) -> TrainResult:
    """Build ``genotype`` (after ``torch.manual_seed(config.seed)``), train it, measure it.

    Args:
        genotype: the network to train.
        dataset: in-memory splits; the genotype must fit them (see :func:`check_fit`).
        config: hyperparameters and placement; ``TrainConfig()`` if None.
        callback: called as ``callback(epoch, metrics)`` after each epoch's validation,
            epoch from 1. Whatever it raises (``optuna.TrialPruned``, say) stops training
            and propagates unchanged.
        progress: show a rich progress bar over epochs.

    Returns:
        The :class:`TrainResult`; for segmentation the accuracies are mIoU.

    Raises:
        TrainError: a CUDA request without CUDA, or a genotype that does not fit the data.
        TrialDiverged: the training or validation loss became NaN or infinite.
    """
    result, _ = _fit(genotype, dataset, config or TrainConfig(), callback, progress)
    return result


def fit(
    genotype: Genotype,
    dataset: Dataset,
    config: TrainConfig | None = None,
    callback: Callback | None = None,
    progress: bool = False,
) -> tuple[TrainResult, nn.Module]:
    """As :func:`train`, and also return the trained model (on the CPU, in eval mode).

    The search keeps the weights of its best trials; everything else is :func:`train`'s.
    """
    result, model = _fit(genotype, dataset, config or TrainConfig(), callback, progress)
    return result, model.cpu().eval()


def train_to_dir(
    genotype: Genotype,
    dataset: Dataset,
    config: TrainConfig,
    out_dir: str | Path,
    progress: bool = True,
) -> TrainResult:
    """Train as :func:`train` does and write the run to ``out_dir``.

    Writes ``weights.pt`` (the state_dict on CPU, for ``torch.load(weights_only=True)``
    into ``build(genotype)``), ``metrics.json`` (``result.to_dict()`` with ``metric``, the
    score's name, and for segmentation ``val_miou`` / ``test_miou`` for the scores, plus
    the config, the dataset name and the genotype's canonical hash) and ``genotype.json``.

    Args:
        genotype: the network to train.
        dataset: the data.
        config: hyperparameters and placement.
        out_dir: the directory (created if missing; existing files are overwritten).
        progress: show a rich progress bar over epochs.

    Returns:
        The :class:`TrainResult`.

    Raises:
        TrainError: ``out_dir`` is an existing file, or as :func:`train`.
        TrialDiverged: as :func:`train`; nothing is written then.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise TrainError(f"output directory {str(out)!r} exists and is not a directory")
    result, model = _fit(genotype, dataset, config, None, progress)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    torch.save(state, out / "weights.pt")
    metrics = {
        **named_scores(result.to_dict(), result.task),  # segmentation: val_miou ...
        "dataset": dataset.name,
        "genotype": genotype.name,
        "genotype_hash": genotype.canonical_hash(),
        "config": config.to_dict(),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    genotype_text = json.dumps(genotype.to_json(), indent=2) + "\n"
    (out / "genotype.json").write_text(genotype_text, encoding="utf-8")
    return result
