"""Reproduce the degradation problem (He et al. 2015, Fig. 1) with nas-skip genotypes.

A deeper *plain* network has a higher *training* error than a shallower one, while the
same networks with identity shortcuts get better with depth. Plain and residual networks
are identical but for the shortcut: blocks of two layers, ``m = relu(F(x) + x)`` with an
``add`` edge (residual) or ``m = relu(F(x))`` without it (plain). All runs share one
optimizer and schedule.

Prints a markdown table (mean and spread over seeds) and ends with one JSON line of the
mean final training errors::

    {"plain_shallow": e, "plain_deep": e, "res_shallow": e, "res_deep": e}

``--quick`` (about 3 minutes on 2 cores) uses fewer epochs and seeds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from rich.progress import Progress

from nas_skip import Genotype
from nas_skip.data import Dataset, load_dataset
from nas_skip.train import TrainConfig, TrainResult, train


def mlp(blocks: int, width: int, residual: bool, features: int, classes: int) -> Genotype:
    """A stem, ``blocks`` two-layer blocks (LayerNorm-linear-ReLU, linear), a head."""
    nodes: list[dict[str, Any]] = [{"id": "stem", "op": "linear_relu", "features": width}]
    edges: list[dict[str, Any]] = [{"src": "input", "dst": "stem"}]
    prev = "stem"
    for k in range(blocks):
        nodes += [
            {"id": f"b{k}a", "op": "layernorm_linear_relu", "features": width},
            {"id": f"b{k}b", "op": "linear", "features": width},
            {"id": f"b{k}", "op": "relu"},
        ]
        edges += [
            {"src": prev, "dst": f"b{k}a"},
            {"src": f"b{k}a", "dst": f"b{k}b"},
            {"src": f"b{k}b", "dst": f"b{k}"},
        ]
        if residual:
            edges.append({"src": prev, "dst": f"b{k}", "kind": "add"})
        prev = f"b{k}"
    nodes.append({"id": "head", "op": "linear_head", "classes": classes})
    edges.append({"src": prev, "dst": "head"})
    doc = {"schema": 1, "input": {"shape": [features]}, "nodes": nodes, "edges": edges,
           "output": "head"}  # fmt: skip
    return Genotype.from_json(doc)


def cnn(blocks: int, width: int, residual: bool, shape: list[int], classes: int) -> Genotype:
    """A CIFAR-style ResNet/plain net with ``blocks`` blocks per stage over 3 stages."""
    nodes: list[dict[str, Any]] = [{"id": "stem", "op": "conv3x3_bn_relu", "channels": width}]
    edges: list[dict[str, Any]] = [{"src": "input", "dst": "stem"}]
    prev = "stem"
    for s in range(3):
        for k in range(blocks):
            stride = 2 if s > 0 and k == 0 else 1
            i = f"s{s}b{k}"
            nodes += [
                {"id": f"{i}a", "op": "conv3x3_bn_relu", "channels": width * 2**s,
                 "stride": stride},
                {"id": f"{i}b", "op": "conv3x3_bn", "channels": width * 2**s},
                {"id": i, "op": "relu"},
            ]  # fmt: skip
            edges += [
                {"src": prev, "dst": f"{i}a"},
                {"src": f"{i}a", "dst": f"{i}b"},
                {"src": f"{i}b", "dst": i},
            ]
            if residual:
                edges.append({"src": prev, "dst": i, "kind": "add"})
            prev = i
    nodes.append({"id": "head", "op": "gap_linear", "classes": classes})
    edges.append({"src": prev, "dst": "head"})
    doc = {"schema": 1, "input": {"shape": shape}, "nodes": nodes, "edges": edges,
           "output": "head"}  # fmt: skip
    return Genotype.from_json(doc)


def run(
    dataset: Dataset, depths: tuple[int, int], seeds: int, config: TrainConfig, conv: bool
) -> dict[str, list[TrainResult]]:
    results: dict[str, list[TrainResult]] = {}
    runs = [
        (f"{'res' if residual else 'plain'}_{size}", blocks, residual)
        for residual in (False, True)
        for size, blocks in zip(("shallow", "deep"), depths, strict=True)
    ]
    with Progress() as progress:
        task = progress.add_task(dataset.name, total=len(runs) * seeds)
        for key, blocks, residual in runs:
            if conv:
                g = cnn(blocks, 16, residual, list(dataset.input_shape), dataset.num_classes)
            else:
                g = mlp(blocks, 128, residual, dataset.input_shape[0], dataset.num_classes)
            for seed in range(seeds):
                progress.update(task, description=f"{dataset.name} {key} seed {seed}")
                cfg = TrainConfig(**{**config.to_dict(), "seed": seed})
                results.setdefault(key, []).append(train(g, dataset, cfg))
                progress.advance(task)
    return results


def table(name: str, depths: tuple[int, int], layers: int, results: dict[str, Any]) -> str:
    lines = [
        f"**{name}** (layers: shallow {depths[0] * layers + 2}, deep {depths[1] * layers + 2})",
        "",
        "| network | depth | final training error | validation accuracy |",
        "|---|---|---|---|",
    ]
    for key, rs in results.items():
        errors = [r.train_error for r in rs]
        accs = [r.val_accuracy for r in rs]
        spread = statistics.pstdev(errors)
        depth = depths[0] if key.endswith("shallow") else depths[1]
        lines.append(
            f"| {key.split('_')[0]} | {depth * layers + 2} | "
            f"{statistics.mean(errors):.3f} ± {spread:.3f} | {statistics.mean(accs):.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and seeds")
    parser.add_argument("--shapes", action="store_true", help="also the conv nets on shapes")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args()
    seeds = args.seeds or (2 if args.quick else 3)
    epochs = args.epochs or (15 if args.quick else 40)
    config = TrainConfig(
        epochs=epochs, lr=0.02, momentum=0.9, weight_decay=1e-4, batch_size=128, threads=2
    )
    start = time.perf_counter()
    depths = (4, 24)  # blocks of two layers: 10 and 50 layers with stem and head
    data = load_dataset("mnist1d")
    results = run(data, depths, seeds, config, conv=False)
    print(table("MNIST-1D, MLP", depths, 2, results))
    if args.shapes:
        shapes = load_dataset("shapes")
        cfg = TrainConfig(**{**config.to_dict(), "epochs": max(3, epochs // 4)})
        conv = run(shapes, (1, 5), seeds, cfg, conv=True)
        print()
        print(table("shapes, CNN", (1, 5), 6, conv))
    print(f"\n{seeds} seeds, {epochs} epochs, {time.perf_counter() - start:.0f} s")
    print(
        json.dumps(
            {k: round(statistics.mean(r.train_error for r in rs), 4) for k, rs in results.items()}
        )
    )


if __name__ == "__main__":
    main()
