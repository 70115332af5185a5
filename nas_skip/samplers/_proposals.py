"""Proposals of the local-search sampler: neighbours' values, random draws, completing a
proposal through the space, and what makes two proposals the same (their genotypes'
canonical hash). Pure functions of their inputs and a seeded generator."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Hashable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from nas_skip.genotype import HASH_VERSION
from nas_skip.samplers._common import TRAIN_PREFIX, SamplerError
from nas_skip.samplers._evolution import _mutate

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

    from nas_skip.spaces import Space

Params = dict[str, Any]
Key = Callable[[Mapping[str, Any]], Hashable]
_HASH_PREFIX = f"v{HASH_VERSION}:"  # what canonical hashes of this nas-skip start with


def fits(dist: BaseDistribution, value: Any) -> bool:
    try:
        return bool(dist._contains(dist.to_internal_repr(value)))
    except (ValueError, TypeError):
        return False


def moves(dist: BaseDistribution, value: Any, rng: np.random.Generator) -> list[Any]:
    """The values one step away from ``value``."""
    if isinstance(dist, CategoricalDistribution):
        return [c for c in dist.choices if c != value]
    if isinstance(dist, IntDistribution):
        near = [v for v in (value - dist.step, value + dist.step) if dist.low <= v <= dist.high]
        drawn = _mutate(dist, value, rng)
        return near + ([drawn] if drawn not in near else [])
    if isinstance(dist, FloatDistribution):
        return list(dict.fromkeys(_mutate(dist, value, rng) for _ in range(2)))
    return []


def draw(dist: BaseDistribution, rng: np.random.Generator) -> Any:
    """A uniform (log-uniform for log ranges) value of ``dist``."""
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[int(rng.integers(len(dist.choices)))]
    if isinstance(dist, IntDistribution):
        if dist.log:
            v = int(round(math.exp(rng.uniform(math.log(dist.low), math.log(dist.high)))))
            return min(max(v, dist.low), dist.high)
        return dist.low + dist.step * int(rng.integers((dist.high - dist.low) // dist.step + 1))
    if isinstance(dist, FloatDistribution):
        if dist.step is not None:
            size = int(math.floor((dist.high - dist.low) / dist.step + 1e-8)) + 1
            return min(dist.low + dist.step * int(rng.integers(size)), dist.high)
        if dist.log:
            return float(math.exp(rng.uniform(math.log(dist.low), math.log(dist.high))))
        return float(rng.uniform(dist.low, dist.high))
    raise SamplerError(f"local-search cannot draw a parameter of type {type(dist).__name__}")


class _Filler:
    """A stand-in trial for a space: the given values where they fit, random ones for the
    parameters the given ones do not have (a deeper network's new layers)."""

    def __init__(self, given: Mapping[str, Any], rng: np.random.Generator) -> None:
        self.given, self.rng = given, rng
        self.params: Params = {}

    def _take(self, name: str, dist: BaseDistribution) -> Any:
        value = self.given.get(name)
        if name not in self.given or not fits(dist, value):
            value = draw(dist, self.rng)
        self.params[name] = value
        return value

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        return self._take(name, CategoricalDistribution(choices))

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        return int(self._take(name, IntDistribution(low, high, log=log, step=step)))

    def suggest_float(self, name: str, low: float, high: float, log: bool = False) -> float:
        return float(self._take(name, FloatDistribution(low, high, log=log)))


def complete(space: Space, params: Mapping[str, Any], rng: np.random.Generator) -> Params:
    """``params`` as the space asks for them: missing ones drawn, stale ones dropped."""
    filler = _Filler(params, rng)
    space.ask(filler)
    return filler.params


def params_key(params: Mapping[str, Any]) -> Hashable:
    """Two proposals are the same when their params are."""
    return json.dumps(sorted(params.items()), default=str)


class SpaceKey:
    """Two proposals are the same when their genotypes are isomorphic (equal canonical
    hashes) and their training choices equal; choices the space cannot build compare by
    their params. Remembered per process (a study asks about the same trials again);
    the memory stays behind when the key is pickled (Ray ships the sampler)."""

    _LIMIT = 1 << 16  # remembered keys at most

    def __init__(self, space: Space) -> None:
        self.space = space
        self._memo: dict[str, Hashable] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"space": self.space, "_memo": {}}

    def __call__(self, params: Mapping[str, Any]) -> Hashable:
        text = params_key(params)
        found = self._memo.get(text)
        if found is None:
            if len(self._memo) >= self._LIMIT:
                self._memo.clear()
            found = self._memo[text] = self._compute(params)
        return found

    def of_trial(self, trial: FrozenTrial, params: Mapping[str, Any]) -> Hashable:
        """The key of a finished trial: from the canonical hash nas-skip's objective
        stored on it (no genotype to build again), else from its params."""
        stored = trial.user_attrs.get("hash")
        if isinstance(stored, str) and stored.startswith(_HASH_PREFIX) and len(stored) < 100:
            return self._key(stored, params)
        return self(params)

    @staticmethod
    def _key(canonical: str, params: Mapping[str, Any]) -> Hashable:
        train = sorted((k, v) for k, v in params.items() if k.startswith(TRAIN_PREFIX))
        return json.dumps([canonical, train], default=str)

    def _compute(self, params: Mapping[str, Any]) -> Hashable:
        import optuna

        try:
            g = self.space.sample(optuna.trial.FixedTrial(dict(params)))
        except Exception:  # noqa: BLE001 - incomplete or invalid: compare the params
            return params_key(params)
        return self._key(g.canonical_hash(), params)


def space_key(space: Space) -> Key:
    """The :class:`SpaceKey` of ``space``."""
    return SpaceKey(space)
