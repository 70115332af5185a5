"""A small surrogate of the objective: ridge regression on the trials' choices.

Each choice becomes features: a categorical parameter one indicator per value, a numeric
one its position in its (log) range; a parameter a trial does not have (a define-by-run
space: the layers of a shallower network) contributes zeros and an "absent" indicator.
Columns are standardised on the training trials. Ridge with a strong penalty is crude but
robust to the noise of single evaluations, and cheap: a solve in the smaller of the
number of trials and of features.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

Params = Mapping[str, Any]


class Features:
    """The feature map of a set of distributions (the union over the trials seen)."""

    def __init__(self, distributions: Mapping[str, BaseDistribution]) -> None:
        self.columns: dict[tuple[str, Any], int] = {}
        self.distributions = dict(sorted(distributions.items()))
        for name, dist in self.distributions.items():
            self.columns[name, "absent"] = len(self.columns)
            if isinstance(dist, CategoricalDistribution):
                for index in range(len(dist.choices)):
                    self.columns[name, index] = len(self.columns)
            else:
                self.columns[name, "value"] = len(self.columns)

    def __call__(self, rows: Sequence[Params]) -> np.ndarray:
        x = np.zeros((len(rows), len(self.columns)))
        for r, params in enumerate(rows):
            for name, dist in self.distributions.items():
                if name not in params:
                    x[r, self.columns[name, "absent"]] = 1.0
                    continue
                value = params[name]
                if isinstance(dist, CategoricalDistribution):
                    try:
                        x[r, self.columns[name, dist.to_internal_repr(value)]] = 1.0
                    except ValueError:  # a value of another distribution of this name
                        x[r, self.columns[name, "absent"]] = 1.0
                elif isinstance(dist, IntDistribution | FloatDistribution):
                    x[r, self.columns[name, "value"]] = _position(dist, float(value))
        return x


def _position(dist: IntDistribution | FloatDistribution, value: float) -> float:
    """Where ``value`` sits in the distribution's (log) range, 0 to 1."""
    low, high = float(dist.low), float(dist.high)
    if dist.log:
        low, high, value = math.log(low), math.log(high), math.log(max(value, dist.low))
    return 0.0 if high <= low else (value - low) / (high - low)


def ridge_predict(x: np.ndarray, y: np.ndarray, candidates: np.ndarray,
                  alpha: float = 10.0) -> np.ndarray:  # fmt: skip
    """Predictions for ``candidates`` of a ridge regression fitted on ``(x, y)``.

    Columns are standardised with the training rows' mean and spread (constant columns
    drop out); ``y`` is centred. Solved in the dual when there are fewer rows than
    columns.
    """
    mean, spread = x.mean(axis=0), x.std(axis=0)
    keep = spread > 1e-12
    xs = (x[:, keep] - mean[keep]) / spread[keep]
    cs = (candidates[:, keep] - mean[keep]) / spread[keep]
    centre = float(y.mean())
    yc = y - centre
    n, d = xs.shape
    if d == 0:
        return np.full(len(candidates), centre)
    if n < d:
        coef = xs.T @ np.linalg.solve(xs @ xs.T + alpha * np.eye(n), yc)
    else:
        coef = np.linalg.solve(xs.T @ xs + alpha * np.eye(d), xs.T @ yc)
    prediction: np.ndarray = cs @ coef + centre
    return prediction
