"""What nas-skip's samplers share: their error, seeds, draws keyed by trial number."""

from __future__ import annotations

import secrets
import zlib
from typing import TYPE_CHECKING, Any

import numpy as np
from optuna.samplers import RandomSampler
from optuna.trial import TrialState

from nas_skip.errors import NasSkipError

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.study import Study
    from optuna.trial import FrozenTrial


#: parameters with this prefix are training hyperparameters, the rest describe the architecture
TRAIN_PREFIX = "train:"


class SamplerError(NasSkipError, ValueError):
    """A sampler was configured wrongly or used on a study it cannot handle."""


def resolve_seed(seed: Any, sampler: str) -> int:
    """The seed to key every draw with; ``None`` draws one (parallel workers then differ).

    Raises:
        SamplerError: not a non-negative integer.
    """
    if seed is None:
        return secrets.randbits(64)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise SamplerError(f"{sampler} seed must be a non-negative integer, got {seed!r}")
    return seed


def refuse_multi_objective(study: Study, trial: FrozenTrial, sampler: str, name: str) -> None:
    """Fail ``trial`` (no RUNNING trial is left behind) and raise, for a study of several
    objectives.

    Raises:
        SamplerError: naming the sampler and the one to use instead.
    """
    if not study._is_multi_objective():
        return
    study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    raise SamplerError(
        f"{sampler} (sampler {name!r}) supports single-objective studies only; this study "
        f"has {len(study.directions)} objectives: use the 'nsga2' sampler"
    )


def random_value(seed: int, study: Study, trial: FrozenTrial, name: str,
                 distribution: BaseDistribution) -> Any:  # fmt: skip
    """A random value of ``name`` for ``trial``, the same in every process.

    One RandomSampler per (trial, parameter) rather than one for the whole study: a
    shared generator's position is in-memory state, which a resumed study would lose.
    """
    key = zlib.crc32(name.encode())
    state = int(np.random.SeedSequence([seed, trial.number, 1, key]).generate_state(1)[0])
    return RandomSampler(seed=state).sample_independent(study, trial, name, distribution)


def trial_by_number(study: Study, number: int) -> FrozenTrial:
    """The stored trial ``number`` of ``study`` (cached storages answer from memory)."""
    storage = study._storage
    return storage.get_trial(
        storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
    )
