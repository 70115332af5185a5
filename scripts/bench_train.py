"""Benchmark the trainer: does an epoch of ``nas_skip.train`` cost what a plain loop costs?

Prints one JSON line. For each case, ``ratio_*`` is the median training-epoch time of
``train(build(genotype))`` over that of the same network written by hand in plain PyTorch
and trained by a plain loop. Goal: <= 1.05.

- ``mlp_mnist1d``: a ``deep_mlp`` sample, a residual MLP (stem + 12 linear-ReLU layers,
  width 128, hop-1 ``add`` skips) on MNIST-1D.
- ``resnet_shapes``: a ``resnet_macro`` sample, a ResNet-8-like net (conv stem, 3 stages of
  2 conv-BN-ReLU layers with the stage input added after them, 16/32/64 channels, zero-pad
  shortcuts) on the 32x32 shapes images.

Like with like: both sides run on the CPU with one thread, batch 128, SGD (momentum 0.9,
Nesterov, weight decay 5e-4), cosine learning rate stepped per epoch, the data held as
tensors on the device and a seeded ``randperm`` per epoch sliced into batches. Both start
from the same weights (checked to compute the same function) and draw the same batches,
so their per-epoch losses agree (``*_loss_max_rel_diff``). The timed epoch is the training
pass only: the permutation, every step (forward, loss, backward, optimizer step) and the
epoch's loss read-out; the trainer's own clock (``EpochMetrics.seconds``) starts before the
permutation and stops after its one loss sync. Per-epoch validation, FLOP counting and
latency runs are outside it (``*_trainer_epoch_plus_eval_ms`` is the trainer's epoch with
its validation and bookkeeping, timed from outside, for reference).

The runs interleave epoch by epoch: the trainer's callback runs one hand-written epoch
after each trainer epoch. The first epoch of each side is a warm-up and is not counted.

``--compile`` also times ``TrainConfig(compile=True)`` against the same trainer without it
on both cases (epoch = training pass + validation): ``compile_speedup_*`` (steady epochs),
``compile_seconds_*`` (the first epoch's extra time: the compile) and
``compile_break_even_epochs_*`` (epochs after which the compiled run is ahead).

Usage: ``python scripts/bench_train.py [--mlp-epochs N] [--resnet-epochs N] [--quick]
[--compile]``.
``--quick`` is a smoke run (3 timed epochs each, 512 shapes images): its ratios move by
several percent from run to run; quote the full run's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

import optuna  # noqa: E402
from bench_compile import copy_weights  # noqa: E402  (scripts/ is on the path)

from nas_skip import Genotype, build  # noqa: E402
from nas_skip.data import load_dataset  # noqa: E402
from nas_skip.data._base import Dataset  # noqa: E402
from nas_skip.spaces import Space, load_space  # noqa: E402
from nas_skip.train import EpochMetrics, TrainConfig, train  # noqa: E402

BATCH = 128
SPLITS = ("train", "val", "test")
WIDTH, DEPTH = 128, 12


# --- the genotypes: samples of the shipped spaces, chosen with optuna's FixedTrial -------
def mlp_genotype(features: int, classes: int) -> Genotype:
    """deep_mlp: a stem, then DEPTH layers ``x + relu(fc(x))`` (hop-1 ``add`` skips)."""
    params: dict[str, Any] = {"depth": DEPTH, "width": WIDTH}
    for j in range(DEPTH):
        params[f"op:l{j}"] = "linear_relu"
        for i in range(max(-1, j - 3), j):  # the space's hop window is 3
            params[f"edge:{'stem' if i < 0 else f'l{i}'}->l{j}"] = "add" if i == j - 1 else "none"
    space = load_space("deep_mlp")
    space = Space(space.spec, "bench", (features,), classes)
    return space.sample(optuna.trial.FixedTrial(params))


def resnet_genotype(shape: tuple[int, ...], classes: int) -> Genotype:
    """resnet_macro: width 16, 2 layers a stage, the stage input added after both (zero-pad)."""
    params: dict[str, Any] = {"width": 16}
    for k in (1, 2, 3):
        params[f"depth:s{k}"] = 2
        if k > 1:
            params[f"shortcut:s{k}"] = "zero_pad"
        params[f"op:s{k}.l0"] = params[f"op:s{k}.l1"] = "conv3x3_bn_relu"
        params[f"edge:s{k}.in->s{k}.l0"] = "none"
        params[f"edge:s{k}.in->s{k}.l1"] = "add"
        params[f"edge:s{k}.l0->s{k}.l1"] = "none"
    space = load_space("resnet_macro")
    space = Space(space.spec, "bench", tuple(shape), classes)
    return space.sample(optuna.trial.FixedTrial(params))


# --- the same networks by hand ------------------------------------------------------------
class ResBlock(nn.Module):
    """``x + relu(fc(x))``."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc(x)) + x


class HandMLP(nn.Module):
    def __init__(self, features: int, classes: int) -> None:
        super().__init__()
        self.stem = nn.Linear(features, WIDTH)
        self.blocks = nn.Sequential(*(ResBlock(WIDTH) for _ in range(DEPTH)))
        self.head = nn.Linear(WIDTH, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(F.relu(self.stem(x))))


class BasicBlock(nn.Module):
    """Two conv-BN-ReLU layers, then the option A shortcut added (new channels padded last)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.stride, self.pad = stride, c_out - c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        if self.stride != 1 or self.pad:
            x = F.pad(x[:, :, :: self.stride, :: self.stride], (0, 0, 0, 0, 0, self.pad))
        return out + x


class HandResNet8(nn.Module):
    def __init__(self, classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.blocks = nn.Sequential(
            BasicBlock(16, 16, 1), BasicBlock(16, 32, 2), BasicBlock(32, 64, 2)
        )
        self.fc = nn.Linear(64, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.blocks(F.relu(self.bn(self.conv(x))))
        return self.fc(out.mean((2, 3)))


# --- the plain loop -----------------------------------------------------------------------
def bench_case(
    name: str, genotype: Genotype, hand: nn.Module, data: Dataset, epochs: int, seed: int = 0
) -> dict[str, Any]:
    """Interleave ``epochs`` trainer epochs with as many hand-written ones; medians in ms."""
    config = TrainConfig(
        epochs=epochs, lr=0.05, batch_size=BATCH, seed=seed, threads=1, device="cpu"
    )
    torch.manual_seed(seed)  # what train() does before build(): both sides start equal
    reference = build(genotype)
    copy_weights(reference, hand)
    probe = data.x_val[:64]
    reference.eval()
    hand.eval()
    with torch.no_grad():
        diff = (hand(probe) - reference(probe)).abs().max().item()
    if diff > 1e-5:
        raise RuntimeError(f"{name}: hand-written and built networks disagree ({diff:.3g})")

    x, y = data.x_train, data.y_train
    optimizer = torch.optim.SGD(
        hand.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    order = torch.Generator().manual_seed(seed)
    hand_s: list[float] = []
    hand_loss: list[float] = []
    outside_s: list[float] = []  # trainer epoch + validation + bookkeeping, from outside
    mark = [time.perf_counter()]

    def hand_epoch(epoch: int, metrics: EpochMetrics) -> None:
        outside_s.append(time.perf_counter() - mark[0])
        t0 = time.perf_counter()
        hand.train()
        perm = torch.randperm(len(x), generator=order)
        total = 0.0
        for start in range(0, len(x), BATCH):
            idx = perm[start : start + BATCH]
            xb, yb = x[idx], y[idx]
            loss = F.cross_entropy(hand(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        scheduler.step()
        hand_loss.append(total / len(x))
        hand_s.append(time.perf_counter() - t0)
        mark[0] = time.perf_counter()

    result = train(genotype, data, config, callback=hand_epoch)
    trainer_s = [m.seconds for m in result.history]
    loss_diff = max(
        abs(m.train_loss - h) / abs(h) for m, h in zip(result.history, hand_loss, strict=True)
    )
    ms = {
        "trainer": 1e3 * statistics.median(trainer_s[1:]),
        "hand": 1e3 * statistics.median(hand_s[1:]),
        "outside": 1e3 * statistics.median(outside_s[1:]),
        "eval": 1e3 * statistics.median(m.eval_seconds for m in result.history[1:]),
    }
    return {
        f"ratio_{name}": round(ms["trainer"] / ms["hand"], 4),
        f"{name}_epoch_trainer_ms": round(ms["trainer"], 2),
        f"{name}_epoch_hand_ms": round(ms["hand"], 2),
        f"{name}_trainer_epoch_plus_eval_ms": round(ms["outside"], 2),
        f"{name}_val_eval_ms": round(ms["eval"], 2),
        f"{name}_epochs_timed": epochs - 1,
        f"{name}_train_samples": len(x),
        f"{name}_loss_max_rel_diff": float(f"{loss_diff:.3g}"),
        f"{name}_max_abs_diff": diff,
        f"{name}_val_accuracy": round(result.val_accuracy, 4),
    }


def compile_case(name: str, genotype: Genotype, data: Dataset, epochs: int) -> dict[str, Any]:
    """The trainer with ``compile=True`` over without: the compile's cost (its first epoch
    over a compiled epoch) and the speed of the compiled epochs (medians, first left out)."""
    config = TrainConfig(epochs=epochs, lr=0.05, batch_size=BATCH, threads=1, device="cpu",
                         train_error=False, latency_runs=1)  # fmt: skip
    plain = [m.seconds + m.eval_seconds for m in train(genotype, data, config).history]
    start = time.perf_counter()
    compiled = train(genotype, data, dataclasses.replace(config, compile=True)).history
    wall = time.perf_counter() - start
    steady = [m.seconds + m.eval_seconds for m in compiled]
    plain_ms, compiled_ms = statistics.median(plain[1:]), statistics.median(steady[1:])
    return {
        f"compile_speedup_{name}": round(plain_ms / compiled_ms, 3),
        f"compile_seconds_{name}": round(steady[0] - compiled_ms, 1),
        # None: the compiled epochs are no faster, so the compile never pays back
        f"compile_break_even_epochs_{name}": round((steady[0] - compiled_ms)
                                                    / (plain_ms - compiled_ms), 1)
        if plain_ms > compiled_ms else None,
        f"{name}_compiled_epoch_ms": round(1e3 * compiled_ms, 1),
        f"{name}_plain_epoch_ms": round(1e3 * plain_ms, 1),
        f"{name}_compiled_run_s": round(wall, 1),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run both cases and print one JSON line; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mlp-epochs", type=int, default=31, help="epochs incl. 1 warm-up")
    parser.add_argument("--resnet-epochs", type=int, default=7, help="epochs incl. 1 warm-up")
    parser.add_argument("--quick", action="store_true", help="smoke run: few epochs, less data")
    parser.add_argument(
        "--compile",
        action="store_true",
        help="also time torch.compile (TrainConfig.compile) on both cases",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    mnist1d, shapes = load_dataset("mnist1d"), load_dataset("shapes")
    if args.quick:
        args.mlp_epochs, args.resnet_epochs = 4, 4
        n = 512  # a subset keeps the conv case to seconds
        cut = {
            f"{xy}_{split}": getattr(shapes, f"{xy}_{split}")[:n]
            for xy in "xy"
            for split in SPLITS
        }
        shapes = dataclasses.replace(shapes, **cut)
    if args.mlp_epochs < 2 or args.resnet_epochs < 2:
        parser.error("need at least 2 epochs per case: the first is a warm-up")
    out: dict[str, Any] = {"torch": torch.__version__, "threads": 1, "batch": BATCH}
    out["quick"] = args.quick
    mlp = mlp_genotype(mnist1d.input_shape[0], mnist1d.num_classes)
    out.update(
        bench_case(
            "mlp_mnist1d",
            mlp,
            HandMLP(mnist1d.input_shape[0], mnist1d.num_classes),
            mnist1d,
            args.mlp_epochs,
        )
    )
    resnet = resnet_genotype(shapes.input_shape, shapes.num_classes)
    out.update(
        bench_case(
            "resnet_shapes", resnet, HandResNet8(shapes.num_classes), shapes, args.resnet_epochs
        )
    )
    if args.compile:
        out.update(compile_case("mlp_mnist1d", mlp, mnist1d, args.mlp_epochs))
        out.update(compile_case("resnet_shapes", resnet, shapes, args.resnet_epochs))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
