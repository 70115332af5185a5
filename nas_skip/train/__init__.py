"""Training and measuring a genotype: ``train(genotype, dataset, config) -> TrainResult``.

Everything a search trial needs from one run: per-epoch validation reports (for pruning),
final validation and test scores, training error, parameters, FLOPs and latency.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nas_skip.train._config import TrainConfig
    from nas_skip.train._data import check_fit
    from nas_skip.train._errors import TrainError, TrialDiverged
    from nas_skip.train._loop import Callback, epoch_progress, fit, train, train_to_dir
    from nas_skip.train._metrics import EpochMetrics, TrainResult

#: where each name lives: a search process that only waits reads TrainConfig and the
#: metric names, and loads no torch (the training loop imports it)
_MODULES = {"TrainConfig": "_config", "check_fit": "_data", "TrainError": "_errors",
            "TrialDiverged": "_errors", "Callback": "_loop", "epoch_progress": "_loop",
            "fit": "_loop", "train": "_loop", "train_to_dir": "_loop",
            "EpochMetrics": "_metrics", "TrainResult": "_metrics"}  # fmt: skip

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


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return getattr(importlib.import_module(f"nas_skip.train.{_MODULES[name]}"), name)
    raise AttributeError(f"module 'nas_skip.train' has no attribute {name!r}")
