"""One-shot search against a trial search and random networks (issue 13's measurements).

For each case and seed, on temporary SQLite studies (``deep_mlp`` restricted to 16-32
layers on MNIST-1D: 3 seeds of 8-epoch trials, its supernet a 16-layer MLP of width 128;
``resnet_macro`` on shapes: 2 seeds of 4-epoch trials, its supernet 2 layers per stage at
width 8; see :data:`CASES`):

- ``nas-skip search --strategy oneshot`` with ``--relaxation softmax`` and ``sigmoid``,
  through the public API: the whole run's wall time (supernet, derivation, the derived
  network trained from scratch as a trial), the derived network's validation accuracy,
  the skips kept and how the count moved over the supernet's epochs;
- a trial search of ``--trials`` trials (the default strategy and sampler): its best, its
  best among the trials finished within the one-shot run's wall time, and the mean time
  per trial (so the one-shot run's wall time reads as "trials' worth");
- on the first seed, ``--genotypes`` random networks of the supernet's fixed structure
  trained stand-alone (mean and best of 5: random search at one-shot's cost) and the
  Kendall tau between their accuracy inherited from the softmax supernet (choices pinned,
  batch-norm statistics re-estimated) and their stand-alone accuracy.

Prints one JSON line: per case, the figures averaged over seeds (``*_std`` the sample
standard deviation) and each seed's. ``--quick`` is a smoke run of a few minutes.
Runs cases in parallel processes (``--jobs``, default 2), one torch thread each.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import yaml

CASES: dict[str, dict[str, Any]] = {
    # the supernet holds a 16-layer MLP (the range's low end: every layer's three skips
    # are mixed) at width 128; the trial search samples depth 16-32 and every width
    "deep_mlp": {
        "space": "deep_mlp",
        "depth": [16, 32],
        "fix": {"depth": 16, "width": 128},
        "epochs": 8,
        "seeds": 3,
        "genotypes": 20,
    },
    # the supernet holds 2 layers per stage at width 8 (the largest structure, 4 layers per
    # stage at width 16, trains an epoch ~13x slower than an average trial on 2 cores)
    "resnet_macro": {
        "space": "resnet_macro",
        "fix": {"depth:s1": 2, "depth:s2": 2, "depth:s3": 2, "width": 8},
        # a trial of 8 epochs takes about 100 s on one core: 20 trials a seed at 4 epochs
        "epochs": 4,
        "seeds": 2,
        "genotypes": 0,
    },
}


def _space(folder: Path, case: dict[str, Any]) -> str:
    """The case's space: the shipped file, with its depth range replaced where asked."""
    from nas_skip.spaces import load_spec

    if "depth" not in case:
        return case["space"]
    doc = yaml.safe_load(Path(load_spec(case["space"]).path).read_text())
    low, high = case["depth"]
    doc["name"] = f"{case['space']}_{low}_{high}"
    doc["skeleton"]["depth"] = {"low": low, "high": high}
    path = folder / f"{doc['name']}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def _oneshot(space: str, fix: dict[str, Any], relaxation: str, seed: int, epochs: int,
             storage: str, artifacts: str) -> dict[str, Any]:  # fmt: skip
    import optuna

    from nas_skip.searching import SearchConfig, search

    start = time.perf_counter()
    result = search(SearchConfig(space=space, strategy="oneshot", relaxation=relaxation,
                                 epochs=epochs, fix=fix, seed=seed, storage=storage,
                                 study=f"oneshot-{relaxation}-{seed}", artifacts=artifacts),
                    progress=False)  # fmt: skip
    wall = time.perf_counter() - start
    study = optuna.load_study(study_name=result.study_name, storage=storage)
    record = study.user_attrs["oneshot:1"]
    trial = next(t for t in study.get_trials() if t.user_attrs.get("oneshot") == 1)
    return {
        "accuracy": trial.values[0] if trial.values else None,
        "seconds": round(wall, 1),
        "supernet_seconds": record["seconds"],
        "supernet_accuracy": record["val_accuracy"][-1],
        "skips": record["skips_kept"],
        "skips_by_epoch": record["skips"],
        "candidates": record["choices"],
    }


def _trials(space: str, seed: int, epochs: int, trials: int, storage: str, artifacts: str,
            within: float) -> dict[str, Any]:  # fmt: skip
    import optuna
    from optuna.trial import TrialState

    from nas_skip.searching import SearchConfig, search

    start = time.perf_counter()
    result = search(SearchConfig(space=space, trials=trials, epochs=epochs, seed=seed,
                                 storage=storage, study=f"trials-{seed}", artifacts=artifacts),
                    progress=False)  # fmt: skip
    wall = time.perf_counter() - start
    study = optuna.load_study(study_name=result.study_name, storage=storage)
    done = [t for t in study.get_trials() if t.state == TrialState.COMPLETE and t.values]
    first = min(t.datetime_start for t in study.get_trials() if t.datetime_start)
    in_time = [t.values[0] for t in done
               if (t.datetime_complete - first).total_seconds() <= within]  # fmt: skip
    first5 = [t.values[0] for t in done if t.number < 5]
    return {
        "best": max(t.values[0] for t in done),
        "best_within_oneshot_time": max(in_time) if in_time else None,
        "best_of_first_5": max(first5) if first5 else None,
        "seconds": round(wall, 1),
        "seconds_per_trial": round(wall / trials, 2),
    }


def _kendall(space: str, fix: dict[str, Any], seed: int, epochs: int,
             genotypes: int) -> dict[str, Any]:  # fmt: skip
    import torch
    from scipy.stats import kendalltau

    from nas_skip.data import load_dataset
    from nas_skip.oneshot import OneShotConfig, inherited_accuracy, relax, train_supernet
    from nas_skip.spaces import load_space
    from nas_skip.train import TrainConfig, train

    sp = load_space(space)
    relaxation = relax(sp, fix)
    data = load_dataset(sp.dataset, sp.domain)
    run = train_supernet(relaxation, data, OneShotConfig(epochs=epochs, seed=seed))
    rng = random.Random(seed)
    inherited, alone = [], []
    for _ in range(genotypes):
        params = dict(relaxation.fixed)
        params.update({c.name: rng.choice(c.values) for c in relaxation.choices})
        inherited.append(inherited_accuracy(run, params, data))
        g = relaxation.genotype_of(params)
        result = train(g, data, TrainConfig(epochs=epochs, seed=seed, train_error=False,
                                            **relaxation.hparams))  # fmt: skip
        alone.append(result.val_accuracy)
    torch.set_num_threads(1)
    tau = kendalltau(inherited, alone).statistic
    return {
        "kendall_tau": round(float(tau), 3),
        "genotypes": genotypes,
        "random_mean": round(statistics.mean(alone), 4),
        "random_best_of_5": round(max(alone[:5]), 4),
        "random_best": round(max(alone), 4),
        "inherited_mean": round(statistics.mean(inherited), 4),
    }


def run_case(name: str, seed: int, epochs: int, trials: int, genotypes: int) -> dict[str, Any]:
    """Every measurement of one case and seed, in this process."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    case = CASES[name]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        space = _space(folder, case)
        storage = f"sqlite:///{folder / 'bench.db'}"
        artifacts = str(folder / "artifacts")
        out: dict[str, Any] = {"case": name, "seed": seed, "epochs": epochs}
        for relaxation in ("softmax", "sigmoid"):
            out[relaxation] = _oneshot(space, case["fix"], relaxation, seed, epochs, storage,
                                       artifacts)  # fmt: skip
        within = out["softmax"]["seconds"]
        out["trials"] = _trials(space, seed, epochs, trials, storage, artifacts, within)
        out["oneshot_in_trials"] = round(within / out["trials"]["seconds_per_trial"], 2)
        if genotypes:
            out["kendall"] = _kendall(space, case["fix"], seed, epochs, genotypes)
    return out


def _mean(rows: list[dict[str, Any]], *path: str) -> dict[str, float | None]:
    values = []
    for row in rows:
        v: Any = row
        for key in path:
            v = v.get(key) if isinstance(v, dict) else None
        if isinstance(v, int | float):
            values.append(float(v))
    if not values:
        return {"mean": None, "std": None}
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": round(statistics.mean(values), 4), "std": round(std, 4)}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per case: the figures averaged over seeds, then each seed's."""
    out: dict[str, Any] = {}
    for name in dict.fromkeys(r["case"] for r in rows):
        mine = [r for r in rows if r["case"] == name]
        figures = {
            "softmax_accuracy": ("softmax", "accuracy"),
            "sigmoid_accuracy": ("sigmoid", "accuracy"),
            "oneshot_seconds": ("softmax", "seconds"),
            "sigmoid_seconds": ("sigmoid", "seconds"),
            "softmax_skips": ("softmax", "skips"),
            "sigmoid_skips": ("sigmoid", "skips"),
            "supernet_accuracy": ("softmax", "supernet_accuracy"),
            "trials_best": ("trials", "best"),
            "trials_best_within_oneshot_time": ("trials", "best_within_oneshot_time"),
            "trials_best_of_first_5": ("trials", "best_of_first_5"),
            "seconds_per_trial": ("trials", "seconds_per_trial"),
            "oneshot_in_trials": ("oneshot_in_trials",),
        }
        summary: dict[str, Any] = {"seeds": len(mine), "epochs": mine[0]["epochs"],
                                   "fixed": CASES[name]["fix"]}  # fmt: skip
        for key, path in figures.items():
            m = _mean(mine, *path)
            summary[key] = m["mean"]
            summary[f"{key}_std"] = m["std"]
        gaps = [r["trials"]["best"] - r["softmax"]["accuracy"] for r in mine
                if r["softmax"]["accuracy"] is not None]  # fmt: skip
        summary["gap_to_trials_best_points"] = (
            round(100 * statistics.mean(gaps), 2) if gaps else None
        )
        summary["candidates"] = mine[0]["softmax"]["candidates"]
        summary["kendall"] = next((r["kendall"] for r in mine if "kendall" in r), None)
        summary["per_seed"] = mine
        out[name] = summary
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated")
    parser.add_argument("--seeds", type=int, help="per case (default: the case's)")
    parser.add_argument("--epochs", type=int, help="per trial and supernet (the case's)")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--genotypes", type=int, help="for the Kendall tau (the case's)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="1 seed, 2 epochs, 4 trials")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.epochs, args.trials, args.genotypes = 1, 2, 4, 4
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    for c in cases:
        if c not in CASES:
            parser.error(f"--cases: unknown case {c!r} (cases: {', '.join(CASES)})")
    start = time.perf_counter()
    jobs = []
    for c in cases:
        case = CASES[c]
        epochs = args.epochs or case["epochs"]
        genotypes = case["genotypes"] if args.genotypes is None else args.genotypes
        for seed in range(args.seeds or case["seeds"]):
            jobs.append((c, seed, epochs, args.trials, genotypes if seed == 0 else 0))
    # the longest first, so that the two processes end together
    jobs.sort(key=lambda j: -(j[2] * (1 + j[4] / 10)))
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=spawn) as pool:
        rows = list(pool.map(run_case, *zip(*jobs, strict=True)))
    result = {"trials": args.trials, **summarise(rows),
              "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
