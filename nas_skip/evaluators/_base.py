"""What every evaluator is: a genotype and its choices in, metrics (and maybe weights) out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nas_skip.errors import NasSkipError

if TYPE_CHECKING:
    import torch

    from nas_skip.genotype import Genotype
    from nas_skip.train import EpochMetrics

#: (epoch, metrics) -> None, called after each epoch; may raise ``optuna.TrialPruned``
Reporter = Callable[[int, "EpochMetrics"], None]

#: The metrics a trial stores as user attributes, when its evaluator gives them
METRICS = ("val_accuracy", "test_accuracy", "train_error", "val_loss", "test_loss",
           "latency_ms", "train_seconds", "epochs", "val_bpc", "test_bpc")  # fmt: skip


class EvaluatorError(NasSkipError):
    """An evaluator cannot be made or cannot evaluate this space; the message says why."""


@dataclass(frozen=True)
class TrialInput:
    """What an evaluator is given for one trial."""

    genotype: Genotype  # the network, validated
    hparams: Mapping[str, Any]  # the space's training hyperparameters (``train:*`` choices)
    params: Mapping[str, Any]  # every choice of the trial by name (``edge:0->2`` ...)
    seed: int  # the trial's seed: weights, batch order, or which seed of a table
    report: Reporter | None = None  # per-epoch progress, for pruning


@dataclass
class Evaluation:
    """What an evaluator returns: metrics by name (``val_accuracy`` at least, see
    :data:`METRICS`), weights worth keeping, and attributes of its own."""

    metrics: dict[str, float]
    model: torch.nn.Module | None = None  # trained weights to keep; None: nothing to keep
    attrs: dict[str, Any] = field(default_factory=dict)  # extra user attributes


class Evaluator(ABC):
    """How a trial measures a sampled genotype. Both backends call the same evaluator.

    An evaluator is made for one search (:func:`nas_skip.evaluators.make_evaluator`), and
    refuses there a space it cannot evaluate. ``name`` is recorded on the study (a study
    is evaluated one way only); what else it needs and gives (its dataset, its budget,
    whether it reports each epoch) is its :class:`~nas_skip.evaluators.EvaluatorSpec`.
    """

    name: str = ""

    @abstractmethod
    def __call__(self, trial: TrialInput) -> Evaluation:
        """Evaluate one trial.

        Raises:
            optuna.TrialPruned: ``trial.report`` stopped it.
            nas_skip.train.TrialDiverged: training diverged (recorded PRUNED).
            Exception: anything else fails the trial.
        """
