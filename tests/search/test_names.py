"""Objectives read as what they measure: mIoU for segmentation, in the summary table,
metrics.json and optuna-dashboard's metric names (set on new and on resumed studies)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from nas_skip.searching import SearchConfig, summary_table
from nas_skip.searching._export import export_metrics
from nas_skip.searching._names import score_name
from nas_skip.searching._storage import open_study
from nas_skip.spaces import load_space

optuna.logging.set_verbosity(optuna.logging.WARNING)


def seg_config(tmp_path: Path, storage: str, **kw: object) -> SearchConfig:
    return SearchConfig(space="unet", storage=storage, artifacts=str(tmp_path / "a"),
                        epochs=1, **kw)  # type: ignore[arg-type]  # fmt: skip


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_new_studies_name_their_metrics(tmp_path: Path, kind: str) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}" if kind == "sqlite" else str(tmp_path / "s.log")
    config = seg_config(tmp_path, storage, objectives=("accuracy", "params"))
    study = open_study(config, "unet", "shapes_seg", "unet").study
    assert study.metric_names == ["mIoU", "params"]
    digits = SearchConfig(space="deep_mlp", storage=storage, artifacts=str(tmp_path / "a"))
    assert open_study(digits, "deep_mlp", "mnist1d", "deep_mlp").study.metric_names == ["accuracy"]


def test_a_resumed_study_without_names_gets_them(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    config = seg_config(tmp_path, storage)
    name = config.study_name("unet", "shapes_seg")
    old = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    assert old.metric_names is None  # as nas-skip made studies before
    assert open_study(config, "unet", "shapes_seg", "unet").study.metric_names == ["mIoU"]


def segmentation_study(tmp_path: Path) -> optuna.Study:
    """A segmentation study (unet on shapes_seg, accuracy and params) of two trials whose
    values stand in for trained ones: nothing trains."""
    storage = f"sqlite:///{tmp_path / 'seg.db'}"
    config = seg_config(tmp_path, storage, objectives=("accuracy", "params"), sampler="nsga2")
    study = open_study(config, "unet", "shapes_seg", "unet").study
    space = load_space("unet")
    for i in range(2):
        trial = study.ask()
        g = space.sample(trial)
        for key, value in (("genotype", g.dumps()), ("hash", g.canonical_hash()),
                           ("params", 1000 * (i + 1)), ("val_accuracy", 0.5 + i / 10),
                           ("test_accuracy", 0.4)):  # fmt: skip
            trial.set_user_attr(key, value)
        study.tell(trial, [0.5 + i / 10, 1000 * (i + 1)])
    return study


def test_the_summary_table_shows_miou_and_each_column_once(tmp_path: Path) -> None:
    study = segmentation_study(tmp_path)
    table = summary_table(study, ("accuracy", "params"))
    assert [c.header for c in table.columns] == ["trial", "mIoU", "params", "hash", "weights"]


def test_export_metrics_name_the_segmentation_score(tmp_path: Path) -> None:
    study = segmentation_study(tmp_path)
    metrics = export_metrics(study, study.trials[1], retrained=False)
    assert metrics["metric"] == "mIoU" and metrics["values"] == {"mIoU": 0.6, "params": 2000}
    assert metrics["val_miou"] == 0.6 and metrics["test_miou"] == 0.4
    assert "val_accuracy" not in metrics and "test_accuracy" not in metrics


def test_score_names() -> None:
    assert score_name("shapes_seg") == "mIoU"
    assert [score_name(d) for d in ("shapes", "mnist1d", "digits", None, "nope")] == [
        "accuracy"
    ] * 5
