"""``train``: build the genotype and train it on the search's dataset (the default)."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from nas_skip.evaluators._base import METRICS, Evaluation, Evaluator, TrialInput

if TYPE_CHECKING:
    from nas_skip.data import Dataset
    from nas_skip.spaces import Space


class TrainEvaluator(Evaluator):
    """Trains each genotype for ``epochs`` with the trial's hyperparameters and seed.

    Args:
        space: the search's space (its dataset, domain and ``train:`` section).
        epochs: the training budget of every trial.
        threads: torch threads per trial.
        data_dir: local files of the datasets read through torchvision.
        train_error: also evaluate the whole training split after the last epoch.
        device: where to train: auto, cpu, cuda or cuda:N.
        compile: ``torch.compile`` each network (a compile per trial: long trials only).

    Raises:
        SpaceError: a value of the space's ``train:`` section (a choice, or either end of
            a range) that :class:`nas_skip.train.TrainConfig` refuses.
    """

    name = "train"

    def __init__(self, space: Space, epochs: int, threads: int = 1,
                 data_dir: str | None = None, train_error: bool = False,
                 device: str = "auto", compile: bool = False) -> None:  # fmt: skip
        check_train(space)
        self.dataset, self.domain, self.epochs = space.dataset, space.domain, epochs
        self.device, self.compile = device, compile
        self.threads, self.data_dir, self.train_error = threads, data_dir, train_error

    @cached_property
    def data(self) -> Dataset:
        """The dataset, loaded once per process (a worker evaluates many trials)."""
        from nas_skip.data import load_dataset

        return load_dataset(self.dataset, self.domain, self.data_dir)

    def __call__(self, trial: TrialInput) -> Evaluation:
        from nas_skip.train import TrainConfig, fit

        config = TrainConfig(epochs=self.epochs, seed=trial.seed, threads=self.threads,
                             train_error=self.train_error, device=self.device,
                             compile=self.compile,
                             **trial.hparams)  # fmt: skip
        result, model = fit(trial.genotype, self.data, config, trial.report)
        metrics = result.to_dict()
        # None: a metric of another task (bits per character are a language model's)
        return Evaluation({n: metrics[n] for n in METRICS if metrics.get(n) is not None}, model)


def check_train(space: Space) -> None:
    """Refuse a ``train:`` value no :class:`~nas_skip.train.TrainConfig` accepts, before any
    trial runs (a negative ``lr`` would otherwise fail every trial)."""
    from nas_skip.spaces import Choice, SpaceError
    from nas_skip.train import TrainConfig, TrainError

    for key, dim in space.spec.train.items():
        values = dim.values if isinstance(dim, Choice) else (dim.low, dim.high)
        for value in values:
            try:
                TrainConfig(**{key: value})
            except TrainError as exc:
                raise SpaceError(f"{space.spec.path}: train.{key}: {exc}") from None
