"""Benchmark the compiler: is a built module as fast as hand-written code, and is build fast?

Prints one JSON line:

- ``ratio_fwd_bwd``: forward + backward time of ``build(resnet20)`` over a hand-written
  ResNet-20 with the same layers and the same weights (CPU, one thread, batch 32, train
  mode; the models alternate every repetition and each one's median is taken after a
  warm-up). Goal: <= 1.03. ``ratio_vs_inplace`` compares with torchvision-style blocks
  (in-place add and ReLU), which the generated code does not write.
- ``build_200_ms``: median time of ``build(g)`` for a 200-node vector genotype with add,
  scaled, gated, concat and projection skips, with the source-compile cache cleared before
  each build (cold); ``build_200_warm_ms`` with the cache kept. Goal: <= 100 ms.
- ``ratio_transformer``: forward + backward time of a pre-LN transformer sampled from the
  ``transformer`` space (4 blocks, width 128, 4 heads, 128 characters of ``pydoc_lm``'s
  97-symbol vocabulary, batch 16) over a hand-written nanoGPT-style model with the same
  weights (``x = x + self.attn(self.ln_1(x))``), measured as above. Goal: <= 1.03.

Usage: ``python scripts/bench_compile.py [--reps N] [--build-reps N] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

import nas_skip.compile  # noqa: E402
from nas_skip import Genotype, build  # noqa: E402

RESNET20 = ROOT / "examples" / "genotypes" / "resnet20.json"


# --- the hand-written reference --------------------------------------------------------
class BasicBlock(nn.Module):
    """The CIFAR ResNet basic block, option A shortcut padding new channels at the end.

    nas-skip's ``zero_pad`` appends the new channels (the widely used CIFAR code pads
    ``planes // 4`` on both sides); padding at the end keeps outputs comparable.
    """

    def __init__(
        self, in_planes: int, planes: int, stride: int = 1, inplace: bool = False
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.stride, self.pad, self.inplace = stride, planes - in_planes, inplace

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the first ReLU is in place as in the generated code (nn.ReLU(inplace=True))
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        shortcut = x
        if self.stride != 1 or self.pad:
            shortcut = F.pad(x[:, :, :: self.stride, :: self.stride], (0, 0, 0, 0, 0, self.pad))
        if self.inplace:  # torchvision style: out += shortcut; relu(out, inplace=True)
            out += shortcut
            return F.relu(out, inplace=True)
        return F.relu(out + shortcut)


class ResNet20(nn.Module):
    """Hand-written CIFAR ResNet-20 (3 stages of 3 basic blocks, 16/32/64 channels).

    ``inplace`` ends each block with torchvision's in-place add and ReLU; without it each
    block computes exactly what the generated block does.
    """

    def __init__(self, n: int = 3, classes: int = 10, inplace: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        blocks: list[nn.Module] = []
        in_planes = 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(n):
                blocks.append(BasicBlock(in_planes, planes, stride if i == 0 else 1, inplace))
                in_planes = planes
        self.blocks = nn.Sequential(*blocks)
        self.linear = nn.Linear(64, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.blocks(out)
        return self.linear(out.mean((2, 3)))


def copy_weights(src: nn.Module, dst: nn.Module) -> None:
    """Copy ``src``'s state into ``dst`` by position: both register the same tensors in order.

    Raises:
        ValueError: the two state dicts differ in length or in a tensor's shape.
    """
    a, b = src.state_dict(), dst.state_dict()
    if len(a) != len(b):
        raise ValueError(f"state dicts differ in length: {len(a)} vs {len(b)}")
    mapped = {}
    for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True):
        if va.shape != vb.shape:
            raise ValueError(f"{ka} {tuple(va.shape)} does not fit {kb} {tuple(vb.shape)}")
        mapped[kb] = va.clone()
    dst.load_state_dict(mapped)


# --- a 200-node genotype ------------------------------------------------------------------
def deep_mlp_doc(n_nodes: int = 200, width: int = 64) -> dict[str, Any]:
    """A vector genotype of exactly ``n_nodes`` nodes cycling through skip kinds.

    Blocks in turn: residual (``add``), ReZero (``scaled``), highway (``gated``), a dense
    layer (``concat`` of the last two block outputs) and a layer whose half-width input
    gets the block input added through a ``projection``; then plain linear-ReLU layers up
    to the count.
    """
    nodes: list[dict[str, Any]] = [{"id": "stem", "op": "linear_relu", "features": width}]
    edges: list[dict[str, Any]] = [{"src": "input", "dst": "stem"}]
    outs = ["stem"]  # block outputs, all of shape (width,)

    def node(node_id: str, op: str, **params: Any) -> str:
        nodes.append({"id": node_id, "op": op, **params})
        return node_id

    def edge(src: str, dst: str, **attrs: Any) -> None:
        edges.append({"src": src, "dst": dst, **attrs})

    def residual(i: int) -> None:  # relu(F(x) + x)
        f1 = node(f"r{i}a", "linear_relu", features=width)
        f2 = node(f"r{i}b", "linear", features=width)
        out = node(f"r{i}", "relu")
        edge(outs[-1], f1)
        edge(f1, f2)
        edge(f2, out)
        edge(outs[-1], out, kind="add")
        outs.append(out)

    def rezero(i: int) -> None:  # x + alpha * F(x), alpha = 0 at first
        f, out = node(f"z{i}f", "linear_relu", features=width), node(f"z{i}", "identity")
        edge(outs[-1], f)
        edge(outs[-1], out)
        edge(f, out, kind="scaled", init=0.0)
        outs.append(out)

    def highway(i: int) -> None:  # g * H(x) + (1 - g) * x
        t, out = node(f"h{i}t", "linear_relu", features=width), node(f"h{i}", "identity")
        edge(outs[-1], t)
        edge(t, out)
        edge(outs[-1], out, kind="gated")
        outs.append(out)

    def dense(i: int) -> None:  # F(cat(x_prev, x)): a skip over the previous block
        out = node(f"d{i}", "linear_relu", features=width)
        edge(outs[-2], out, kind="concat")
        edge(outs[-1], out)
        outs.append(out)

    def projected(i: int) -> None:  # F(H(x) + W x), H half-width, W a projection
        f1 = node(f"p{i}a", "linear_relu", features=width // 2)
        out = node(f"p{i}", "linear_relu", features=width)
        edge(outs[-1], f1)
        edge(f1, out)
        edge(outs[-1], out, kind="add", align="projection")
        outs.append(out)

    kinds: list[tuple[Callable[[int], None], int]] = [
        (residual, 3),
        (rezero, 2),
        (highway, 2),
        (dense, 1),
        (projected, 2),
    ]
    i = 0
    while True:
        make, size = kinds[i % len(kinds)]
        if len(nodes) + size > n_nodes - 1:  # keep one node for the head
            break
        make(i)
        i += 1
    while len(nodes) < n_nodes - 1:
        out = node(f"fill{len(nodes)}", "linear_relu", features=width)
        edge(outs[-1], out)
        outs.append(out)
    node("head", "linear_head", classes=10)
    edge(outs[-1], "head")
    return {
        "schema": 1,
        "input": {"shape": [32]},
        "nodes": nodes,
        "edges": edges,
        "output": "head",
    }


# --- timing -------------------------------------------------------------------------------
def _step(model: nn.Module, x: torch.Tensor) -> float:
    """One timed forward + backward; gradients are dropped first, outside the timer."""
    model.zero_grad(set_to_none=True)
    t0 = time.perf_counter()
    model(x).sum().backward()
    return time.perf_counter() - t0


def bench_fwd_bwd(reps: int, warmup: int, batch: int) -> dict[str, Any]:
    """Median forward + backward times of the built and hand-written ResNet-20s, interleaved.

    ``hand`` computes exactly what the generated code does (the ratio that has a goal);
    ``hand_inplace`` ends blocks with torchvision's in-place add and ReLU, for reference.
    """
    torch.manual_seed(0)
    g = Genotype.from_json(RESNET20.read_text(encoding="utf-8"))
    models = {"built": build(g), "hand": ResNet20(), "hand_inplace": ResNet20(inplace=True)}
    x = torch.randn(batch, 3, 32, 32)
    diff = 0.0
    for name in ("hand", "hand_inplace"):
        copy_weights(models["built"], models[name])
    for model in models.values():
        model.eval()
    with torch.no_grad():
        ref = models["built"](x)
        for name in ("hand", "hand_inplace"):
            diff = max(diff, (models[name](x) - ref).abs().max().item())
    if diff > 1e-4:
        raise RuntimeError(f"built and hand-written ResNet-20 disagree (max |diff| {diff:.3g})")
    ms = _interleaved(models, x, reps, warmup)
    return {
        "ratio_fwd_bwd": round(ms["built"] / ms["hand"], 4),
        "fwd_bwd_built_ms": round(ms["built"], 2),
        "fwd_bwd_hand_ms": round(ms["hand"], 2),
        "ratio_vs_inplace": round(ms["built"] / ms["hand_inplace"], 4),
        "fwd_bwd_hand_inplace_ms": round(ms["hand_inplace"], 2),
        "max_abs_diff": diff,
    }


# --- the hand-written transformer (nanoGPT's layout) --------------------------------------
class HandAttention(nn.Module):
    """nanoGPT's causal self-attention, without biases or dropout."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.c_attn = nn.Linear(width, 3 * width, bias=False)
        self.c_proj = nn.Linear(width, width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(b, t, c))


class HandBlock(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = HandAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(),
                                 nn.Linear(4 * width, width))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class HandGPT(nn.Module):
    def __init__(self, vocab: int, length: int, width: int, heads: int, depth: int) -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab, width)
        self.wpe = nn.Embedding(length, width)
        self.blocks = nn.Sequential(*(HandBlock(width, heads) for _ in range(depth)))
        self.ln_f = nn.LayerNorm(width)
        self.lm_head = nn.Linear(width, vocab, bias=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.wte(idx) + self.wpe.weight
        return self.lm_head(self.ln_f(self.blocks(x)))


def transformer_genotype(depth: int = 4, width: int = 128, heads: int = 4) -> Genotype:
    """A pre-LN decoder with add residuals, sampled from the shipped ``transformer`` space."""
    from optuna.trial import FixedTrial

    from nas_skip.spaces import load_space

    space = load_space("transformer")
    params: dict[str, Any] = {"depth": depth, "width": width, "heads": heads,
                              "norm": "layernorm", "dwa": "none", "attn:norm": "pre",
                              "mlp:norm": "pre", "attn:residual": "add",
                              "mlp:residual": "add"}  # fmt: skip
    params |= {f"skip:b{i}->b{j}": "none" for j in range(depth + 1) for i in range(j)}
    return space.sample(FixedTrial(params))


def _interleaved(models: dict[str, nn.Module], x: torch.Tensor, reps: int,
                 warmup: int) -> dict[str, float]:  # fmt: skip
    """Median forward + backward ms of each model, in train mode, after ``warmup`` rounds;
    which model goes first rotates, so that none always runs right after another."""
    for model in models.values():
        model.train()
    for _ in range(warmup):
        for model in models.values():
            _step(model, x)
    names = list(models)
    times: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(reps):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(_step(models[name], x))
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def bench_transformer(reps: int, warmup: int, batch: int = 16) -> dict[str, Any]:
    """Built pre-LN transformer vs hand-written nanoGPT-style one, same weights."""
    torch.manual_seed(0)
    g = transformer_genotype()
    (length,), vocab = g.input_shape, g.shapes[g.output][-1]
    built = build(g)
    hand = HandGPT(vocab, length, 128, 4, 4)
    copy_weights(built, hand)
    x = torch.randint(0, vocab, (batch, length))
    with torch.no_grad():
        diff = (built.eval()(x) - hand.eval()(x)).abs().max().item()
    if diff > 1e-4:
        raise RuntimeError(f"built and hand-written transformers disagree (max |diff| {diff:.3g})")
    ms = _interleaved({"built": built, "hand": hand}, x, reps, warmup)
    return {
        "ratio_transformer": round(ms["built"] / ms["hand"], 4),
        "transformer_built_ms": round(ms["built"], 2),
        "transformer_hand_ms": round(ms["hand"], 2),
        "transformer_max_abs_diff": diff,
    }


def _median_ms(fn: Callable[[], object], reps: int, before: Callable[[], None]) -> float:
    samples = []
    for _ in range(reps):
        before()
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return round(1e3 * statistics.median(samples), 2)


def bench_build(reps: int, n_nodes: int = 200) -> dict[str, Any]:
    """Median parse, cold build and warm build times of an ``n_nodes``-node genotype."""
    doc = deep_mlp_doc(n_nodes)
    g = Genotype.from_json(doc)
    if len(g.nodes) != n_nodes:
        raise RuntimeError(f"benchmark genotype has {len(g.nodes)} nodes, not {n_nodes}")
    build(g)  # import and first-call costs are not what we measure

    def nothing() -> None:
        pass

    cold = _median_ms(lambda: build(g), reps, nas_skip.compile._compile.cache_clear)
    warm = _median_ms(lambda: build(g), reps, nothing)
    parse = _median_ms(lambda: Genotype.from_json(doc), reps, nothing)
    return {
        "build_200_ms": cold,
        "build_200_warm_ms": warm,
        "parse_200_ms": parse,
        "build_nodes": n_nodes,
    }


def main(argv: list[str] | None = None) -> int:
    """Run both benchmarks and print one JSON line; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=61, help="timed rounds (each model once)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first")
    parser.add_argument("--batch", type=int, default=32, help="ResNet-20 batch size")
    parser.add_argument("--build-reps", type=int, default=9, help="timed builds")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--quick", action="store_true", help="smoke run: few repetitions")
    args = parser.parse_args(argv)
    if args.quick:
        args.reps, args.warmup, args.build_reps = 3, 1, 3
    torch.set_num_threads(args.threads)
    result: dict[str, Any] = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch": args.batch,
        "reps": args.reps,
        "quick": args.quick,
    }
    result.update(bench_fwd_bwd(args.reps, args.warmup, args.batch))
    result.update(bench_transformer(args.reps, args.warmup))
    result.update(bench_build(args.build_reps))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
