"""The sampler leaderboard: every sampler nas-skip offers, replayed on NAS-Bench-201.

For each sampler, each of NAS-Bench-201's three tables (CIFAR-10, CIFAR-100,
ImageNet16-120) and each seed, one study of ``--evaluations`` trials (300) runs with the
``nb201`` space, and is scored after 100 and after 300 trials:

- the table's *mean* validation accuracy (over its seeds) of the cell the study picked
  as best (its best trial: the highest value seen, as ``nas-skip export`` picks);
- whether that cell is in the table's top 0.1% (the 16 best cells by mean);
- how many trials it took to first evaluate a cell of the top 1% (the median over seeds;
  a run that never gets there counts as never);
- the share of its trials that repeated a cell isomorphic to an earlier one.

A trial is one evaluation, duplicates included, as in a search: its value is one seed of
its cell's entry, drawn with the trial's seed (``nb201-*`` evaluators); a cell isomorphic
to one the study already evaluated (the same canonical hash) reuses that value. The
samplers are made as ``nas-skip search`` makes them (``make_sampler``, the space's own
parameters). Every sampler's behaviour is
independent of the budget, so the first 100 trials of a 300-trial study are what a
100-trial study does: one study per run serves both columns.

Runs in processes (``--jobs``, default all cores) on in-memory studies: no CLI, no
storage, no drawings. Before them, one real ``nas-skip search`` of 100 tabular trials
(SQLite, drawings, notes) is timed on one core. Prints one JSON line; ``--markdown`` adds
the README table.
"""

from __future__ import annotations

import os

# one BLAS thread per process: the runs are parallel processes already (set before numpy)
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import multiprocessing  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import optuna  # noqa: E402

from nas_skip.evaluators._nb201 import TABLES, Table, cell_key  # noqa: E402
from nas_skip.genotype import Genotype  # noqa: E402
from nas_skip.searching import SearchConfig  # noqa: E402
from nas_skip.searching._samplers import make_sampler  # noqa: E402
from nas_skip.spaces import _nb201 as nb201  # noqa: E402
from nas_skip.spaces import load_space  # noqa: E402

#: the samplers of the leaderboard, by nas-skip's names: ``tpe`` is Optuna 5's TPESampler
#: (multivariate, constant liar; on this static space its trials equal those of
#: ``TPESampler(seed=...)``'s defaults), ``nsga2`` Optuna's NSGAIISampler (population 20)
SAMPLERS = ("local-search", "tpe", "evolution", "nsga2", "random")
DATASETS = tuple(TABLES)
BUDGETS = (100, 300)
#: published anchors, CIFAR-10 only (Dong & Yang 2020, NAS-Bench-201: validation accuracy
#: of the final architecture after about 12,000 s of simulated search time)
ANCHORS = {"REA (paper)": 91.19, "REINFORCE (paper)": 91.09, "random (paper)": 90.93,
           "BOHB (paper)": 90.82}  # fmt: skip


@dataclass(frozen=True)
class Task:
    sampler: str
    dataset: str
    seed: int
    evaluations: int


# --- per process ---------------------------------------------------------------------------
_CLASSES: dict[str, str] = {}  # cell key ("333132") -> canonical hash, made in the parent


def hash_classes(jobs: int) -> dict[str, str]:
    """The canonical hash of every cell's genotype, by cell key (in ``jobs`` processes)."""
    cells = list(itertools.product(nb201.NB201_OPS, repeat=len(nb201.EDGES)))
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        hashes = pool.map(_hash_of, cells, chunksize=256)
    return {cell_key(c): h for c, h in zip(cells, hashes, strict=True)}


def _hash_of(cell: nb201.Cell) -> str:
    return Genotype.from_json(nb201.network_doc(cell, (3, 32, 32), 10)).canonical_hash()


def run(task: Task) -> dict[str, Any]:
    """One study; its scores after each budget."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    table = Table(task.dataset)
    space = load_space("nb201", TABLES[task.dataset][1])
    ops = tuple(space.spec.skeleton["ops"])
    config = SearchConfig(space="nb201", evaluator=f"nb201-{task.dataset}",
                          trials=task.evaluations, seed=task.seed,
                          sampler=task.sampler)  # fmt: skip

    def key(params: dict[str, Any]) -> str:  # what local-search compares: the hash
        try:
            return _CLASSES[cell_key(nb201.cell_from_params(params, ops))]
        except nb201.CellError:
            return json.dumps(sorted(params.items()))

    sampler = make_sampler(config, space=space, key=key)
    seen: dict[str, float] = {}  # hash -> value: dedup as the search does it
    cells: list[nb201.Cell] = []

    def objective(trial: optuna.Trial) -> float:
        space.ask(trial)  # the space's own parameters, asked as a search asks them
        cell = nb201.cell_from_params(trial.params, ops)
        cells.append(cell)
        h = _CLASSES[cell_key(cell)]
        if h not in seen:
            seen[h] = table.draw(cell, task.seed + trial.number)[0]
        return seen[h]

    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=task.evaluations)
    values = [t.value for t in study.trials]
    means = table.means()
    ranked = sorted(means.values(), reverse=True)
    top01 = ranked[math.ceil(0.001 * len(ranked)) - 1]
    top1 = ranked[math.ceil(0.01 * len(ranked)) - 1]
    out = {}
    for budget in BUDGETS:
        if budget > task.evaluations:
            continue
        best = int(np.argmax(values[:budget]))  # the first of equal values, as Optuna
        picked = means[cell_key(cells[best])]
        reached = next((i + 1 for i, c in enumerate(cells[:budget]) if means[cell_key(c)] >= top1),
                       None)  # fmt: skip
        distinct = len({_CLASSES[cell_key(c)] for c in cells[:budget]})
        out[str(budget)] = {"mean": picked, "top": picked >= top01, "reach": reached,
                            "duplicates": 1 - distinct / budget}  # fmt: skip
    return out


def _init(classes: dict[str, str]) -> None:
    _CLASSES.update(classes)


# --- the leaderboard -----------------------------------------------------------------------
def summarise(results: list[tuple[Task, dict[str, Any]]]) -> dict[str, Any]:
    board: dict[str, Any] = {}
    for sampler, dataset in itertools.product(SAMPLERS, DATASETS):
        runs = [r for t, r in results if t.sampler == sampler and t.dataset == dataset]
        if not runs:
            continue
        row = {}
        for budget in map(str, BUDGETS):
            scores = [r[budget] for r in runs if budget in r]
            if not scores:
                continue
            means = np.array([s["mean"] for s in scores])
            reach = [s["reach"] if s["reach"] is not None else math.inf for s in scores]
            median = float(np.median(reach))
            row[budget] = {
                "mean": round(float(means.mean()), 3),
                "std": round(float(means.std()), 3),
                "top0.1%": round(float(np.mean([s["top"] for s in scores])), 3),
                "median_evals_to_top1%": median if math.isfinite(median) else None,
                "duplicates": round(float(np.mean([s["duplicates"] for s in scores])), 3),
            }
        board.setdefault(sampler, {})[dataset] = row
    return board


def markdown(board: dict[str, Any], seeds: int) -> str:
    head = ["sampler"] + [f"{d} @{b}" for b in BUDGETS for d in DATASETS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for sampler, rows in board.items():
        cells = []
        for budget, dataset in itertools.product(map(str, BUDGETS), DATASETS):
            r = rows.get(dataset, {}).get(budget)
            cells.append("" if r is None else f"{r['mean']:.2f} ± {r['std']:.2f} "
                         f"({100 * r['top0.1%']:.0f}%)")  # fmt: skip
        lines.append(f"| {sampler} | " + " | ".join(cells) + " |")
    for name, value in ANCHORS.items():
        cells = [f"{value:.2f}" if (b, d) == (100, "cifar10") else ""
                 for b in BUDGETS for d in DATASETS]  # fmt: skip
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append(f"\n{seeds} seeds; mean ± std of the picked cell's mean validation accuracy "
                 "(% of runs in the top 0.1%)")  # fmt: skip
    return "\n".join(lines)


def cli_seconds(trials: int = 100) -> float:
    """Wall time of ``nas-skip search`` of ``trials`` tabular trials on one core (start-up,
    SQLite, drawings and notes included), in a fresh folder."""
    import shutil
    import subprocess
    import tempfile

    exe = shutil.which("nas-skip") or str(Path(sys.executable).parent / "nas-skip")
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    with tempfile.TemporaryDirectory() as tmp:
        command = [*pin, exe, "search", "--space", "nb201", "--evaluator", "nb201-cifar10",
                   "--trials", str(trials), "--seed", "0"]  # fmt: skip
        started = time.perf_counter()
        subprocess.run(command, cwd=tmp, check=True, capture_output=True)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100, help="runs per sampler and dataset")
    parser.add_argument("--evaluations", type=int, default=max(BUDGETS))
    parser.add_argument("--samplers", default=",".join(SAMPLERS))
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--markdown", action="store_true", help="also print the README table")
    parser.add_argument("--no-cli", action="store_true", help="skip the timed CLI search")
    args = parser.parse_args()
    cli = None if args.no_cli else round(cli_seconds(), 1)  # alone: nothing else runs yet
    started = time.perf_counter()
    classes = hash_classes(args.jobs)
    hashed = time.perf_counter() - started
    tasks = [Task(s, d, seed, args.evaluations)
             for s in args.samplers.split(",") for d in args.datasets.split(",")
             for seed in range(args.seeds)]  # fmt: skip
    # the slowest samplers first, so that the pool does not end on one long run
    tasks.sort(key=lambda t: t.sampler != "tpe")
    results: list[tuple[Task, dict[str, Any]]] = []
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(args.jobs, initializer=_init, initargs=(classes,)) as pool:
        for i, out in enumerate(pool.imap(run, tasks, chunksize=1)):
            results.append((tasks[i], out))
            print(f"\r{i + 1}/{len(tasks)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    board = summarise(results)
    unique = len({nb201.unique_str(c) for c in itertools.product(nb201.NB201_OPS, repeat=6)})
    print(json.dumps({
        "bench": "samplers", "seeds": args.seeds, "evaluations": args.evaluations,
        "cells": len(classes), "distinct_hashes": len(set(classes.values())),
        "nb201_unique_cells": unique, "seconds": round(time.perf_counter() - started, 1),
        "hash_seconds": round(hashed, 1), "cli_100_trials_one_core_seconds": cli,
        "leaderboard": board,
    }))  # fmt: skip
    if args.markdown:
        print(markdown(board, args.seeds))


if __name__ == "__main__":
    main()
