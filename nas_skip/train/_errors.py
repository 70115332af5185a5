"""The trainer's errors: a bad request (:class:`TrainError`) and a run that blew up."""

from __future__ import annotations

from nas_skip.errors import NasSkipError


class TrainError(NasSkipError, ValueError):
    """A training request is invalid: a config field out of range, an unavailable device,
    or a genotype whose input or output does not fit the dataset."""


class TrialDiverged(NasSkipError):
    """The loss became NaN or infinite; ``epoch`` (from 1) is the epoch where it was seen.

    A search treats this as a failed (or pruned) trial rather than a crash: the genotype
    and its hyperparameters were fine as input, they just did not train.
    """

    def __init__(self, message: str, epoch: int) -> None:
        super().__init__(message)
        self.epoch = epoch

    def __reduce__(self) -> tuple[type[TrialDiverged], tuple[str, int]]:
        # Ray and multiprocessing pickle exceptions; the default rebuilds from args only
        return type(self), (str(self), self.epoch)
