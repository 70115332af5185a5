"""Benchmark the search frameworks' cost: what nas-skip adds around a trial.

Prints one JSON line:

- ``objective_ratio_N`` (in ``big_study``, for studies of N = 0, 500, 2,000 trials): what a
  user's trial costs in nas-skip beyond plain Optuna. nas-skip's own objective, run by
  ``search()`` (sampling, validation, hash, dedup, attributes, the topology drawing, the
  dashboard note, the progress bar) with training replaced by a stub that returns at
  once, over plain ``study.optimize`` whose objective samples the same space, on the
  same storage; interleaved in rotated order, ratios paired per repetition. Goal <= 1.5
  at 0 and at 2,000. See ``scripts/bench_big_study.py``, which also runs alone.
- ``framework_overhead_ratio``: the local backend's wrapper alone (budget, stale-trial
  and dead-worker checks) around a trivial objective (one float) over plain
  ``study.optimize`` with the same objective on the same kind of storage (a SQLite file
  opened as nas-skip opens it): per-trial time (median gap between trial completions),
  interleaved repetitions, ratios paired. Goal <= 1.2. ``framework_wall_overhead_ratio``
  is the same from wall time, start-up included. ``sqlite_wal_speedup``: plain
  ``study.optimize`` on Optuna's default SQLite settings over the same on nas-skip's
  (write-ahead log).
- ``ray_overhead_ratio`` / ``ray_ms_per_trial``: the Ray backend with a trivial trainable
  over plain Ray Tune + OptunaSearch with actor reuse and the same logging settings as
  nas-skip's (Tune's per-trial result logs off; the study holds the results), ratios
  paired per repetition. Goal <= 1.2, <= 100 ms. ``ray_overhead_ratio_vs_logs`` compares
  with plain Ray Tune on its defaults (see ``scripts/bench_search_ray.py``).
- ``local_speedup_2_workers`` / ``ray_speedup_2_workers``: throughput (trials per second
  once each worker has finished its first trial) of 2 workers over 1 on a CPU-bound
  objective (pure Python, about 1 s a trial). Goal >= 1.8. ``*_wall_speedup_*`` is the
  wall-clock ratio, which also counts starting worker processes or Ray actors.
- ``dedup_saved``: the fraction of trainings that dedup saved in a search of a small space.

- ``big_study``: besides ``objective_ratio_N``, the wrapper's overhead and start-up when
  the study already holds 0, 500, 2,000 and 10,000 trials.

- ``cluster_*`` and ``node_death``: the Ray backend on a real cluster of 1, 2 and 3 nodes
  on this machine, and a node killed mid-search (see ``scripts/bench_search_cluster.py``,
  which also runs alone).

``--quick`` runs fewer trials (noisier) and big studies up to 2,000; ``--no-ray`` leaves
Ray (and the cluster) out; ``--no-cluster`` the cluster; ``--no-big`` the big studies.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna

from nas_skip.searching import SearchConfig, search
from nas_skip.searching._local import run_local
from nas_skip.searching._storage import make_storage, open_study
from nas_skip.spaces import load_space

optuna.logging.set_verbosity(optuna.logging.ERROR)


def steady_seconds_per_trial(storage: str, name: str) -> float:
    """Median time between consecutive trial completions: the per-trial cost once running
    (process start-up and the first trial's warm-up left out)."""
    study = optuna.load_study(study_name=name, storage=storage)
    ends = sorted(t.datetime_complete for t in study.trials if t.datetime_complete)
    gaps = [(b - a).total_seconds() for a, b in zip(ends[1:], ends[2:], strict=False)]
    return statistics.median(gaps)


def throughput(storage: str, name: str, workers: int) -> float:
    """Trials per second once every worker has finished its first trial (its warm-up: a
    process or Ray actor starting, imports, first-call costs)."""
    study = optuna.load_study(study_name=name, storage=storage)
    ends = sorted(t.datetime_complete for t in study.trials if t.datetime_complete)
    return (len(ends) - workers) / (ends[-1] - ends[workers - 1]).total_seconds()


def trivial(trial: optuna.Trial) -> float:
    return trial.suggest_float("x", 0.0, 1.0)


def cpu_bound(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", 0.0, 1.0)
    total = 0.0
    for i in range(16_000_000):  # pure Python: one core, no threads, no I/O
        total += (i % 7) * x
    return total % 1.0


def _config(tmp: Path, name: str, trials: int, **kw: Any) -> SearchConfig:
    return SearchConfig(space="deep_mlp", trials=trials, study=name, seed=0,
                        storage=f"sqlite:///{tmp / (name + '.db')}",
                        artifacts=str(tmp / "artifacts"), **kw)  # fmt: skip


def local_run(tmp: Path, name: str, trials: int, objective: Any, workers: int = 1) -> float:
    """Wall seconds per trial of nas-skip's local backend with ``objective``."""
    config = _config(tmp, name, trials, workers=workers, sampler="random", pruning=False)
    space = load_space("deep_mlp")
    open_study(config, space.name, space.dataset, config.space)  # as search() does first
    start = time.perf_counter()
    run_local(config, space, objective)
    return (time.perf_counter() - start) / trials


def plain_run(tmp: Path, name: str, trials: int, tuned: bool = True) -> float:
    """Seconds per trial of plain ``study.optimize`` on a SQLite file: opened as nas-skip
    opens it (write-ahead log), or with Optuna's defaults (``tuned=False``)."""
    url = f"sqlite:///{tmp / (name + '.db')}"
    study = optuna.create_study(storage=make_storage(url) if tuned else url, study_name=name,
                                sampler=optuna.samplers.RandomSampler(seed=0),
                                direction="maximize")  # fmt: skip
    start = time.perf_counter()
    study.optimize(trivial, n_trials=trials)
    return (time.perf_counter() - start) / trials


def bench_local_overhead(tmp: Path, trials: int, reps: int) -> dict[str, Any]:
    ours, plain = [], []
    for r in range(reps):  # interleaved, the order rotated: both see the same machine state
        runs = [lambda r=r: plain.append(plain_run(tmp, f"plain{r}", trials)),
                lambda r=r: plain_run(tmp, f"default{r}", trials, tuned=False),
                lambda r=r: ours.append(local_run(tmp, f"ours{r}", trials, trivial))]  # fmt: skip
        for run in runs[r % 3 :] + runs[: r % 3]:
            run()

    def steady(prefix: str) -> list[float]:
        return [steady_seconds_per_trial(f"sqlite:///{tmp / f'{prefix}{r}.db'}", f"{prefix}{r}")
                for r in range(reps)]  # fmt: skip

    so, sp, sd = steady("ours"), steady("plain"), steady("default")
    paired = [a / b for a, b in zip(so, sp, strict=True)]
    wall = [a / b for a, b in zip(ours, plain, strict=True)]  # start-up included
    median = statistics.median
    return {"framework_ms_per_trial": round(1000 * median(so), 2),
            "plain_optuna_ms_per_trial": round(1000 * median(sp), 2),
            "framework_overhead_ratio": round(median(paired), 3),
            "framework_overhead_ratio_per_rep": [round(x, 3) for x in paired],
            "framework_wall_overhead_ratio": round(median(wall), 3),
            "plain_optuna_default_sqlite_ms_per_trial": round(1000 * median(sd), 2),
            "sqlite_wal_speedup": round(median(sd) / median(sp), 3)}  # fmt: skip


def bench_local_speedup(tmp: Path, trials: int) -> dict[str, float]:
    wall_one = local_run(tmp, "w1", trials, cpu_bound, workers=1)
    wall_two = local_run(tmp, "w2", trials, cpu_bound, workers=2)
    one = throughput(f"sqlite:///{tmp / 'w1.db'}", "w1", 1)
    two = throughput(f"sqlite:///{tmp / 'w2.db'}", "w2", 2)
    return {"local_trials_per_s_1_worker": round(one, 3),
            "local_trials_per_s_2_workers": round(two, 3),
            "local_speedup_2_workers": round(two / one, 3),
            "local_wall_speedup_2_workers": round(wall_one / wall_two, 3)}  # fmt: skip


def bench_dedup(tmp: Path, trials: int) -> dict[str, float]:
    space = tmp / "small.yaml"
    space.write_text(
        "name: small\ndomain: vector\ndataset: digits\nfamily: chain\n"
        "skeleton: {depth: {low: 1, high: 2}, width: 8, ops: [linear_relu], hop_window: 1,"
        " kinds: [none, add]}\ntrain: {lr: 0.05, batch_size: 256}\n"
    )
    config = SearchConfig(space=str(space), trials=trials, epochs=2, seed=0, pruning=False,
                          sampler="tpe", storage=f"sqlite:///{tmp / 'dedup.db'}",
                          artifacts=str(tmp / "artifacts"))  # fmt: skip
    result = search(config, progress=False)
    return {"dedup_trials": result.finished, "dedup_duplicates": result.duplicates,
            "dedup_saved": round(result.duplicates / max(1, result.finished), 3)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--no-big", action="store_true")
    parser.add_argument("--no-cluster", action="store_true")
    args = parser.parse_args()
    trials = 20 if args.quick else 60
    out: dict[str, Any] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        out |= bench_local_overhead(tmp, trials, reps=2 if args.quick else 3)
        out |= bench_local_speedup(tmp, 6 if args.quick else 24)
        out |= bench_dedup(tmp, 10 if args.quick else 20)
        if not args.no_ray:
            from bench_search_ray import bench_ray  # scripts/ is on the path

            out |= bench_ray(tmp, trials, quick=args.quick)
        if not args.no_ray and not args.no_cluster:
            from bench_search_cluster import bench_cluster

            out |= bench_cluster(tmp, quick=args.quick)
    if not args.no_big:
        from bench_big_study import bench_big_study

        sizes = [0, 500, 2000] if args.quick else [0, 500, 2000, 10000]
        out["big_study"] = bench_big_study(sizes, 15 if args.quick else 30, 2 if args.quick else 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
