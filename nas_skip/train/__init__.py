"""Training and measuring a genotype: ``train(genotype, dataset, config) -> TrainResult``.

Everything a search trial needs from one run: per-epoch validation reports (for pruning),
final validation and test scores, training error, parameters, FLOPs and latency.
"""

from nas_skip.train._config import TrainConfig
from nas_skip.train._data import check_fit
from nas_skip.train._errors import TrainError, TrialDiverged
from nas_skip.train._loop import Callback, epoch_progress, fit, train, train_to_dir
from nas_skip.train._metrics import EpochMetrics, TrainResult

__all__ = [
    "Callback",
    "EpochMetrics",
    "TrainConfig",
    "TrainError",
    "TrainResult",
    "TrialDiverged",
    "check_fit",
    "epoch_progress",
    "fit",
    "train",
    "train_to_dir",
]
