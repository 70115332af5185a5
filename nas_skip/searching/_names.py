"""What people read for each objective: ``accuracy`` says mIoU when the data is segmentation.

The objective is ``accuracy`` in flags, configs and the study's ``objectives`` attribute
(the evaluator's ``val_accuracy``, which holds mIoU for segmentation); everything shown to
people says what it measures: the summary table, the report, ``metrics.json`` and
optuna-dashboard, through the study's Optuna metric names (``study.set_metric_names``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import optuna

from nas_skip.train._metrics import SCORE_NAMES


def score_name(dataset: str | None) -> str:
    """``"mIoU"`` for a segmentation dataset, else ``"accuracy"`` (an unknown dataset too)."""
    from nas_skip.data import DATASETS

    info = DATASETS.get(dataset or "")
    return SCORE_NAMES.get(info.task if info is not None else "", "accuracy")


def objective_labels(objectives: Sequence[str], dataset: str | None) -> list[str]:
    """The objectives as people read them: ``accuracy`` is the dataset's score name."""
    score = score_name(dataset)
    return [score if o == "accuracy" else o for o in objectives]


def study_labels(study: optuna.Study) -> list[str]:
    """The study's objectives as people read them, one per direction (``objective<i>``
    for those a study made outside nas-skip leaves unnamed)."""
    names = list(study.user_attrs.get("objectives") or ["accuracy"])
    names += [f"objective{i}" for i in range(len(names), len(study.directions))]
    return objective_labels(names[: len(study.directions)], study.user_attrs.get("dataset"))


def name_metrics(study: optuna.Study, labels: Sequence[str]) -> None:
    """Give the study Optuna's metric names, so optuna-dashboard shows ``accuracy`` /
    ``mIoU`` / ``params`` rather than "Objective 0"; a study made before nas-skip named
    them gets them now. Written only when they differ (a study attribute)."""
    if study.metric_names == list(labels):
        return
    with warnings.catch_warnings():  # set_metric_names is marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(list(labels))
