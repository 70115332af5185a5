"""The samplers ``--sampler`` names, built for one worker of one search."""

from __future__ import annotations

import threading
import warnings
from typing import Any

import optuna

from nas_skip.samplers._proposals import Key
from nas_skip.searching._config import MAX_SEED, SearchConfig
from nas_skip.spaces import Space


def make_sampler(
    config: SearchConfig,
    worker: int = 0,
    offset: int = 0,
    space: Space | None = None,
    key: Key | None = None,
) -> optuna.samplers.BaseSampler:
    """The search's sampler; each parallel worker, and each rerun of a study (``offset``:
    the trials it already holds), gets its own seed stream.

    - ``local-search`` (the default for one objective): surrogate-guided local search
      with restarts, which never proposes a genotype isomorphic to one the study holds
      (``space`` gives it the genotypes); see ``scripts/bench_samplers.py`` for why.
    - ``tpe``: multivariate TPE over groups of parameters that occur together (the
      spaces are define-by-run: depth decides which layer parameters exist), with the
      constant liar so that parallel workers do not all propose the same point.
    - ``random``: uniform.
    - ``nsga2``: NSGA-II, for several objectives (population ``--population``).
    - ``evolution``: regularized evolution (Real et al. 2019), population and tournament
      from ``--population`` and ``--tournament``.

    ``key`` replaces local-search's comparison of genotypes (benchmarks serve the
    canonical hashes from a table rather than build every genotype again).
    """
    seed = None
    if config.seed is not None:  # kept in numpy's range, whatever the worker and offset
        seed = (config.seed + 7919 * worker + 104729 * offset) % (MAX_SEED + 1)
    name = config.sampler_name
    startup = min(10, max(3, config.trials // 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "tpe":
            return optuna.samplers.TPESampler(
                multivariate=True, group=True, constant_liar=True, seed=seed,
                n_startup_trials=startup,
            )  # fmt: skip
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if name == "nsga2":
            return _NSGAII(population_size=config.population, seed=seed)
    from nas_skip.samplers import LocalSearchSampler, RegularizedEvolutionSampler

    if name == "local-search":
        # a walk gives up after a quarter of a short search, 25 trials in a long one
        patience = min(25, max(10, config.trials // 4))
        return LocalSearchSampler(n_startup_trials=startup, patience=patience, seed=seed,
                                  space=space, key=key)  # fmt: skip
    return RegularizedEvolutionSampler(
        population_size=config.population, tournament_size=config.tournament, seed=seed
    )


class _NSGAII(optuna.samplers.NSGAIISampler):
    """Optuna's NSGA-II, picklable: Ray Tune pickles the searcher that holds it, and
    Optuna 5.1's genetic samplers keep a thread lock without ``__getstate__``
    ("cannot pickle '_thread.lock' object"); the lock is made anew on unpickling."""

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_thread_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._thread_lock = threading.Lock()


def make_pruner(config: SearchConfig) -> optuna.pruners.BasePruner:
    """Median pruning on per-epoch validation accuracy, from half the budget on."""
    if not config.prunes:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=config.prune_after)
