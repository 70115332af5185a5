"""The local backend: Optuna's ``study.optimize`` in this process or in N processes.

Every worker opens the same storage and runs the shared objective until the study holds
``trials`` finished trials. Workers are separate processes (spawned, one torch thread
each by default), so N workers use N cores; with one worker the search runs in this
process.
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import TrialState

from nas_skip.search._config import SearchConfig, SearchError
from nas_skip.search._objective import (
    Worker,
    all_finite,
    evaluate,
    failure_reason,
    local_reporter,
    sample,
)
from nas_skip.search._samplers import make_pruner, make_sampler
from nas_skip.search._storage import (
    FINISHED,
    active_workers,
    mark_stopped,
    open_study,
    worker_id,
)
from nas_skip.spaces import Space, load_space

Objective = Callable[[optuna.Trial], Any]


class _Budget:
    """Stops ``optimize`` once the study holds ``target`` finished trials, or when this
    worker has seen ``max_failures`` failures in a row (a broken setup, not bad luck).

    It wraps the objective rather than being an ``optimize`` callback: Optuna reads each
    trial back from the storage for its callbacks, a cost on every trial; the wrapper
    knows how the trial ends from what the objective returns or raises.
    """

    def __init__(self, target: int, max_failures: int, finished: int, alone: bool) -> None:
        self.target, self.max_failures = target, max_failures
        self.failures = 0
        # alone (one worker), the count is kept here rather than asked of the storage
        self.finished, self.alone = finished, alone

    def wrap(self, objective: Objective) -> Objective:
        def counted(trial: optuna.Trial) -> Any:
            state = TrialState.FAIL
            try:
                values = objective(trial)
                state = TrialState.COMPLETE if all_finite(values) else TrialState.FAIL
                return values  # Optuna tells FAIL for values that are not finite numbers
            except optuna.TrialPruned:
                state = TrialState.PRUNED
                raise
            except Exception as exc:  # one line; Optuna's own report is a traceback
                reason = trial.user_attrs.get("fail_reason")
                if reason is None:
                    reason = failure_reason(exc)
                    trial.set_user_attr("fail_reason", reason)
                sys.stderr.write(f"warning: trial {trial.number} failed: {reason}\n")
                raise
            finally:
                self._count(trial.study, state)

        return counted

    def _count(self, study: optuna.Study, state: TrialState) -> None:
        self.failures = self.failures + 1 if state == TrialState.FAIL else 0
        if self.failures >= self.max_failures:
            study.stop()  # first: a storage that fails below must not keep the loop going
        elsewhere = 0  # trials other workers may still finish
        if self.alone:
            self.finished += state in FINISHED
        else:  # other workers finish trials too (this one is still RUNNING in the storage)
            trials = study.get_trials(deepcopy=False)
            running = sum(t.state == TrialState.RUNNING for t in trials)
            done = sum(t.state in FINISHED for t in trials)
            self.finished = done + (state in FINISHED)
            # every other live worker that has not stopped may finish one more trial: the
            # one it runs, or, between two trials, the one it is about to start (counting
            # only RUNNING trials let two workers both start one more in that moment)
            elsewhere = max(running - 1, len(active_workers(study, trials) - {worker_id()}))
        # the trials running elsewhere may bring the study to its total: leave it to them
        # rather than start one more (a worker whose trial fails carries on)
        if self.finished + elsewhere >= self.target:
            study.stop()  # after this trial


def objective_for(worker: Worker) -> Objective:
    """The shared objective, as ``study.optimize`` calls it."""

    owner = worker_id()

    def objective(trial: optuna.Trial) -> Any:
        trial.set_user_attr("worker", owner)  # a rerun fails our RUNNING trials if we die
        values = evaluate(trial, worker, sample(trial, worker.space),
                          local_reporter(trial, worker.config.prunes))  # fmt: skip
        return values[0] if len(values) == 1 else values

    return objective


def optimize(config: SearchConfig, space: Space, worker_index: int = 0,
             objective: Objective | None = None) -> int:  # fmt: skip
    """Run trials in this process until the study reaches ``config.trials`` finished.

    Returns:
        The number of consecutive failures this worker ended with (0 when it ended well).
    """
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failures: one line from _Budget
    handle = open_study(config, space.name, space.dataset, config.space, None, make_pruner(config))
    # a rerun with the same seed must not propose the same points again: offset the seed
    trials = len(handle.study.get_trials())
    handle.study.sampler = make_sampler(config, worker_index, trials, space)
    worker = Worker(config, space, handle)
    finished = handle.study._storage.get_n_trials(handle.study._study_id, FINISHED)
    if finished >= config.trials:
        return 0
    budget = _Budget(config.trials, config.max_failures, finished, alone=config.workers == 1)
    try:
        handle.study.optimize(
            budget.wrap(objective or objective_for(worker)),
            timeout=config.timeout,
            catch=(Exception,),
            gc_after_trial=False,
        )
    finally:
        if config.workers > 1:  # the others no longer wait for a trial from this one
            mark_stopped(handle.study)
    return budget.failures


def _worker_main(config: SearchConfig, index: int, objective: Objective | None) -> None:
    # a fresh process: load the space again (specs hold no live state)
    space = load_space(config.space, config.dataset, config.train)
    try:
        optimize(config, space, index, objective)
    except KeyboardInterrupt:
        pass  # the parent reports the interruption; Optuna has marked the trial FAIL


def run_local(config: SearchConfig, space: Space, objective: Objective | None = None) -> None:
    """Run the search with ``config.workers`` workers.

    ``objective`` replaces the shared one (benchmarks measure the framework with a trivial
    objective); it must be picklable by reference for several workers.

    Raises:
        KeyboardInterrupt: Ctrl-C; the running trials are marked FAIL by Optuna.
        SearchError: every trial of a worker failed (a broken setup).
    """
    if config.workers == 1:
        failures = optimize(config, space, 0, objective)
    else:
        ctx = multiprocessing.get_context("spawn")  # no fork after torch and threads start
        procs = [ctx.Process(target=_worker_main, args=(config, i, objective), daemon=False)
                 for i in range(config.workers)]  # fmt: skip
        for p in procs:
            p.start()
        try:
            for p in procs:
                p.join()
        except KeyboardInterrupt:
            for p in procs:
                p.join(timeout=30)
                if p.is_alive():
                    p.terminate()
            raise
        failures = 0
        if all(p.exitcode not in (0, None) for p in procs):
            raise SearchError(f"--workers {config.workers}: every worker process failed")
    if failures >= config.max_failures:
        raise SearchError(
            f"{failures} trials failed in a row; see the trials' fail_reason "
            "(nas-skip dashboard) or run one with nas-skip train"
        )
