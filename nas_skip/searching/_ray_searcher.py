"""The Ray backend's searcher: Ray Tune's ``OptunaSearch`` on the search's own study.

Stock ``OptunaSearch`` asks and tells the right study, but three things differ from what
the local backend stores, and are fixed here:

- a trial ASHA stops is told COMPLETE with its early value; here it is PRUNED, with the
  value that stopped it stored as its last intermediate value (and a ``pruned_reason``,
  as the local backend writes), so TPE and the dashboard see it as the local pruner's;
  a trial the objective prunes (it diverged) ends with a report saying so, also PRUNED;
- intermediate values are stored at the trial's epoch (Tune's ``training_iteration``
  counts reports, and a duplicate trial reports once, at its last epoch);
- ``num_samples`` cannot say "until the study holds N finished trials": this searcher
  keeps the budget (failed trials are replaced, as ``study.optimize`` does), the
  timeout (no new trial after it) and the failure streak that means a broken setup;
- each trial records its owner (this driver's ``worker`` attribute), which lets a rerun
  fail the trials of a killed driver.

The driver is the search's bottleneck (every ask and tell passes through it), so it adds
little storage work per trial to stock ``OptunaSearch``'s: the finished count is kept in
memory and checked against the storage at most once a second (other processes may share
the study).

This module imports Ray; import it only after ``_ray`` has set Ray's environment.
"""

from __future__ import annotations

import json
import logging
import math
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from nas_skip.searching._config import SearchConfig
from nas_skip.searching._objective import all_finite, sample
from nas_skip.searching._queries import StudyQueries
from nas_skip.searching._storage import FINISHED, worker_id
from nas_skip.spaces import Space

logger = logging.getLogger(__name__)

# What the trainable reports. EPOCH is ASHA's time attribute and ACCURACY its metric;
# FINAL marks the one report sent after training, which carries the objective values;
# PRUNED the last report of a trial the objective pruned (its pruned_reason is stored).
EPOCH, ACCURACY, FINAL, DUPLICATE, PRUNED = "epoch", "accuracy", "final", "duplicate", "pruned"
#: a line the trainable asks the driver to print (once): a trial that asked for a GPU on a
#: node where torch sees no CUDA trains on the CPU
WARNING = "warning"
# Constants the space function puts in each Ray trial's config for the trainable.
TRIAL_ID, TRIAL_NUMBER, GENOTYPE, HPARAMS, PARAMS = (
    "optuna_trial_id",
    "optuna_trial",
    "genotype",
    "hparams",
    "params",
)
#: seconds between two looks at the study's finished count (other processes add to it)
RECOUNT_SECONDS = 1.0


def node_label(ip: str, node_id: str) -> str:
    """A Ray node as trials record it (``node``): its IP and the head of its id, which tells
    apart nodes that share an IP (several on one machine)."""
    return f"{ip}/{node_id[:8]}"


def lost_reason(node: str | None, nodes: list[dict[str, Any]],
                reachable: Callable[[str, int], bool]) -> str:  # fmt: skip
    """Why a trial whose worker wrote no ``fail_reason`` errored: the trainable records
    every error it can, so its worker process, or its whole node, was lost (a kill, the
    out-of-memory killer, a machine gone).

    Args:
        node: the trial's ``node`` attribute (None: it never started on a node).
        nodes: ``ray.nodes()``, dead nodes included.
        reachable: whether a raylet answers at (address, port): Ray declares a node dead
            only after its health checks miss (about 15 s by default), a dead raylet's
            port refuses at once.
    """
    if node is None:
        return "the Ray trial failed before it started on a node"
    info = next((n for n in nodes if node == node_label(str(n.get("NodeManagerAddress")),
                                                        str(n.get("NodeID")))), None)  # fmt: skip
    if info is not None and (
        not info.get("Alive", True)
        or not reachable(str(info.get("NodeManagerAddress")), int(info.get("NodeManagerPort", 0)))
    ):
        return f"its Ray node {node} died"
    return f"its Ray worker on node {node} was lost (the process died)"


def raylet_answers(address: str, port: int) -> bool:
    """Whether something accepts connections at the raylet's address (1 s at most)."""
    try:
        with socket.create_connection((address, port), timeout=1.0):
            return True
    except OSError:
        return False


def define_by_run(space: Space) -> Callable[[Any], dict[str, Any]]:
    """The define-by-run space: our one sampler, and what the trainable must be told.

    Only ``suggest_*`` calls become Optuna params (the space's own names); the returned
    constants travel in the Ray trial's config.
    """

    def define(trial: Any) -> dict[str, Any]:
        s = sample(trial, space)  # may raise TrialPruned: see StudySearch.suggest
        return {
            GENOTYPE: json.dumps(s.genotype.to_json(), separators=(",", ":")),
            HPARAMS: s.hparams,
            PARAMS: s.params,
            TRIAL_ID: trial._trial_id,  # the captor OptunaSearch passes forwards attributes
            TRIAL_NUMBER: trial.number,
        }

    return define


class StudySearch(OptunaSearch):
    """OptunaSearch on the study ``open_study`` made, with the local backend's semantics.

    Args:
        config: the search (objectives, budget, timeout, epochs).
        space: the space the define-by-run function samples.
        storage: an Optuna storage object for the study's URL.
        study_name: the existing study.
        sampler: the search's sampler (``make_sampler``).
        experiment_dir: Tune's folder of this run, named in failure messages.
    """

    def __init__(self, config: SearchConfig, space: Space, storage: optuna.storages.BaseStorage,
                 study_name: str, sampler: optuna.samplers.BaseSampler,
                 experiment_dir: str = "") -> None:  # fmt: skip
        modes = ["max" if d == "maximize" else "min" for d in config.directions]
        multi = config.multi_objective
        # metric and mode go to OptunaSearch itself: a define-by-run space cannot take them
        # from TuneConfig (FIELD-NOTES)
        super().__init__(
            space=define_by_run(space),
            metric=list(config.objectives) if multi else ACCURACY,
            mode=modes if multi else modes[0],
            sampler=sampler,
            study_name=study_name,
            storage=storage,
        )
        self._multi = multi
        self._objectives = list(config.objectives) if multi else [ACCURACY]  # as reported
        self._target = config.trials
        self._max_failures = config.max_failures  # as the local backend's _Budget
        self._deadline = None if config.timeout is None else time.monotonic() + config.timeout
        self._failures = 0  # consecutive failed trials
        self._owner = worker_id()  # this driver: it asks and tells every trial
        self._finished = 0  # finished trials in the study, as last counted plus told since
        self._counted_at = -math.inf  # monotonic time of the last COUNT
        self._steps: dict[str, set[int]] = {}  # trial -> epochs stored as intermediate values
        self._experiment_dir = experiment_dir
        self.stop_reason: str | None = None  # why no new trial starts ("failures", "timeout")
        self._warned: set[str] = set()  # the trainables' warnings printed so far

    @property
    def study(self) -> optuna.Study:
        """The study this searcher asks and tells."""
        assert self._ot_study is not None  # made in __init__, as the space is given there
        return self._ot_study

    # --- asking ------------------------------------------------------------------------------
    # Ray annotates suggest as dict | None, but its searchers return the FINISHED string too
    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:  # type: ignore[override]
        """A new trial's config; None to wait for running trials; FINISHED when done."""
        if self._deadline is not None and time.monotonic() > self._deadline:
            self.stop_reason = self.stop_reason or "timeout"
        if self.stop_reason is not None:
            return Searcher.FINISHED
        finished = self._count_finished()
        if finished >= self._target:
            return Searcher.FINISHED
        running = len(self._ot_trials) - len(self._completed_trials)  # asked, not yet told
        if finished + running >= self._target:
            return None  # enough trials run; ask again when one ends (it may fail)
        if trial_id not in self._ot_trials:  # stock suggest asks only for a new trial id
            self._ot_trials[trial_id] = self._ask()
        try:
            return super().suggest(trial_id)
        except optuna.TrialPruned:
            # an invalid sample: sample() stored the reason; it counts as finished, as in
            # study.optimize, and Tune asks again with a new trial id
            ot_trial = self._ot_trials.pop(trial_id)
            self.study.tell(ot_trial, state=TrialState.PRUNED)
            self._finished += 1
            return None

    def _count_finished(self) -> int:
        """The study's finished trials: counted in memory (this driver's tells, never too
        many), and in the storage at most every RECOUNT_SECONDS, where other processes'
        trials show."""
        if time.monotonic() - self._counted_at >= RECOUNT_SECONDS:
            states = StudyQueries(self.study).states()  # a COUNT, not a read of every trial
            self._finished = sum(states[s] for s in FINISHED)
            self._counted_at = time.monotonic()
        return self._finished

    def _ask(self) -> optuna.Trial:
        """``study.ask()``, the trial RUNNING with this driver already recorded as its owner
        (a rerun fails it if this driver dies).

        Asked, then told its owner, a trial of a driver killed in between stayed RUNNING
        with no owner, which a rerun cannot tell from another live process's new trial
        (it fails such a trial only after a grace period). So the trial is made WAITING
        with its owner, in one write, and ``ask`` takes it. A study that holds WAITING
        trials already (a one-shot run's derived network) has them run first, as Optuna
        does: the oldest is asked, then told its owner.
        """
        if not StudyQueries(self.study).states()[TrialState.WAITING]:  # a COUNT
            self.study.enqueue_trial({}, user_attrs={"worker": self._owner})
        trial = self.study.ask()
        if trial.user_attrs.get("worker") != self._owner:
            trial.set_user_attr("worker", self._owner)
        return trial

    def open_trials(self) -> list[str]:
        """Ray trial ids asked of Optuna and not yet told."""
        return [t for t in self._ot_trials if t not in self._completed_trials]

    # --- results -----------------------------------------------------------------------------
    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        # replaces the stock method, which reports at training_iteration
        if trial_id not in self._completed_trials:
            self._store_intermediate(trial_id, result)
        self._warn(result)

    def _warn(self, result: dict[str, Any] | None) -> None:
        """Print a trainable's warning once (each names its node)."""
        text = (result or {}).get(WARNING)
        if isinstance(text, str) and text not in self._warned:
            self._warned.add(text)
            sys.stderr.write(f"warning: {text}\n")

    def _store_intermediate(self, trial_id: str, result: dict[str, Any]) -> None:
        if self._multi or result.get(DUPLICATE) or ACCURACY not in result:
            return  # Optuna keeps no intermediate values for several objectives
        step = int(result[EPOCH])
        steps = self._steps.setdefault(trial_id, set())
        value = float(result[ACCURACY])
        if step not in steps and math.isfinite(value):
            self._ot_trials[trial_id].report(value, step)
            steps.add(step)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None,
                          error: bool = False) -> None:  # fmt: skip
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            super().on_trial_complete(trial_id, result, error)  # the stock warning path
            return
        ot_trial = self._ot_trials[trial_id]
        self._warn(result)
        if error or not result:
            reason = "" if error else "ended before it started (the run stopped)"
            self._tell_fail(trial_id, ot_trial, reason)
        elif result.get(FINAL):
            values = [result.get(name, math.nan) for name in self._objectives]
            if not all_finite(values):
                # the trainable fails such a trial itself; Optuna would refuse the tell
                self._tell_fail(trial_id, ot_trial, f"non-finite objective values {values}")
                return
            self._store_intermediate(trial_id, result)
            self._tell(trial_id, ot_trial, TrialState.COMPLETE, values)
            self._failures = 0
        else:
            # pruned by the objective, or stopped by the scheduler before its final report:
            # PRUNED as Optuna's own pruners record it (the last intermediate value becomes
            # the value)
            self._store_intermediate(trial_id, result)
            if not result.get(PRUNED):
                epoch = result.get(EPOCH, "?")
                ot_trial.set_user_attr("pruned_reason", f"stopped by ASHA after epoch {epoch}")
            self._tell(trial_id, ot_trial, TrialState.PRUNED)
            self._failures = 0
        self._steps.pop(trial_id, None)

    def _tell_fail(self, trial_id: str, ot_trial: optuna.Trial, reason: str) -> None:
        # from the storage: the worker wrote fail_reason (ot_trial.user_attrs is a cache)
        attrs = self.study._storage.get_trial(ot_trial._trial_id).user_attrs
        if "fail_reason" in attrs:
            reason = attrs["fail_reason"]
        else:
            if not reason:  # the worker process, or its node, was lost
                where = f"{self._experiment_dir}/trial_{ot_trial.number}/error.txt"
                node = attrs.get("node")
                reason = lost_reason(node if isinstance(node, str) else None, _nodes(),
                                     raylet_answers) + f"; see {where}"  # fmt: skip
            ot_trial.set_user_attr("fail_reason", reason)
        # one line per failure, as the local backend prints; Tune's traceback stays in the
        # trial's error.txt
        sys.stderr.write(f"warning: trial {ot_trial.number} failed: {reason}\n")
        self._tell(trial_id, ot_trial, TrialState.FAIL)
        self._failures += 1
        if self._failures >= self._max_failures:
            self.stop_reason = "failures"

    def _tell(self, trial_id: str, ot_trial: optuna.Trial, state: TrialState,
              values: list[float] | None = None) -> None:  # fmt: skip
        try:
            self.study.tell(ot_trial, values, state=state)
            self._finished += state in FINISHED
        except Exception as exc:  # e.g. already finished elsewhere: the stock behaviour
            logger.warning(exc)
        self._completed_trials.add(trial_id)

    @property
    def failures(self) -> int:
        """Consecutive failed trials at the end of the run."""
        return self._failures

    def fail_open_trials(self, reason: str) -> int:
        """Tell FAIL for every trial still open (Ctrl-C, or Tune ending abnormally).

        Returns:
            How many trials were marked.
        """
        marked = 0
        for trial_id in self.open_trials():
            ot_trial = self._ot_trials[trial_id]
            try:
                ot_trial.set_user_attr("fail_reason", reason)
            except Exception:  # noqa: S110 - finished meanwhile: nothing to repair
                pass
            self._tell(trial_id, ot_trial, TrialState.FAIL)
            marked += 1
        return marked

    # --- state -------------------------------------------------------------------------------
    def save(self, checkpoint_path: str) -> None:
        # The study in the Optuna storage is this searcher's state, and a rerun starts a fresh
        # Tuner on it (we never Tuner.restore). The stock save pickles the define-by-run
        # closure, which plain pickle cannot do; Tune skips a searcher that does not save.
        raise NotImplementedError

    def restore(self, checkpoint_path: str) -> None:
        raise NotImplementedError("nas-skip continues a study with a fresh search, not restore")


def _nodes() -> list[dict[str, Any]]:
    """The cluster's nodes as the GCS knows them (dead ones included); [] without Ray."""
    import ray

    try:
        return list(ray.nodes())
    except Exception:  # noqa: BLE001 - a reason is still given without them
        return []
