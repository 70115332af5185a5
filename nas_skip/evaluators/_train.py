"""``train``: build the genotype and train it on the search's dataset (the default)."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from nas_skip.evaluators._base import METRICS, Evaluation, Evaluator, TrialInput

if TYPE_CHECKING:
    from nas_skip.data import Dataset


class TrainEvaluator(Evaluator):
    """Trains each genotype for ``epochs`` with the trial's hyperparameters and seed.

    Args:
        dataset: a registered dataset name (the space's, already checked against it).
        domain: the space's domain (how the dataset is read).
        epochs: the training budget of every trial.
        threads: torch threads per trial.
        data_dir: local files of the datasets read through torchvision.
    """

    name = "train"

    def __init__(self, dataset: str, domain: str, epochs: int, threads: int = 1,
                 data_dir: str | None = None) -> None:  # fmt: skip
        self.dataset, self.domain, self.epochs = dataset, domain, epochs
        self.threads, self.data_dir = threads, data_dir

    @cached_property
    def data(self) -> Dataset:
        """The dataset, loaded once per process (a worker evaluates many trials)."""
        from nas_skip.data import load_dataset

        return load_dataset(self.dataset, self.domain, self.data_dir)

    def __call__(self, trial: TrialInput) -> Evaluation:
        from nas_skip.train import TrainConfig, fit

        config = TrainConfig(epochs=self.epochs, seed=trial.seed, threads=self.threads,
                             **trial.hparams)  # fmt: skip
        result, model = fit(trial.genotype, self.data, config, trial.report)
        metrics = result.to_dict()
        return Evaluation({name: metrics[name] for name in METRICS}, model)
