"""The local backend: Optuna's ``study.optimize`` in this process or in N processes.

Every worker opens the same storage and runs the shared objective until the study holds
``trials`` finished trials. Workers are separate processes (spawned, one torch thread
each by default), so N workers use N cores; with one worker the search runs in this
process.
"""

from __future__ import annotations

import errno
import multiprocessing
import multiprocessing.connection
import multiprocessing.process
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import TrialState

from nas_skip.errors import NasSkipError
from nas_skip.searching._config import SearchConfig, SearchError
from nas_skip.searching._devices import worker_device
from nas_skip.searching._lock import StudyLock
from nas_skip.searching._objective import (
    Worker,
    all_finite,
    evaluate,
    failure_reason,
    local_reporter,
    sample,
)
from nas_skip.searching._queries import StudyQueries
from nas_skip.searching._samplers import make_pruner, make_sampler
from nas_skip.searching._storage import (
    FINISHED,
    fail_stale_trials,
    fail_trials_of,
    open_study,
    storage_failure,
    worker_id,
)
from nas_skip.spaces import Space, load_space

Objective = Callable[[optuna.Trial], Any]
#: write errors that the next trial would meet too: a full disk, a quota, a read-only one
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


class _Budget:
    """Stops ``optimize`` once the study holds ``target`` finished trials, whichever
    processes or machines finished them, or when this worker has seen ``max_failures``
    failures in a row (a broken setup, not bad luck).

    Before its first trial and after each, it counts the study's finished and running
    trials in the storage (two small queries, whatever the study's size): the trials
    running elsewhere may bring the study to its target, so it starts no more once
    finished + running reaches it. The count and the next trial's creation happen under
    the study's lock (:class:`StudyLock`), taken before counting and given back once the
    trial exists: two workers finishing at once cannot both see room for the last trial,
    and the study ends with exactly its target (a failed trial is replaced). A running
    trial whose worker died on this host (a kill -9, the kernel's out-of-memory killer) is
    failed here, with the reason, rather than counted as running: the budget is finished
    by the live workers.

    It wraps the objective rather than being an ``optimize`` callback: Optuna reads each
    trial back from the storage for its callbacks, a cost on every trial; the wrapper
    knows how the trial ends from what the objective returns or raises.
    """

    def __init__(self, target: int, max_failures: int, queries: StudyQueries,
                 lock: StudyLock | None = None) -> None:  # fmt: skip
        self.target, self.max_failures, self.queries = target, max_failures, queries
        self.lock = lock
        self.failures = 0
        self.disk_full: tuple[int, OSError] | None = None  # (trial, error) that stopped it

    def reached(self) -> bool:
        """Whether the study holds its target of finished trials."""
        states = self.queries.states()
        return sum(states[s] for s in FINISHED) >= self.target

    def start(self) -> bool:
        """Take the lock and say whether this worker may start a trial (it gives the lock
        back when the trial exists, or when ``optimize`` ends: see :meth:`release`)."""
        self._acquire()
        return not self._full(finished=0, running=0)

    def _acquire(self) -> None:
        if self.lock is not None:
            self.lock.acquire()

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()

    def _full(self, finished: int, running: int) -> bool:
        """Whether the study's finished + running elsewhere, counted now, reaches the target;
        ``finished`` and ``running`` correct the stored counts for this worker's own trial."""
        states = self.queries.states()
        done = sum(states[s] for s in FINISHED) + finished
        elsewhere = states[TrialState.RUNNING] + running
        if elsewhere > 0:  # dead workers' trials are failed, not waited for
            elsewhere -= fail_stale_trials(self.queries.study, grace=None)
        return done + elsewhere >= self.target

    def wrap(self, objective: Objective) -> Objective:
        owner = worker_id()

        def counted(trial: optuna.Trial) -> Any:
            trial.set_user_attr("worker", owner)  # its trials fail if this process dies
            self.release()  # the trial exists: another worker's count sees it running
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
                if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
                    self.disk_full = (trial.number, exc)
                    trial.study.stop()  # no later trial could write its files either
                raise
            finally:
                self._count(trial, state)

        return counted

    def _count(self, trial: optuna.Trial, state: TrialState) -> None:
        study = trial.study
        self.failures = self.failures + 1 if state == TrialState.FAIL else 0
        if self.failures >= self.max_failures:
            study.stop()  # first: a storage that fails below must not keep the loop going
        self._acquire()  # held until the next trial exists or optimize ends
        # this trial is still RUNNING in the storage
        if self._full(finished=int(state in FINISHED), running=-1):
            study.stop()  # after this trial


def objective_for(worker: Worker) -> Objective:
    """The shared objective, as ``study.optimize`` calls it."""

    def objective(trial: optuna.Trial) -> Any:
        values = evaluate(trial, worker, sample(trial, worker.space),
                          local_reporter(trial, worker.config.prunes,
                                         worker.config.objectives[0]))  # fmt: skip
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
    _STUDIES.append(handle.study)
    queries = StudyQueries(handle.study)
    # a rerun with the same seed must not propose the same points again: offset the seed
    trials = sum(queries.states().values())
    handle.study.sampler = make_sampler(config, worker_index, trials, space)
    worker = Worker(config, space, handle, worker_device(config.device, worker_index))
    lock = StudyLock(handle.study, handle.storage_url)
    budget = _Budget(config.trials, config.max_failures, queries, lock)
    try:
        if not budget.start():
            return 0
        handle.study.optimize(
            budget.wrap(objective or objective_for(worker)),
            timeout=config.timeout,
            catch=(Exception,),
            gc_after_trial=False,
        )
    except Exception as exc:  # not the objective's (caught above): the storage's, a sampler's
        failed = _fail_own_trials(handle.study, trials, config.workers == 1, exc)
        what = None if isinstance(exc, NasSkipError) else storage_failure(exc)
        if what is None:
            raise
        raise SearchError(
            f"--storage {handle.storage_url}: cannot write ({what}); the search stopped{failed}"
        ) from None
    finally:
        budget.release()
    if budget.disk_full is not None:
        number, error = budget.disk_full
        raise SearchError(
            f"trial {number} failed: {error.strerror} (on the disk of --artifacts "
            f"{handle.artifact_dir} or of --storage {handle.storage_url}); the search stopped"
        )
    return budget.failures


def _fail_own_trials(study: optuna.Study, before: int, alone: bool, exc: BaseException) -> str:
    """Mark FAIL, with a reason, the trials this process left RUNNING when ``optimize``
    itself failed (a full disk under the storage: a trial was asked, or told, in vain).

    They are the trials that name this worker and, when it is the search's only worker,
    those it started (numbers from ``before`` on) before it could name itself. A storage
    that takes no write at all keeps them RUNNING: the next run fails them, as the
    trials of a dead worker.

    Returns:
        What became of them, for the error line: ``"; trial 3 marked FAIL"``, ``"; trial 3
        left RUNNING (the next run marks it FAIL)"``, or "" for none.
    """
    reason = f"the search stopped: {storage_failure(exc) or failure_reason(exc)}"
    marked, left = [], []
    try:
        running = StudyQueries(study).running()
    except Exception:  # noqa: S112 - the storage reads nothing either; the rerun fails them
        return ""
    for t in running:
        worker = t.user_attrs.get("worker")
        if worker == worker_id() or (alone and worker is None and t.number >= before):
            try:  # the reason may not fit where the state change still does
                study._storage.set_trial_user_attr(t._trial_id, "fail_reason", reason)
            except Exception:  # noqa: S110
                pass
            try:
                study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
                marked.append(t.number)
            except Exception:
                left.append(t.number)

    def trials(numbers: list[int]) -> str:
        return f"trial{'s' if len(numbers) > 1 else ''} {', '.join(map(str, numbers))}"

    told = f"; {trials(marked)} marked FAIL" if marked else ""
    if left:
        told += f"; {trials(left)} left RUNNING (the next run marks it FAIL)"
    return told


def _worker_main(config: SearchConfig, index: int, objective: Objective | None) -> None:
    _stop_with_parent()
    # a fresh process: the user's ops, then the space again (specs hold no live state)
    from nas_skip._user_ops import ensure_registered

    ensure_registered(config.user_ops)
    space = load_space(config.space, config.dataset, config.train)
    try:
        optimize(config, space, index, objective)
    except KeyboardInterrupt:
        pass  # the parent reports the interruption; Optuna has marked the trial FAIL
    except NasSkipError as exc:  # one line, as the command line prints errors
        sys.stderr.write(f"error: worker {index}: {exc}\n")
        sys.exit(2)


def _stop_with_parent() -> None:
    """End this worker process when the search process that started it dies (a kill -9
    leaves its children running, unsupervised, with nobody to report to): its running
    trial is failed with the reason, and the process exits."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        reason = f"the search process (pid {parent.pid}) died; its worker {worker_id()} stopped"
        for study in _STUDIES:
            try:
                fail_trials_of(study, worker_id(), reason)
            except Exception:  # noqa: S110 - exiting anyway; a rerun fails them as stale
                pass
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="nas-skip-parent-watch").start()


#: the studies this process runs trials of (for the parent watch of a worker process)
_STUDIES: list[optuna.Study] = []


def _signal_name(exitcode: int) -> str:
    try:
        return signal.Signals(-exitcode).name
    except ValueError:
        return f"signal {-exitcode}"


def _supervise(config: SearchConfig, space: Space, objective: Objective | None) -> None:
    """Run ``config.workers`` worker processes to the study's target.

    A worker killed by a signal (a kill -9, the kernel's out-of-memory killer) has its
    running trials failed with a reason naming it and the signal, and is replaced while
    the study is short of its target; after ``max_failures`` such deaths in this run the
    search gives up. A worker that exits with an error (it printed it) is not replaced:
    its error would repeat.
    """
    ctx = multiprocessing.get_context("spawn")  # no fork after torch and threads start
    handle = open_study(config, space.name, space.dataset, config.space)
    budget = _Budget(config.trials, config.max_failures, StudyQueries(handle.study))
    index = 0
    procs: dict[int, multiprocessing.process.BaseProcess] = {}

    def start() -> None:
        nonlocal index
        p = ctx.Process(target=_worker_main, args=(config, index, objective), daemon=False)
        p.start()
        procs[p.sentinel] = p
        index += 1

    for _ in range(config.workers):
        start()
    deaths = clean = errors = 0
    try:
        while procs:
            for sentinel in multiprocessing.connection.wait(list(procs)):
                p = procs.pop(sentinel)  # type: ignore[call-overload]
                p.join()
                code = p.exitcode or 0
                if code == 0:
                    clean += 1
                    continue
                how = f"was killed by {_signal_name(code)}" if code < 0 else f"exited ({code})"
                who = f"{socket.gethostname()}:{p.pid}"
                failed = fail_trials_of(handle.study, who, f"worker {who} {how}")
                if code > 0:
                    errors += 1
                    continue
                deaths += 1
                sys.stderr.write(f"warning: worker process {who} {how}; "
                                 f"{failed} running trial(s) failed\n")  # fmt: skip
                if deaths >= config.max_failures:
                    raise SearchError(f"{deaths} worker processes died (the last {how}); "
                                      "see the trials' fail_reason")  # fmt: skip
                if not budget.reached() and not clean:
                    start()  # a replacement; workers that ended cleanly saw the target
    except KeyboardInterrupt:
        for p in procs.values():
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
        raise
    if errors and not clean:
        raise SearchError(f"--workers {config.workers}: every worker process failed")


def run_local(config: SearchConfig, space: Space, objective: Objective | None = None) -> None:
    """Run the search with ``config.workers`` workers.

    ``objective`` replaces the shared one (benchmarks measure the framework with a trivial
    objective); it must be picklable by reference for several workers.

    Raises:
        KeyboardInterrupt: Ctrl-C; the running trials are marked FAIL by Optuna.
        SearchError: every trial of a worker failed (a broken setup).
    """
    if config.workers > 1:
        _supervise(config, space, objective)
        return
    failures = optimize(config, space, 0, objective)
    if failures >= config.max_failures:
        raise SearchError(
            f"{failures} trials failed in a row; see the trials' fail_reason "
            "(nas-skip dashboard) or run one with nas-skip train"
        )
