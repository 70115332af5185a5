"""Which residual design should a small transformer use? Named designs, then a search.

Trains the published residual designs of a transformer block, each a genotype sampled
from the shipped ``transformer`` space with its choices fixed, on the character-level
language model ``pydoc_lm`` (CPython's pydoc topics, 128-character windows), at two depths
and several seeds, with one recipe (AdamW at ``--lr`` with weight decay 0.1 and a cosine
schedule over ``--epochs``, gradients clipped at norm 1, batch 32) and no learning-rate
warm-up unless a design says so:

- ``post_ln``: the original Transformer's ``LN(x + F(x))`` (Vaswani et al. 2017);
- ``post_ln_warmup``: the same with a one-epoch linear warm-up (what Xiong et al. 2020
  found post-LN needs at depth);
- ``pre_ln``: GPT-2's ``x + F(LN(x))`` (Xiong et al. 2020);
- ``rezero``: ``x + alpha * F(x)``, alpha from 0, no norms (Bachlechner et al. 2020);
- ``gated``: pre-LN with a highway gate ``g * F + (1 - g) * x`` starting near the
  identity (GTrXL's gating, Parisotto et al. 2019);
- ``denseformer``: pre-LN plus a depth-weighted average of the embedding and every
  earlier block output after each block, weights from 0 (Pagliardini et al. 2024).

Per design and depth: the final validation bits per character (mean and sample standard
deviation over seeds), the optimizer steps until the validation loss first reached
``--target`` bits (linear between the per-epoch evaluations; null if never), and runs that
diverged. Then a short search of the space at the first depth and the same width and
recipe (``--trials`` trials of ``--epochs`` epochs, the default sampler, every residual
choice open, warm-up 0 or 1 epoch) says whether a search finds a design as good as the
named ones on the same budget; its best genotype is drawn to ``--draw`` (an SVG). Prints
one JSON line. ``--quick`` is a smoke run of a few minutes. Runs train in parallel
processes (``--jobs``, default 2), one torch thread each.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

#: each design's choices in the ``transformer`` space, and its warm-up in epochs
DESIGNS: dict[str, tuple[dict[str, str], float]] = {
    "post_ln": ({"attn:norm": "post", "mlp:norm": "post", "attn:residual": "add",
                 "mlp:residual": "add"}, 0.0),
    "post_ln_warmup": ({"attn:norm": "post", "mlp:norm": "post", "attn:residual": "add",
                        "mlp:residual": "add"}, 1.0),
    "pre_ln": ({"attn:norm": "pre", "mlp:norm": "pre", "attn:residual": "add",
                "mlp:residual": "add"}, 0.0),
    "rezero": ({"attn:norm": "none", "mlp:norm": "none", "attn:residual": "scaled",
                "mlp:residual": "scaled"}, 0.0),
    "gated": ({"attn:norm": "pre", "mlp:norm": "pre", "attn:residual": "gated",
               "mlp:residual": "gated"}, 0.0),
    "denseformer": ({"attn:norm": "pre", "mlp:norm": "pre", "attn:residual": "add",
                     "mlp:residual": "add", "dwa": "scaled"}, 0.0),
}  # fmt: skip


def design_params(design: str, depth: int, width: int, heads: int) -> dict[str, Any]:
    """The trial choices of ``design`` at ``depth`` blocks (no cross-block skips)."""
    choices, _ = DESIGNS[design]
    params: dict[str, Any] = {"depth": depth, "width": width, "heads": heads,
                              "norm": "layernorm", "dwa": "none", **choices}  # fmt: skip
    params |= {f"skip:b{i}->b{j}": "none" for j in range(depth + 1) for i in range(j)}
    return params


def steps_to(target: float, history: list[tuple[int, float]]) -> float | None:
    """Steps until the validation bpc first reached ``target``, linear between the
    evaluations ``(step, bpc)`` (step 0: before training is not measured; the first
    evaluation counts from 0 steps at the untrained bpc of log2(97))."""
    prev_step, prev_bpc = 0, math.log2(97)
    for step, bpc in history:
        if bpc <= target:
            if prev_bpc <= bpc:
                return float(step)
            return prev_step + (step - prev_step) * (prev_bpc - target) / (prev_bpc - bpc)
        prev_step, prev_bpc = step, bpc
    return None


def run_one(design: str, depth: int, seed: int, args: dict[str, Any]) -> dict[str, Any]:
    """Train one design once; returns its figures (in a worker process)."""
    import optuna
    import torch

    from nas_skip.data import load_dataset
    from nas_skip.spaces import load_space
    from nas_skip.train import TrainConfig, TrialDiverged, train
    from nas_skip.train._data import batch_starts

    torch.set_num_threads(1)
    space = load_space("transformer")
    params = design_params(design, depth, args["width"], args["heads"])
    genotype = space.sample(optuna.trial.FixedTrial(params))
    data = load_dataset("pydoc_lm")
    steps = len(batch_starts(len(data.x_train), 32))
    config = TrainConfig(epochs=args["epochs"], seed=seed, optimizer="adamw", lr=args["lr"],
                         weight_decay=0.1, batch_size=32, grad_clip=1.0,
                         warmup_epochs=DESIGNS[design][1], latency_runs=1)  # fmt: skip
    t0 = time.perf_counter()
    try:
        result = train(genotype, data, config)
    except TrialDiverged as exc:
        return {"design": design, "depth": depth, "seed": seed, "diverged": str(exc)}
    history = [(m.epoch * steps, float(m.val_bpc or math.nan)) for m in result.history]
    return {
        "design": design,
        "depth": depth,
        "seed": seed,
        "val_bpc": result.val_bpc,
        "steps_to_target": steps_to(args["target"], history),
        "history": [round(b, 4) for _, b in history],
        "params": result.params,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def summarise(runs: list[dict[str, Any]], depths: list[int]) -> dict[str, Any]:
    """Per design and depth: mean and standard deviation of the final bpc and of the
    steps to the target, and how many runs diverged or never reached the target."""
    out: dict[str, Any] = {}
    for design in DESIGNS:
        for depth in depths:
            mine = [r for r in runs if r["design"] == design and r["depth"] == depth]
            done = [r for r in mine if "val_bpc" in r]
            bpcs = [r["val_bpc"] for r in done]
            reached = [r["steps_to_target"] for r in done if r["steps_to_target"] is not None]
            out[f"{design}@{depth}"] = {
                "val_bpc": round(statistics.mean(bpcs), 4) if bpcs else None,
                "val_bpc_std": round(statistics.stdev(bpcs), 4) if len(bpcs) > 1 else None,
                "steps_to_target": round(statistics.mean(reached)) if reached else None,
                "reached": f"{len(reached)}/{len(mine)}",
                "diverged": len(mine) - len(done),
            }
    return out


def search_space(args: argparse.Namespace, depth: int, folder: Path) -> Path:
    """The shipped ``transformer`` space at ``depth`` blocks, the script's width and heads,
    and its recipe (warm-up 0 or 1 epoch searched); every residual choice as shipped."""
    import yaml

    doc = yaml.safe_load((ROOT / "search_spaces" / "transformer.yaml").read_text())
    doc["name"] = f"transformer_d{depth}"
    doc["skeleton"].update(depth=depth, width=args.width, heads=args.heads)
    doc["train"] = {"optimizer": "adamw", "lr": args.lr, "weight_decay": 0.1,
                    "batch_size": 32, "grad_clip": 1.0, "warmup_epochs": [0, 1]}  # fmt: skip
    path = folder / f"{doc['name']}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def search(args: argparse.Namespace, depth: int, folder: Path) -> dict[str, Any]:
    """A short search of the space at ``depth``; its best trial's bpc, choices, drawing."""
    import nas_skip
    from nas_skip.draw import draw
    from nas_skip.searching._export import trial_genotype

    t0 = time.perf_counter()
    study = nas_skip.search(search_space(args, depth, folder), trials=args.trials,
                            epochs=args.epochs, workers=args.jobs, seed=0, progress=False,
                            storage=f"sqlite:///{folder / 'search.db'}",
                            artifacts=str(folder / "artifacts"))  # fmt: skip
    best = nas_skip.best(study)
    genotype = trial_genotype(best)
    drawn = draw(genotype, args.draw) if args.draw else None
    values = [t.values[0] for t in study.trials if t.values]
    states = [t.state.name for t in study.trials]
    return {
        "complete": states.count("COMPLETE"),
        "pruned": states.count("PRUNED"),
        "diverged": sum(
            str(t.user_attrs.get("pruned_reason", "")).startswith("diverged") for t in study.trials
        ),  # fmt: skip
        "failed": states.count("FAIL"),
        "depth": depth,
        "trials": len(study.trials),
        "epochs": args.epochs,
        "best_bpc": round(best.values[0], 4),
        "median_bpc": round(statistics.median(values), 4) if values else None,
        "best_params": {
            k: v for k, v in best.params.items() if not k.startswith("skip:") or v != "none"
        },  # fmt: skip
        "best_hash": genotype.canonical_hash(),
        "drawing": str(drawn) if drawn else None,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", default="4,12", help="blocks, comma-separated")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3, help="epochs of each design's run")
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--lr", type=float, default=3e-3, help="AdamW's constant rate")
    parser.add_argument("--target", type=float, default=3.0, help="bpc for steps-to-target")
    parser.add_argument("--trials", type=int, default=12, help="trials of the search")
    parser.add_argument("--jobs", type=int, default=2, help="parallel processes")
    parser.add_argument("--draw", default=str(ROOT / "docs" / "transformer-best.svg"))
    parser.add_argument("--quick", action="store_true", help="smoke run")
    args = parser.parse_args(argv)
    depths = [int(d) for d in args.depths.split(",")]
    if args.quick:
        depths, args.seeds, args.epochs = [1, 2], 1, 1
        args.trials, args.draw = 2, None
    from rich.console import Console
    from rich.progress import Progress

    t0 = time.perf_counter()
    shared = {"epochs": args.epochs, "width": args.width, "heads": args.heads,
              "lr": args.lr, "target": args.target}  # fmt: skip
    jobs = [(d, depth, seed) for depth in sorted(depths, reverse=True)  # the long ones first
            for d in DESIGNS for seed in range(args.seeds)]  # fmt: skip
    runs: list[dict[str, Any]] = []
    context = multiprocessing.get_context("spawn")
    with (ProcessPoolExecutor(args.jobs, mp_context=context) as pool,
          Progress(console=Console(stderr=True), transient=True) as bar):  # fmt: skip
        task = bar.add_task("designs", total=len(jobs))
        futures = [pool.submit(run_one, *job, shared) for job in jobs]
        for future in as_completed(futures):
            runs.append(future.result())
            bar.advance(task)
    runs.sort(key=lambda r: (r["depth"], list(DESIGNS).index(r["design"]), r["seed"]))
    designed = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        found = search(args, depths[0], Path(tmp))
    figures = {
        "dataset": "pydoc_lm",
        "depths": depths,
        "seeds": args.seeds,
        "epochs": args.epochs,
        "width": args.width,
        "heads": args.heads,
        "lr": args.lr,
        "target_bpc": args.target,
        "designs": summarise(runs, depths),
        "designs_seconds": round(designed, 1),
        "search": found,
        "seconds": round(time.perf_counter() - t0, 1),
        "quick": args.quick,
        "runs": runs,
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
