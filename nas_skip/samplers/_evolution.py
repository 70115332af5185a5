"""Regularized (aging) evolution as an Optuna sampler (Real et al. 2019, "Regularized
Evolution for Image Classifier Architecture Search"), over define-by-run search spaces.

Every decision is a pure function of the seed, the trial number and the study's stored
trials: the plan of a child (parent, mutated parameter, new value) is written to the trial's
system attributes in :meth:`~RegularizedEvolutionSampler.before_trial`, and every random draw
comes from a generator seeded with ``(seed, trial number, ...)``. Nothing lives only in
memory, so a resumed study (a new process, a new sampler, the same storage) and several
workers sharing one storage need no coordination.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.samplers import BaseSampler
from optuna.study import StudyDirection
from optuna.trial import TrialState

from nas_skip.samplers._common import (
    TRAIN_PREFIX,
    SamplerError,
    random_value,
    refuse_multi_objective,
    resolve_seed,
    trial_by_number,
)

if TYPE_CHECKING:
    from optuna.study import Study
    from optuna.trial import FrozenTrial

#: system attribute: number of the trial the child copies
PARENT_ATTR = "evolution:parent"
#: system attribute: name of the one parameter the child changes
MUTATED_ATTR = "evolution:mutated"
#: system attribute: the mutated parameter's new value, in Optuna's internal representation
VALUE_ATTR = "evolution:value"
#: standard deviation of a numeric mutation, as a fraction of the (log) range or the grid length
MUTATION_SCALE = 0.25
# a continuous mutation that lands on the parent's value again (only possible in a range a few
# ulps wide) is redrawn this many times before falling back to an end of the range
_MAX_REDRAWS = 16


class RegularizedEvolutionSampler(BaseSampler):
    """Regularized evolution: tournament selection from an aging population, one mutation.

    Until ``population_size`` trials are COMPLETE, trials are sampled at random. After that,
    each new trial is a child: the population is the ``population_size`` most recent COMPLETE
    trials (by number, so the oldest die whatever their value: aging), ``tournament_size`` of
    them are drawn without replacement, the best by the study's direction (first drawn on a
    tie) is the parent, and the child copies the parent's parameters except exactly one,
    chosen uniformly among the parent's parameters with more than one possible value:

    * categorical: another choice, uniformly;
    * int, and float with ``step``: a Gaussian step on the grid (in log space if ``log``) with
      a standard deviation of :data:`MUTATION_SCALE` times the range, reflected at the ends
      and rounded; a step that rounds back to the parent's value moves to the neighbour;
    * float: a Gaussian step of :data:`MUTATION_SCALE` times the (log) range, reflected at the
      ends. Reflection rather than clipping, so that children do not pile up on the bounds.

    A parameter the parent did not have (after a mutation of ``depth``, say), or whose
    distribution differs from the parent's record, is sampled at random. Failed, pruned and
    running trials are never parents. Enqueued trials (``fixed_params``) are left alone.

    Args:
        population_size: how many of the most recent COMPLETE trials form the population.
        tournament_size: how many population members compete to be the parent.
        seed: seeds every draw; with a seed the study's history alone decides each trial,
            so a resumed study continues as if it had never stopped. ``None`` draws one.
        mutate_train: whether ``train:*`` parameters may be the mutated one; if not, only
            architecture parameters mutate and children inherit the parent's training setup.

    Raises:
        SamplerError: a size is out of range or the seed is not a non-negative integer.
    """

    def __init__(
        self,
        population_size: int = 20,
        tournament_size: int = 5,
        seed: int | None = None,
        mutate_train: bool = True,
    ) -> None:
        if population_size < 1:
            raise SamplerError(
                f"evolution population_size must be at least 1, got {population_size}"
            )
        if not 1 <= tournament_size <= population_size:
            raise SamplerError(
                f"evolution tournament_size must be between 1 and population_size "
                f"({population_size}), got {tournament_size}"
            )
        self._population_size = population_size
        self._tournament_size = tournament_size
        # without a seed each sampler object draws its own, so parallel workers still differ
        self._seed = resolve_seed(seed, "evolution")
        self._mutate_train = mutate_train

    @property
    def population_size(self) -> int:
        """How many of the most recent COMPLETE trials form the population."""
        return self._population_size

    @property
    def tournament_size(self) -> int:
        """How many population members compete in one tournament."""
        return self._tournament_size

    def reseed_rng(self) -> None:
        """Do nothing: draws are keyed by trial number, which differ between parallel jobs.

        Optuna calls this for ``n_jobs > 1`` so that copies of a sampler do not repeat each
        other's draws; this sampler holds no generator whose state could be shared, and a
        reseed would break reproducibility.
        """

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        """Return no relative space: every parameter goes through :meth:`sample_independent`.

        Args:
            study: the study.
            trial: the trial about to run.

        Returns:
            An empty dict.
        """
        return {}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        """Return nothing; see :meth:`infer_relative_search_space`.

        Args:
            study: the study.
            trial: the trial about to run.
            search_space: the (empty) relative search space.

        Returns:
            An empty dict.
        """
        return {}

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        """Plan the trial: pick its parent and mutation and store them as system attributes.

        Warm-up trials (fewer than ``population_size`` COMPLETE trials before this one),
        enqueued trials, and trials that already carry a plan get none.

        Args:
            study: the study.
            trial: the trial just created.

        Raises:
            SamplerError: the study has several objectives. The trial is marked FAIL first so
                that no RUNNING trial is left behind.
        """
        refuse_multi_objective(study, trial, type(self).__name__, "evolution")
        if PARENT_ATTR in trial.system_attrs or "fixed_params" in trial.system_attrs:
            return
        plan = self._plan(study, trial.number)
        if plan is None:
            return
        parent, name, value = plan
        storage = study._storage
        storage.set_trial_system_attr(trial._trial_id, PARENT_ATTR, parent)
        storage.set_trial_system_attr(trial._trial_id, MUTATED_ATTR, name)
        storage.set_trial_system_attr(trial._trial_id, VALUE_ATTR, value)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        """Return the planned value of a parameter, or a random one outside a plan.

        Args:
            study: the study.
            trial: the running trial (its system attributes hold the plan, if any).
            param_name: the parameter asked for.
            param_distribution: its distribution in this trial.

        Returns:
            The mutated value for the mutated parameter, the parent's value for the others,
            and a random value for warm-up trials and for parameters the parent did not have
            with this distribution.
        """
        attrs = trial.system_attrs
        parent_number = attrs.get(PARENT_ATTR)
        if parent_number is None:
            return self._random(study, trial, param_name, param_distribution)
        parent = trial_by_number(study, int(parent_number))
        if parent.distributions.get(param_name) != param_distribution:
            return self._random(study, trial, param_name, param_distribution)
        if param_name == attrs.get(MUTATED_ATTR):
            return param_distribution.to_external_repr(attrs[VALUE_ATTR])
        return parent.params[param_name]

    def _plan(self, study: Study, number: int) -> tuple[int, str, float] | None:
        """Choose the parent of trial ``number`` and its mutation, or ``None`` for random."""
        # only trials before this one, so that the plan does not depend on how far parallel
        # workers have got, and a replay of the same history gives the same plan
        complete = [
            t
            for t in study._get_trials(
                deepcopy=False, states=(TrialState.COMPLETE,), use_cache=True
            )
            if t.number < number
        ]
        if len(complete) < self._population_size:
            return None
        complete.sort(key=lambda t: t.number)
        population = complete[-self._population_size :]
        rng = np.random.default_rng([self._seed, number, 0])
        drawn = rng.choice(len(population), size=self._tournament_size, replace=False)
        minimize = study.direction == StudyDirection.MINIMIZE
        parent = population[int(drawn[0])]
        for index in drawn[1:]:
            rival = population[int(index)]
            assert rival.value is not None and parent.value is not None  # COMPLETE trials
            if (rival.value < parent.value) if minimize else (rival.value > parent.value):
                parent = rival
        # sorted: storages may return a trial's params in any order
        names = sorted(
            name
            for name, dist in parent.distributions.items()
            if not dist.single() and (self._mutate_train or not name.startswith(TRAIN_PREFIX))
        )
        if not names:
            # nothing can change: a copy would only repeat the parent's evaluation
            return None
        name = names[int(rng.integers(len(names)))]
        dist = parent.distributions[name]
        value = _mutate(dist, parent.params[name], rng)
        return parent.number, name, float(dist.to_internal_repr(value))

    def _random(
        self, study: Study, trial: FrozenTrial, name: str, distribution: BaseDistribution
    ) -> Any:
        """A random value of ``name`` for this trial, the same in every process."""
        return random_value(self._seed, study, trial, name, distribution)


def _mutate(dist: BaseDistribution, value: Any, rng: np.random.Generator) -> Any:
    """A value of ``dist`` other than ``value``; ``dist`` must have more than one value.

    Args:
        dist: the parameter's distribution.
        value: the parent's value, in external representation.
        rng: the generator of this child's plan.

    Returns:
        The new value, in external representation.

    Raises:
        SamplerError: ``dist`` is not a categorical, int or float distribution.
    """
    if isinstance(dist, CategoricalDistribution):
        current = int(dist.to_internal_repr(value))
        other = int(rng.integers(len(dist.choices) - 1))
        return dist.choices[other if other < current else other + 1]
    if isinstance(dist, IntDistribution):
        if dist.log:
            return _mutate_log_int(dist, int(value), rng)
        size = (dist.high - dist.low) // dist.step + 1
        index = (int(value) - dist.low) // dist.step
        return dist.low + _perturb_index(index, size, rng) * dist.step
    if isinstance(dist, FloatDistribution):
        if dist.step is not None:
            size = int(math.floor((dist.high - dist.low) / dist.step + 1e-8)) + 1
            index = int(round((float(value) - dist.low) / dist.step))
            new = dist.low + _perturb_index(index, size, rng) * dist.step
            return min(max(new, dist.low), dist.high)
        return _mutate_continuous(dist, float(value), rng)
    raise SamplerError(f"evolution cannot mutate a parameter of type {type(dist).__name__}")


def _perturb_index(index: int, size: int, rng: np.random.Generator) -> int:
    """A grid index in ``[0, size)`` other than ``index``, near it (``size >= 2``)."""
    delta = float(rng.normal(0.0, MUTATION_SCALE * (size - 1)))
    new = int(round(_reflect(index + delta, 0.0, float(size - 1))))
    return new if new != index else _neighbour(index, delta, 0, size - 1)


def _mutate_log_int(dist: IntDistribution, value: int, rng: np.random.Generator) -> int:
    """An integer of a log-scaled ``dist`` other than ``value``, a log-space step away."""
    low, high = math.log(dist.low), math.log(dist.high)
    delta = float(rng.normal(0.0, MUTATION_SCALE * (high - low)))
    new = int(round(math.exp(_reflect(math.log(value) + delta, low, high))))
    new = min(max(new, dist.low), dist.high)
    return new if new != value else _neighbour(value, delta, dist.low, dist.high)


def _mutate_continuous(dist: FloatDistribution, value: float, rng: np.random.Generator) -> float:
    """A float of a continuous ``dist`` other than ``value``, a (log-space) step away."""
    to, back = (math.log, math.exp) if dist.log else (float, float)
    low, high = to(dist.low), to(dist.high)
    for _ in range(_MAX_REDRAWS):
        step = float(rng.normal(0.0, MUTATION_SCALE * (high - low)))
        # exp(log(x)) can leave the range by an ulp
        new = min(max(back(_reflect(to(value) + step, low, high)), dist.low), dist.high)
        if new != value:
            return new
    return dist.high if value != dist.high else dist.low


def _neighbour(value: int, delta: float, low: int, high: int) -> int:
    """The grid neighbour of ``value`` on the side ``delta`` pointed to, inside the range."""
    if (delta >= 0 and value < high) or value == low:
        return value + 1
    return value - 1


def _reflect(x: float, low: float, high: float) -> float:
    """``x`` folded back into ``[low, high]`` as by mirrors at both ends."""
    width = high - low
    if width <= 0:
        return low
    offset = (x - low) % (2 * width)
    return low + (offset if offset <= width else 2 * width - offset)
