"""Evaluators: what a trial does with a sampled genotype, one interface for every kind.

``train`` (the default) builds and trains the genotype on the search's dataset;
``nb201-cifar10``, ``nb201-cifar100`` and ``nb201-imagenet16`` look a NAS-Bench-201 cell up
in the published tables instead. Both backends call the same :class:`Evaluator`, and the
search around it (dedup, notes, drawings, progress, report, export) is the same for all.
A study records its evaluator: a rerun with another one is refused.

This module imports neither torch nor the tables: :data:`EVALUATORS` says what each
evaluator needs before one is made with :func:`make_evaluator`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nas_skip.evaluators._base import (
    METRICS,
    Evaluation,
    Evaluator,
    EvaluatorError,
    Reporter,
    TrialInput,
)

if TYPE_CHECKING:
    from nas_skip.spaces import Space, SpaceSpec


@dataclass(frozen=True)
class EvaluatorSpec:
    """What an evaluator needs and gives, known without making one."""

    name: str
    doc: str  # one line, for --help and the README
    dataset: str | None  # the dataset it binds spaces to; None: the space's own or --dataset
    epochs: int | None  # the fixed budget its values stand for; None: --epochs
    reports_epochs: bool  # per-epoch reports, so pruning applies
    family: str | None = None  # the one skeleton family it can evaluate; None: any


EVALUATORS: dict[str, EvaluatorSpec] = {
    spec.name: spec
    for spec in (
        EvaluatorSpec("train", "build and train each genotype on the dataset", None, None, True),
        EvaluatorSpec(
            "nb201-cifar10",
            "NAS-Bench-201's CIFAR-10 table (validation accuracy, %)",
            "cifar10",
            200,
            False,
            "nb201",
        ),  # fmt: skip
        EvaluatorSpec(
            "nb201-cifar100",
            "NAS-Bench-201's CIFAR-100 table (validation accuracy, %)",
            "cifar100",
            200,
            False,
            "nb201",
        ),  # fmt: skip
        EvaluatorSpec(
            "nb201-imagenet16",
            "NAS-Bench-201's ImageNet16-120 table (validation accuracy, %)",
            "imagenet16_120",
            200,
            False,
            "nb201",
        ),  # fmt: skip
        EvaluatorSpec(
            "objective",
            "your own function (nas_skip.search(objective=fn)): it trains and scores a model",
            None,
            None,
            True,
        ),  # fmt: skip
    )
}
DEFAULT_EVALUATOR = "train"

#: (space, epochs, threads, data_dir, train_error) -> Evaluator, for evaluators registered
#: from Python (:func:`register_evaluator`)
Factory = Callable[["Space", int, int, "str | None", bool], Evaluator]
_FACTORIES: dict[str, Factory] = {}


def register_evaluator(spec: EvaluatorSpec, factory: Factory) -> None:
    """Add an evaluator under ``spec.name`` (the benchmarks' stub evaluator is one).

    Worker processes are spawned: register at import time of a module they import too
    (the script's ``__main__`` is re-imported by the local backend's workers).
    """
    if spec.name in EVALUATORS and spec.name not in _FACTORIES:
        raise EvaluatorError(f"evaluator {spec.name!r} is built in; choose another name")
    EVALUATORS[spec.name] = spec
    _FACTORIES[spec.name] = factory


def check_family(name: str, spec: SpaceSpec) -> None:
    """Refuse a space whose skeleton family evaluator ``name`` cannot evaluate.

    Raises:
        EvaluatorError: naming the space, its family and the space to use.
    """
    family = EVALUATORS[name].family
    if family is not None and spec.family != family:
        raise EvaluatorError(
            f"--evaluator {name}: space {spec.name!r} is not a NAS-Bench-201 cell space "
            f"(family {spec.family!r}); use --space nb201"
        )


def make_evaluator(
    name: str,
    space: Space,
    epochs: int,
    threads: int = 1,
    data_dir: str | None = None,
    train_error: bool = False,
    objective: Any = None,
    n_values: int = 1,
    device: str = "auto",
    compile: bool = False,
) -> Evaluator:
    """The evaluator ``name`` for trials of ``space`` (bound to its dataset).

    Args:
        name: a key of :data:`EVALUATORS`.
        space: the search's space.
        epochs: the training budget (``train`` only).
        threads: torch threads per trial (``train`` only).
        data_dir: local dataset files (``train`` only).
        train_error: also measure the error on the whole training split (``train`` only;
            a fifth to a third of a short trial on CPU).
        objective: the user's function, or its cloudpickle bytes (``objective`` only).
        n_values: how many values that function returns (``objective`` only).
        device: where to train (``train`` only): auto, cpu, cuda or cuda:N.
        compile: ``torch.compile`` each network (``train`` only).

    Raises:
        EvaluatorError: an unknown name, a space the evaluator cannot evaluate, or a
            missing optional package (the message names the extra to install).
        SpaceError: a ``train:`` value of the space that no training run accepts.
    """
    if name not in EVALUATORS:
        raise EvaluatorError(f"unknown evaluator {name!r} (evaluators: {', '.join(EVALUATORS)})")
    if name == "objective":
        from nas_skip.evaluators._objective import ObjectiveEvaluator

        return ObjectiveEvaluator(space, n_values, objective, threads, data_dir)
    if name in _FACTORIES:
        return _FACTORIES[name](space, epochs, threads, data_dir, train_error)
    if name == "train":
        from nas_skip.evaluators._train import TrainEvaluator

        return TrainEvaluator(space, epochs, threads, data_dir, train_error, device, compile)
    from nas_skip.evaluators._nb201 import NB201Evaluator

    return NB201Evaluator(name.removeprefix("nb201-"), space)


__all__ = [
    "DEFAULT_EVALUATOR",
    "EVALUATORS",
    "METRICS",
    "Evaluation",
    "Evaluator",
    "EvaluatorError",
    "EvaluatorSpec",
    "Reporter",
    "TrialInput",
    "check_family",
    "make_evaluator",
    "register_evaluator",
]
