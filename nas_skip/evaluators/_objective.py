"""``objective``: your own function scores each network (``nas_skip.search(objective=)``).

The function is called as ``objective(model, dataset, hparams, report)`` with the trial's
network freshly built (seeded with the trial's seed), the search's dataset (a
:class:`nas_skip.data.Dataset` of tensors: ``x_train``, ``y_train``, ``x_val`` ...), the
trial's training hyperparameters (the space's ``train:`` choices, ``lr`` ...) and
``report(epoch, value)``, which feeds the pruner as the built-in training's per-epoch
score does. It returns a number, or a tuple of numbers (one per direction). It is one more
evaluator: the search around it (dedup, drawings, notes, kept weights, report, export) is
the same as for ``train``. It travels to worker processes and Ray workers by value
(cloudpickle, as Ray ships trainables), so a function defined in a notebook works too;
it is never stored in the study, only its name.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from nas_skip.evaluators._base import Evaluation, Evaluator, EvaluatorError, TrialInput

if TYPE_CHECKING:
    from nas_skip.data import Dataset
    from nas_skip.spaces import Space


#: the objective names of a function's values: ``objective`` for one, else
#: ``objective_0``, ``objective_1``, ...
def objective_names(n: int) -> tuple[str, ...]:
    """The names a search gives the ``n`` values a user's objective returns."""
    return ("objective",) if n == 1 else tuple(f"objective_{i}" for i in range(n))


@dataclass(frozen=True)
class Reported:
    """What a report of the user's function hands the pruner (as training's per-epoch
    metrics do: the pruner reads ``value(objective)``, the value to prune on)."""

    val_accuracy: float

    def value(self, objective: str) -> float:
        return self.val_accuracy


class ObjectiveEvaluator(Evaluator):
    """Builds each genotype and scores it with the user's function.

    Args:
        space: the search's space (its dataset and domain).
        n_values: how many values the function returns (the study's directions).
        function: the function, or its cloudpickle bytes.
        threads: torch threads per trial.
        data_dir: local files of the datasets read through torchvision.
    """

    name = "objective"

    def __init__(self, space: Space, n_values: int, function: Any, threads: int = 1,
                 data_dir: str | None = None) -> None:  # fmt: skip
        if function is None:
            raise EvaluatorError("--evaluator objective: give the function, as "
                                 "nas_skip.search(..., objective=fn) does")  # fmt: skip
        self.dataset, self.domain, self.n_values = space.dataset, space.domain, n_values
        self.threads, self.data_dir, self._function = threads, data_dir, function

    @cached_property
    def function(self) -> Any:
        if isinstance(self._function, bytes):  # this process's own search made the bytes
            import cloudpickle

            return cloudpickle.loads(self._function)
        return self._function

    @cached_property
    def data(self) -> Dataset:
        """The dataset, loaded once per process (a worker evaluates many trials)."""
        from nas_skip.data import load_dataset

        return load_dataset(self.dataset, self.domain, self.data_dir)

    def __call__(self, trial: TrialInput) -> Evaluation:
        import torch

        from nas_skip.compile import build

        torch.set_num_threads(self.threads)
        torch.manual_seed(trial.seed)
        model = build(trial.genotype)

        def report(epoch: int, value: float) -> None:
            if trial.report is not None:
                trial.report(int(epoch), Reported(float(value)))  # type: ignore[arg-type]

        out = self.function(model, self.data, dict(trial.hparams), report)
        values = [out] if isinstance(out, numbers.Real) else list(out) if isinstance(
            out, tuple | list) else None  # fmt: skip
        if (
            values is None
            or len(values) != self.n_values
            or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values)
        ):
            shown = f"{type(out).__name__} {str(out)[:60]}"
            raise TypeError(f"the objective returned {shown}; it must return "
                            f"{self.n_values} number(s), one per direction")  # fmt: skip
        names = objective_names(self.n_values)
        metrics = {n: float(v) for n, v in zip(names, values, strict=True)}
        if not all(math.isfinite(v) for v in metrics.values()):
            from nas_skip.train import TrialDiverged

            raise TrialDiverged(f"the objective returned {values}")
        return Evaluation(metrics, model.eval())  # type: ignore[arg-type]
