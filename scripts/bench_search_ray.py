"""The Ray half of ``bench_search.py``: nas-skip's Ray backend against plain Ray Tune.

Both sides run the same trivial work on the same local Ray (loopback only, started once):
one define-by-run parameter asked through OptunaSearch on a SQLite study, a trainable
that reports it once, ``reuse_actors=True``, one trial at a time. nas-skip's side is its
real backend (searcher, budget, owner records, storage checks) with a one-parameter space
and a trivial trainable in place of training. Plain Ray Tune runs like for like: with
Tune's per-trial result logs (JSON, CSV, TensorBoard) off, as nas-skip runs it
(``ray_overhead_ratio``), and once more with Tune's defaults, logs on
(``ray_overhead_ratio_vs_logs``: what turning them off saves). Each repetition runs the
three in a rotated order; a ratio is the median of the ratios within a repetition.
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from pathlib import Path
from typing import Any

import optuna

from nas_skip.searching import SearchConfig
from nas_skip.searching._ray import run_ray
from nas_skip.searching._storage import make_storage, open_study
from nas_skip.spaces import load_space

ONE_PARAM = """name: one
domain: vector
dataset: digits
family: chain
skeleton: {depth: 1, width: 8, ops: [linear_relu], hop_window: 1, kinds: [none, add]}
train: {lr: 0.05, batch_size: 256}
"""


def trivial_trainable(trial_config: dict[str, Any], search: SearchConfig) -> None:
    from ray import tune

    tune.report({"epoch": search.epochs, "accuracy": 0.5, "final": True, "duplicate": False})


def busy_trainable(trial_config: dict[str, Any], search: SearchConfig) -> None:
    from ray import tune

    total = 0
    for i in range(16_000_000):  # pure Python, as bench_search's cpu_bound
        total += i % 7
    tune.report({"epoch": search.epochs, "accuracy": (total % 10) / 10, "final": True,
                 "duplicate": False})  # fmt: skip


def ours(tmp: Path, name: str, trials: int, trainable: Any, workers: int = 1) -> float:
    space_file = tmp / "one.yaml"
    space_file.write_text(ONE_PARAM)
    config = SearchConfig(space=str(space_file), trials=trials, epochs=1, study=name, seed=0,
                          sampler="random", pruning=False, workers=workers, keep=0,
                          storage=f"sqlite:///{tmp / (name + '.db')}",
                          artifacts=str(tmp / "artifacts"))  # fmt: skip
    space = load_space(config.space)
    open_study(config, space.name, space.dataset, config.space)
    start = time.perf_counter()
    run_ray(config, space, trainable)
    return (time.perf_counter() - start) / trials


def plain_space(trial: optuna.Trial) -> None:  # module level: OptunaSearch pickles it
    trial.suggest_categorical("edge", ["none", "add"])


def plain_trainable(config: dict[str, Any]) -> None:
    from ray import tune

    tune.report({"accuracy": 0.5})


def plain(tmp: Path, name: str, trials: int, logs: bool = True) -> float:
    """Stock Ray Tune + OptunaSearch; ``logs=False`` turns off Tune's per-trial result logs
    (JSON, CSV, TensorBoard), as nas-skip's backend does."""
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    storage = make_storage(f"sqlite:///{tmp / (name + '.db')}")
    sampler = optuna.samplers.RandomSampler(seed=0)
    searcher = OptunaSearch(space=plain_space, metric="accuracy", mode="max", storage=storage,
                            study_name=name, sampler=sampler)  # fmt: skip
    tuner = tune.Tuner(
        plain_trainable,
        tune_config=tune.TuneConfig(search_alg=searcher, num_samples=trials,
                                    max_concurrent_trials=1, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(tmp / "ray"), name=name, verbose=0),
    )  # fmt: skip
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "0" if logs else "1"
    try:
        start = time.perf_counter()
        tuner.fit()
        return (time.perf_counter() - start) / trials
    finally:
        os.environ.pop("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS")


def bench_ray(tmp: Path, trials: int, quick: bool) -> dict[str, Any]:
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # loopback only, before import
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    import ray

    # plain Ray Tune without its result logs warns, at the end, that it found none to read
    logging.getLogger("ray.tune").setLevel(logging.ERROR)
    ray.init(address="local", include_dashboard=False, num_cpus=os.cpu_count(),
             log_to_driver=False)  # fmt: skip
    reps = 2 if quick else 3
    kinds = ["quiet", "ours", "plain"]
    try:
        for r in range(reps):  # interleaved, the order rotated, as the machine's load changes
            for kind in kinds[r % 3 :] + kinds[: r % 3]:
                if kind == "ours":
                    ours(tmp, f"rours{r}", trials, trivial_trainable)
                else:
                    plain(tmp, f"r{kind}{r}", trials, logs=kind == "plain")
        n = 6 if quick else 24
        wall_one = ours(tmp, "rw1", n, busy_trainable, workers=1)
        wall_two = ours(tmp, "rw2", n, busy_trainable, workers=2)
    finally:
        ray.shutdown()
    m = [steady(tmp, f"rours{r}") for r in range(reps)]
    q = [steady(tmp, f"rquiet{r}") for r in range(reps)]
    b = [steady(tmp, f"rplain{r}") for r in range(reps)]
    like = [x / y for x, y in zip(m, q, strict=True)]  # paired within a repetition
    logged = [x / y for x, y in zip(m, b, strict=True)]
    one, two = rate(tmp, "rw1", 1), rate(tmp, "rw2", 2)
    return {"ray_ms_per_trial": round(1000 * statistics.median(m), 1),
            "plain_ray_ms_per_trial": round(1000 * statistics.median(q), 1),
            "ray_overhead_ratio": round(statistics.median(like), 3),
            "ray_overhead_ratio_per_rep": [round(x, 3) for x in like],
            "plain_ray_with_logs_ms_per_trial": round(1000 * statistics.median(b), 1),
            "ray_overhead_ratio_vs_logs": round(statistics.median(logged), 3),
            "ray_trials_per_s_1_worker": round(one, 3),
            "ray_trials_per_s_2_workers": round(two, 3),
            "ray_speedup_2_workers": round(two / one, 3),
            "ray_wall_speedup_2_workers": round(wall_one / wall_two, 3)}  # fmt: skip


def steady(tmp: Path, name: str) -> float:
    from bench_search import steady_seconds_per_trial

    return steady_seconds_per_trial(f"sqlite:///{tmp / (name + '.db')}", name)


def rate(tmp: Path, name: str, workers: int) -> float:
    from bench_search import throughput

    return throughput(f"sqlite:///{tmp / (name + '.db')}", name, workers)
