"""Does a search rediscover skip connections where deep networks need them?

Searches ``deep_mlp`` restricted to deep networks (16-32 layers by default) twice per
seed, with the same budget: once with every skip kind on offer, once with plain chains
only (kinds ``[none]``: depth, width, ops and training settings still searched). Prints
one JSON line::

    {"seeds": 3, "trials": 20, "epochs": 8, "depth": [16, 32],
     "best_uses_skips": 1.0,                   # share of seeds whose best genotype has skips
     "best_accuracy": 0.71, "best_accuracy_std": 0.01,   # best of the skip search
     "plain_accuracy": 0.52, "plain_accuracy_std": 0.02, # best of the plain search
     "top10_hop1_residual": 1.0,               # top-10% trials with a hop-1 add/scaled skip
     "all_hop1_residual": 1.0,                 # ... and among all complete trials
     "top10_residual_layers": 0.5,             # share of a top-10% trial's layers that
     "all_residual_layers": 0.4,               # have a hop-1 add/scaled skip; all trials
     "per_seed": [...], "seconds": 1400}

A hop-1 ``add`` or ``scaled`` skip is a residual connection around one layer (ResNet's,
or ReZero's with a learned scale). In 16-32 layers nearly every trial has one somewhere,
so the share of *layers* that have one says more than the share of trials. The README
quotes the default run (about 25 minutes on 2 cores); ``--quick`` is a smoke run of a
minute; ``--storage URL`` keeps the studies (the default is a temporary SQLite file).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from nas_skip.searching import SearchConfig, search
from nas_skip.spaces import load_spec

EDGE = re.compile(r"edge:(stem|l(\d+))->l(\d+)")
RESIDUAL = ("add", "scaled")


def deep_space(folder: Path, low: int, high: int, kinds: list[str] | None) -> Path:
    """deep_mlp's file with its depth range (and, for the plain search, its kinds) replaced."""
    doc = yaml.safe_load(Path(load_spec("deep_mlp").path).read_text())
    name = "deep_mlp_plain" if kinds else "deep_mlp_deep"
    doc["name"] = name
    doc["skeleton"]["depth"] = {"low": low, "high": high}
    if kinds:
        doc["skeleton"]["kinds"] = kinds
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def skips(trial: FrozenTrial) -> list[tuple[int, str]]:
    """(hop, kind) of each skip a trial switched on; the stem is layer -1."""
    out = []
    for name, kind in trial.params.items():
        m = EDGE.fullmatch(name)
        if m and kind != "none":
            src = -1 if m.group(1) == "stem" else int(m.group(2))
            out.append((int(m.group(3)) - src, str(kind)))
    return out


def has_residual(trial: FrozenTrial) -> bool:
    return any(hop == 1 and kind in RESIDUAL for hop, kind in skips(trial))


def residual_layers(trial: FrozenTrial) -> float:
    """The share of the trial's layers with a hop-1 add or scaled skip around them."""
    around = sum(1 for hop, kind in skips(trial) if hop == 1 and kind in RESIDUAL)
    return around / int(trial.params.get("depth", 1))


def complete(study: optuna.Study) -> list[FrozenTrial]:
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sorted((t for t in trials if "duplicate_of" not in t.user_attrs),
                  key=lambda t: -float(t.values[0]))  # fmt: skip


def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    spaces = {
        "skips": deep_space(folder, args.low, args.high, None),
        "plain": deep_space(folder, args.low, args.high, ["none"]),
    }
    storage = args.storage or f"sqlite:///{folder / 'rediscover.db'}"
    per_seed: list[dict[str, Any]] = []
    top: list[FrozenTrial] = []
    every: list[FrozenTrial] = []
    for seed in range(args.seeds):
        row: dict[str, Any] = {"seed": seed}
        for label, path in spaces.items():
            config = SearchConfig(space=str(path), trials=args.trials, epochs=args.epochs,
                                  workers=args.workers, seed=seed, storage=storage,
                                  study=f"{label}-{seed}", keep=0,
                                  artifacts=str(folder / "artifacts"))  # fmt: skip
            trials = complete(search(config).study)
            if not trials:
                row[label] = None
                continue
            best = trials[0]
            row[label] = round(float(best.values[0]), 4)
            if label == "skips":
                row["best_skips"] = sorted({kind for _, kind in skips(best)})
                row["best_depth"] = best.params.get("depth")
                top += trials[: max(1, len(trials) // 10)]
                every += trials
            else:
                row["plain_depth"] = best.params.get("depth")
        per_seed.append(row)

    def stats(key: str) -> tuple[float | None, float | None]:
        values = [r[key] for r in per_seed if r.get(key) is not None]
        if not values:
            return None, None
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return round(statistics.mean(values), 4), round(spread, 4)

    best, best_std = stats("skips")
    plain, plain_std = stats("plain")
    with_skips = [bool(r.get("best_skips")) for r in per_seed if r.get("skips") is not None]

    def share(trials: list[FrozenTrial]) -> float | None:
        return round(sum(map(has_residual, trials)) / len(trials), 3) if trials else None

    def layers(trials: list[FrozenTrial]) -> float | None:
        return round(statistics.mean(map(residual_layers, trials)), 3) if trials else None

    return {
        "seeds": args.seeds,
        "trials": args.trials,
        "epochs": args.epochs,
        "depth": [args.low, args.high],
        "best_uses_skips": round(sum(with_skips) / len(with_skips), 3) if with_skips else None,
        "best_accuracy": best,
        "best_accuracy_std": best_std,
        "plain_accuracy": plain,
        "plain_accuracy_std": plain_std,
        "top10_hop1_residual": share(top),
        "all_hop1_residual": share(every),
        "top10_residual_layers": layers(top),
        "all_residual_layers": layers(every),
        "per_seed": per_seed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--low", type=int, default=16, help="fewest layers")
    parser.add_argument("--high", type=int, default=32, help="most layers")
    parser.add_argument("--storage", help="keep the studies in this Optuna storage")
    parser.add_argument("--quick", action="store_true", help="1 seed, 4 trials, 1 epoch")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.trials, args.epochs = 1, 4, 1
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = run(args, Path(tmp))
    out["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
