"""Surrogate-guided local search with restarts: nas-skip's default single-objective sampler.

Local search is a strong baseline on NAS benchmarks (White et al. 2021, "Local Search is
State of the Art for NAS Benchmarks"): the best architectures sit close to other good
ones, a parameter away. This sampler walks from the best trial to its neighbours, ranks
them with a surrogate of the objective instead of trying them at random, never proposes
what the study already holds (with a space: no genotype isomorphic to one held), and
starts a fresh walk when one stops improving. Its choice of the default is measured by
``scripts/bench_samplers.py`` (see the README's leaderboard).

Every decision is a pure function of the seed, the trial number and the study's stored
trials, as in :mod:`._evolution`: the plan of a trial (all its parameters, the walk it
belongs to) is written to its system attributes in :meth:`LocalSearchSampler.before_trial`,
so a resumed study and parallel workers need no coordination; a RUNNING trial's plan is
held, so that parallel workers do not propose it twice.
"""

from __future__ import annotations

import json
import math
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.study import StudyDirection
from optuna.trial import TrialState

from nas_skip.samplers._common import (
    TRAIN_PREFIX,
    SamplerError,
    random_value,
    refuse_multi_objective,
    resolve_seed,
)
from nas_skip.samplers._proposals import (
    Key,
    Params,
    SpaceKey,
    complete,
    draw,
    fits,
    moves,
    params_key,
    space_key,
)
from nas_skip.samplers._surrogate import Features, ridge_predict

if TYPE_CHECKING:
    from optuna.study import Study
    from optuna.trial import FrozenTrial

    from nas_skip.spaces import Space

#: system attribute: the trial's plan, JSON ``{"params": {...}, "walk": k, "step": ...}``
PLAN_ATTR = "local_search:plan"
#: trials whose choices are taken: proposing them again would only repeat them
_HELD = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
_MAX_PLAN = 1 << 20  # bytes of a stored plan read at most (another process wrote it)
_DRAWS = 32  # random proposals tried before one the study holds is accepted anyway
_CENTRES = 20  # best trials of a walk whose neighbourhoods are looked at, at most
_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


class LocalSearchSampler(BaseSampler):
    """Walks from the best trial to the neighbour a surrogate ranks first; restarts.

    * **Start** (and each restart): ``n_startup_trials`` (``restart_trials``) random
      trials, none repeating one the study holds.
    * **Step**: the *centre* is the walk's best trial (COMPLETE by its value, PRUNED by
      the last value it reported) that still has a neighbour the study does not hold.
      Its neighbours differ in one parameter: every other value of a categorical one, a
      step either way and one Gaussian step of an integer, two Gaussian steps of a float
      (as evolution's mutation draws them); architecture and training parameters take
      turns in proportion to their numbers. A ridge regression on the finished trials'
      choices (``_surrogate``) ranks them; the first is the trial.
    * **Restart**: when ``patience`` finished trials of the walk have passed without
      beating its best, a new walk starts from random trials (the study's best is kept).
      PRUNED trials count, and the surrogate learns from them (at their last reported
      value; a trial that diverged before reporting, at the worst complete value).

    With ``space`` (a :class:`nas_skip.spaces.Space`), a neighbour that changes how many
    parameters exist (``depth``) is completed by the space (new layers' choices drawn at
    random) and "held" means *isomorphic*: two choices whose genotypes have the same
    canonical hash and training hyperparameters are the same proposal. ``key`` replaces
    that comparison (a function of a trial's params to anything hashable).

    Args:
        n_startup_trials: random trials before the first walk.
        patience: finished trials of a walk without improvement before a restart.
        restart_trials: random trials that start each later walk.
        seed: seeds every draw; ``None`` draws one.
        space: the search space, for completing neighbours and comparing genotypes.
        key: what makes two proposals the same (default: the space's genotype hash and
            training choices, or without a space the params themselves).
        max_candidates: neighbours ranked per step at most (a seeded subset beyond).
        alpha: the ridge penalty.

    Raises:
        SamplerError: a setting out of range, or (when a trial starts) a study of several
            objectives.
    """

    def __init__(
        self,
        n_startup_trials: int = 10,
        patience: int = 25,
        restart_trials: int = 5,
        seed: int | None = None,
        space: Space | None = None,
        key: Key | None = None,
        max_candidates: int = 256,
        alpha: float = 10.0,
    ) -> None:
        for name, value, low in (("n_startup_trials", n_startup_trials, 1),
                                 ("patience", patience, 1), ("restart_trials", restart_trials, 1),
                                 ("max_candidates", max_candidates, 1)):  # fmt: skip
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise SamplerError(f"local-search {name} must be an integer >= {low}, "
                                   f"got {value!r}")  # fmt: skip
        if not (isinstance(alpha, int | float) and math.isfinite(alpha) and alpha > 0):
            raise SamplerError(f"local-search alpha must be a positive number, got {alpha!r}")
        self._startup, self._patience, self._restart = n_startup_trials, patience, restart_trials
        self._seed = resolve_seed(seed, "local-search")
        self._space = space
        # neighbours that change these are completed by the space (their parameters change)
        self._structural = space.structural() if space is not None else frozenset()
        self._key: Key = key or (space_key(space) if space is not None else params_key)
        self._max_candidates, self._alpha = max_candidates, float(alpha)
        self._memo: dict[int, tuple[Hashable, Hashable]] = {}  # finished trial id -> keys
        self._memo_owner: object = None  # the storage whose trial ids _memo holds

    def __getstate__(self) -> dict[str, Any]:
        # Ray pickles the sampler with its searcher: the memo of a storage stays behind
        state = dict(self.__dict__)
        state["_memo"], state["_memo_owner"] = {}, None
        return state

    def reseed_rng(self) -> None:
        """Do nothing: draws are keyed by trial number (see the evolution sampler)."""

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        """No relative space: every parameter is answered by :meth:`sample_independent`."""
        return {}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        """Nothing; see :meth:`infer_relative_search_space`."""
        return {}

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        """Plan the trial (its parameters and walk) and store the plan on it.

        Raises:
            SamplerError: the study has several objectives (the trial is marked FAIL).
        """
        refuse_multi_objective(study, trial, type(self).__name__, "local-search")
        if PLAN_ATTR in trial.system_attrs or "fixed_params" in trial.system_attrs:
            return
        plan = self._plan(study, trial.number)
        study._storage.set_trial_system_attr(trial._trial_id, PLAN_ATTR, json.dumps(plan))

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        """The planned value where the plan has one that fits, else a random one."""
        plan = read_plan(trial)
        if plan is not None and param_name in plan["params"]:
            value = plan["params"][param_name]
            if fits(param_distribution, value):
                return value
        return random_value(self._seed, study, trial, param_name, param_distribution)

    # --- planning ------------------------------------------------------------------------
    def _plan(self, study: Study, number: int) -> dict[str, Any]:
        trials = [t for t in study._get_trials(deepcopy=False, use_cache=True)
                  if t.number < number]  # fmt: skip
        plans = {t.number: read_plan(t) for t in trials}
        walk = max((p["walk"] for p in plans.values() if p is not None), default=0)
        keys = {t.number: self._keys(study, t, plans[t.number]) for t in trials
                if t.state in _HELD}  # fmt: skip
        held = {k for _, k in keys.values()}
        in_walk = [t for t in trials if (plans[t.number] or {"walk": 0})["walk"] == walk]
        sign = -1.0 if study.direction == StudyDirection.MINIMIZE else 1.0
        scored = _scored(trials, sign)
        walkers = {t.number for t in in_walk}
        # the walk's trials, best first: COMPLETE ones by value, PRUNED ones by the last
        # value they reported (lower than the one they were heading for)
        done = [t for t, _ in sorted((ts for ts in scored if ts[0].number in walkers),
                                     key=lambda ts: (-ts[1], ts[0].number))]  # fmt: skip
        rng = np.random.default_rng([self._seed, number, 2])
        if len(in_walk) < (self._startup if walk == 0 else self._restart) or not done:
            return self._random(trials, held, walk, rng)
        best = done[0]
        since = sum(1 for t in in_walk if t.state in _FINISHED and t.number > best.number)
        if since >= self._patience:
            return self._random(trials, held, walk + 1, rng)
        known = {k for k, _ in keys.values()}
        for centre in done[:_CENTRES]:
            for candidates in self._neighbours(centre, known, rng):
                # the surrogate's order; the space's key (a genotype hash, the costly part)
                # is computed only down to the first candidate the study does not hold
                for index in self._rank(scored, candidates):
                    if self._key(candidates[index]) not in held:
                        return {"params": candidates[index], "walk": walk,
                                "step": "neighbour", "centre": centre.number}  # fmt: skip
        return self._random(trials, held, walk, rng)

    def _keys(self, study: Study, trial: FrozenTrial,
              plan: dict[str, Any] | None) -> tuple[Hashable, Hashable]:  # fmt: skip
        """A trial's params key and key; remembered once it finished (its params are fixed),
        as a study of n trials asks for them n times."""
        choices = _choices(trial, plan)
        if trial.state in (TrialState.RUNNING, TrialState.WAITING):
            return params_key(choices), self._key(choices)
        if self._memo_owner is not study._storage:  # another storage: ids mean other trials
            self._memo.clear()
            self._memo_owner = study._storage
        found = self._memo.get(trial._trial_id)
        if found is None:
            if isinstance(self._key, SpaceKey):  # the hash the objective stored, if any
                key = self._key.of_trial(trial, choices)
            else:
                key = self._key(choices)
            found = self._memo[trial._trial_id] = (params_key(choices), key)
        return found

    def _random(self, trials: list[FrozenTrial], held: set[Hashable], walk: int,
                rng: np.random.Generator) -> dict[str, Any]:  # fmt: skip
        """A random proposal the study does not hold (after ``_DRAWS`` tries, any)."""
        known: dict[str, BaseDistribution] = {}
        for t in trials:
            known.update(t.distributions)
        params: Params = {}
        for _ in range(_DRAWS):
            if self._space is not None:
                params = complete(self._space, {}, rng)
            elif known:
                params = {name: draw(dist, rng) for name, dist in sorted(known.items())}
            else:
                break  # nothing known yet: the trial draws each parameter as it is asked
            if self._key(params) not in held:
                break
        return {"params": params, "walk": walk, "step": "random"}

    def _neighbours(self, centre: FrozenTrial, known: set[Hashable],
                    rng: np.random.Generator) -> list[list[Params]]:  # fmt: skip
        """The centre's neighbours whose params no held trial has, in groups to try in turn.

        A neighbour changes one architecture parameter, or one training parameter
        (``train:*``). The group comes first with the probability of its share of the
        centre's parameters (as a uniformly chosen parameter would), so that the walk does
        not spend itself on the endless small moves of a continuous learning rate around
        one architecture; the other group follows if the first has nothing left. Each group
        holds ``max_candidates`` at most; isomorphic ones are left to the caller
        (comparing genotypes costs more).
        """
        groups: dict[bool, list[tuple[str, Any]]] = {False: [], True: []}
        for name, dist in sorted(centre.distributions.items()):
            if name in centre.params and not dist.single():
                values = moves(dist, centre.params[name], rng)
                groups[name.startswith(TRAIN_PREFIX)] += [(name, v) for v in values]
        names = {n for n, d in centre.distributions.items() if not d.single()}
        share = sum(n.startswith(TRAIN_PREFIX) for n in names) / max(1, len(names))
        order = [True, False] if rng.random() < share else [False, True]
        out: list[list[Params]] = []
        seen = set(known)
        for group in order:
            steps = groups[group]
            if len(steps) > self._max_candidates:
                picked = rng.choice(len(steps), size=self._max_candidates, replace=False)
                steps = [steps[i] for i in sorted(picked)]
            candidates = []
            for name, value in steps:
                params = {**centre.params, name: value}
                if self._space is not None and name in self._structural:
                    params = complete(self._space, params, rng)
                key = params_key(params)
                if key not in seen:
                    seen.add(key)
                    candidates.append(params)
            out.append(candidates)
        return out

    def _rank(self, scored: list[tuple[FrozenTrial, float]],
              candidates: list[Params]) -> list[int]:  # fmt: skip
        """Candidate indices, best predicted first (in their order on a tie)."""
        if len(scored) < 2 or len(candidates) < 2:
            return list(range(len(candidates)))
        dists: dict[str, BaseDistribution] = {}
        for t, _ in scored:
            dists.update(t.distributions)
        features = Features(dists)
        y = np.array([value for _, value in scored])
        prediction = ridge_predict(features([t.params for t, _ in scored]), y,
                                   features(candidates), self._alpha)  # fmt: skip
        return [int(i) for i in np.argsort(-prediction, kind="stable")]


# --- proposals ---------------------------------------------------------------------------
def _scored(trials: list[FrozenTrial], sign: float) -> list[tuple[FrozenTrial, float]]:
    """What the surrogate learns from, with values signed so that higher is better:
    COMPLETE trials with their value; PRUNED ones with the last value they reported (an
    early, low reading of where they were heading), or, diverged or stopped before any
    report, the worst complete value."""
    complete = [(t, sign * t.values[0]) for t in trials
                if t.state == TrialState.COMPLETE and t.values]  # fmt: skip
    floor = min((v for _, v in complete), default=0.0)
    pruned = []
    for t in trials:
        if t.state == TrialState.PRUNED:
            steps = t.intermediate_values
            last = sign * steps[max(steps)] if steps else math.nan
            pruned.append((t, last if math.isfinite(last) else floor))
    return complete + pruned


def read_plan(trial: FrozenTrial) -> dict[str, Any] | None:
    """A trial's stored plan, or None where there is none or it is not a plan (the study's
    attributes may have been written by anyone: read with bounds, never trusted)."""
    raw = trial.system_attrs.get(PLAN_ATTR)
    if not isinstance(raw, str) or len(raw) > _MAX_PLAN:
        return None
    try:
        plan = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    ok = (isinstance(plan, dict) and isinstance(plan.get("params"), dict)
          and isinstance(plan.get("walk"), int) and not isinstance(plan["walk"], bool)
          and plan["walk"] >= 0)  # fmt: skip
    return plan if ok else None


def _choices(trial: FrozenTrial, plan: dict[str, Any] | None) -> Params:
    """What a trial stands for: its params, or while it runs, its plan's."""
    if trial.state in (TrialState.RUNNING, TrialState.WAITING) and plan is not None:
        return {**plan["params"], **trial.params}
    return dict(trial.params)
