"""Training a supernet: first-order bi-level optimisation on a split of the training data.

The training split is halved with a fixed seed (DARTS): network weights step on one half
with the space's own training recipe (optimizer, learning rate and its cosine schedule,
warm-up, clipping), architecture parameters on the other with Adam (DARTS's betas and
weight decay), one step each per batch, in turn. Architecture steps start after a
quarter of the epochs (weights first learn what each candidate does, as P-DARTS and
PC-DARTS warm up). After each epoch the weights of every choice, the skips the
derivation would keep and the supernet's validation accuracy are recorded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812

from nas_skip.data import Dataset
from nas_skip.oneshot._relax import Relaxation
from nas_skip.oneshot._supernet import SuperNet


@dataclass(frozen=True)
class OneShotConfig:
    """How a supernet is trained and a network derived from it."""

    epochs: int = 10
    relaxation: str = "softmax"  # "softmax" (DARTS) or "sigmoid" (Fair DARTS)
    arch_lr: float = 3e-3  # Adam on the architecture parameters
    arch_weight_decay: float = 1e-3
    zero_one: float = 10.0  # sigmoid: weight of the zero-one loss (Fair DARTS's w01)
    warmup_fraction: float = 0.25  # epochs of weight-only training before arch steps
    max_skips: int | None = None  # P-DARTS's cap on the skips kept
    seed: int = 0
    threads: int = 1
    device: str = "auto"  # where the supernet trains (TrainConfig.device)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__
                if k not in ("threads", "device")}  # fmt: skip


@dataclass
class EpochRecord:
    """One supernet epoch: its losses, validation accuracy, weights and skip count."""

    epoch: int
    train_loss: float
    arch_loss: float | None
    val_accuracy: float
    skips: int  # skips the derivation would keep now (before --max-skips)
    weights: dict[str, list[float]]


@dataclass
class OneShotRun:
    """A trained supernet, what it recorded, and the network derived from it."""

    config: OneShotConfig
    net: SuperNet
    epochs: list[EpochRecord] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)  # the derived trial's choices
    seconds: float = 0.0

    @property
    def val_accuracy(self) -> float:
        return self.epochs[-1].val_accuracy if self.epochs else 0.0


def _loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(out, y)


def evaluate_net(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, classes: int,
                 segmentation: bool) -> float:  # fmt: skip
    """Validation accuracy (mIoU for segmentation) of ``net`` on ``x``."""
    from contextlib import nullcontext

    from nas_skip.train._loop import _score
    from nas_skip.train._metrics import evaluate

    return _score(evaluate(net, x, y, classes, 256, nullcontext, segmentation))


def train_supernet(
    relaxation: Relaxation,
    data: Dataset,
    config: OneShotConfig,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> OneShotRun:
    """Train the relaxation's supernet on ``data`` and derive a network.

    Args:
        relaxation: the relaxed space.
        data: the search's dataset (its training split is halved; its validation split
            measures the supernet).
        config: epochs, relaxation, architecture optimiser, cap on skips, seed.
        on_epoch: called after each epoch with its record (progress).

    Returns:
        The :class:`OneShotRun`, ``params`` the derived network's trial parameters.
    """
    from nas_skip.train import TrainConfig
    from nas_skip.train._config import resolve
    from nas_skip.train._data import batches
    from nas_skip.train._loop import _lr_at, _num_threads, _optimizer

    recipe = TrainConfig(epochs=config.epochs, seed=config.seed, device=config.device,
                         **relaxation.hparams)  # fmt: skip
    start = time.perf_counter()
    with _num_threads(config.threads):
        torch.manual_seed(config.seed)
        # the device a trial of this search would use, in fp32
        device = resolve(recipe, image_input=len(data.input_shape) == 3).device
        net = SuperNet(relaxation, config.relaxation).to(device)
        run = OneShotRun(config, net)
        g = torch.Generator().manual_seed(config.seed)
        perm = torch.randperm(len(data.x_train), generator=g)
        half = len(perm) // 2
        x, y = data.x_train.to(device), data.y_train.to(device)
        perm = perm.to(device)
        xw, yw = x[perm[:half]], y[perm[:half]]
        xa, ya = x[perm[half:]], y[perm[half:]]
        x_val, y_val = data.x_val.to(device), data.y_val.to(device)
        w_opt = _optimizer(_Weights(net), recipe)
        a_opt = torch.optim.Adam(net.arch, lr=config.arch_lr, betas=(0.5, 0.999),
                                 weight_decay=config.arch_weight_decay)  # fmt: skip
        steps_per_epoch = max(1, half // recipe.batch_size)
        warmup_steps = int(recipe.warmup_epochs * steps_per_epoch)
        first_arch_epoch = int(config.epochs * config.warmup_fraction) + 1
        weight_params = net.weight_parameters()
        segmentation = data.task == "segmentation"
        step = 0
        for epoch in range(1, config.epochs + 1):
            lr = _lr_at(recipe, epoch)
            net.train()
            losses: list[torch.Tensor] = []
            arch_losses: list[torch.Tensor] = []
            arch = epoch >= first_arch_epoch
            weight_batches = batches(half, recipe.batch_size, g, xw.device)
            arch_batches = batches(len(xa), recipe.batch_size, g, xa.device)
            for iw, ia in zip(weight_batches, arch_batches, strict=False):
                if arch:
                    a_opt.zero_grad(set_to_none=True)
                    loss_a = _loss(net(xa[ia]), ya[ia])
                    if config.relaxation == "sigmoid":
                        loss_a = loss_a + config.zero_one * net.zero_one_loss()
                    loss_a.backward()  # type: ignore[no-untyped-call]
                    a_opt.step()
                    arch_losses.append(loss_a.detach())
                step += 1
                for group in w_opt.param_groups:
                    group["lr"] = lr * min(1.0, step / warmup_steps) if warmup_steps else lr
                w_opt.zero_grad(set_to_none=True)
                loss = _loss(net(xw[iw]), yw[iw])
                loss.backward()  # type: ignore[no-untyped-call]
                if recipe.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(weight_params, recipe.grad_clip)
                w_opt.step()
                losses.append(loss.detach())
            weights = net.weights()
            params = relaxation.derive(relaxation.strengths(weights, config.relaxation))
            record = EpochRecord(
                epoch,
                _mean(losses) or 0.0,  # one device sync an epoch, as the trainer's
                _mean(arch_losses),
                evaluate_net(net, x_val, y_val, data.num_classes, segmentation),
                relaxation.skips(params),
                weights,
            )
            run.epochs.append(record)
            if on_epoch is not None:
                on_epoch(record)
        final = relaxation.strengths(net.weights(), config.relaxation)
        run.params = relaxation.derive(final, config.max_skips)
    run.seconds = time.perf_counter() - start
    return run


def _mean(losses: list[torch.Tensor]) -> float | None:
    """The mean of an epoch's per-batch losses, kept on the device until here."""
    return float(torch.stack(losses).mean()) if losses else None


class _Weights(torch.nn.Module):
    """The supernet's network weights as a module (what the recipe's optimiser takes)."""

    def __init__(self, net: SuperNet) -> None:
        super().__init__()
        self._params = torch.nn.ParameterList(net.weight_parameters())


def inherited_accuracy(run: OneShotRun, params: Mapping[str, Any], data: Dataset,
                       calibrate: int = 10) -> float:  # fmt: skip
    """The validation accuracy of the network ``params`` inside the trained supernet:
    every choice pinned to its value, batch-norm statistics re-estimated on ``calibrate``
    training batches (the mixture's statistics do not fit one network)."""
    net = run.net
    device = net.arch[0].device
    saved = {k: v.clone() for k, v in net.state_dict().items()}
    net.select(params)
    try:
        for m in net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
                m.momentum = None  # a cumulative average over the calibration batches
        net.train()
        with torch.no_grad():
            for k in range(calibrate):
                xb = data.x_train[k * 128 : (k + 1) * 128].to(device)
                if len(xb) > 1:
                    net(xb)
        x_val, y_val = data.x_val.to(device), data.y_val.to(device)
        return evaluate_net(net, x_val, y_val, data.num_classes, data.task == "segmentation")
    finally:
        net.select(None)
        net.load_state_dict(saved)
        for m in net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.momentum = 0.1
