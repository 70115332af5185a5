"""``--keep K``: exactly the best K trials' weights (or the Pareto front) stay on disk, in
real searches and real storages; ids read from storage never reach outside the store."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import optuna
import optuna_dashboard
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from nas_skip.searching import SearchConfig, SearchError, search, summary_table, top_trials
from nas_skip.searching._export import export_trial
from nas_skip.searching._storage import StudyHandle
from nas_skip.searching._weights import (
    artifact_path,
    best_numbers,
    kept_weights,
    prune_weights,
    removed_weights,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _search(tmp_path: Path, space: Path, **kw: Any) -> Any:
    config = SearchConfig(
        space=str(space),
        storage=kw.pop("storage", f"sqlite:///{tmp_path / 'study.db'}"),
        artifacts=str(tmp_path / "artifacts"),
        epochs=kw.pop("epochs", 1),
        seed=kw.pop("seed", 0),
        sampler=kw.pop("sampler", "random"),
        pruning=False,
        **kw,
    )
    return search(config, progress=False)


def weight_files(folder: Path) -> set[str]:
    """The artifact files that are not topology drawings."""
    return {p.name for p in folder.iterdir() if not p.read_bytes().startswith(b"<?xml")}


def kept_numbers(study: optuna.Study) -> set[int]:
    removed = removed_weights(study)
    return {t.number for t in study.get_trials() if kept_weights(t, removed) is not None}


def test_keep_k_keeps_exactly_the_best_k_and_deletes_the_rest(
    tmp_path: Path, tiny_space: Path
) -> None:
    result = _search(tmp_path, tiny_space, trials=10, keep=2)
    study = result.study
    best = {t.number for t in top_trials(study, 2)}
    assert kept_numbers(study) == best
    files = weight_files(tmp_path / "artifacts")
    removed = removed_weights(study)
    assert files == {study.trials[n].user_attrs["weights_artifact"] for n in best}
    # better trials came after some that were kept for a while: theirs were deleted
    assert removed and not files & removed
    for t in study.trials:
        if t.user_attrs.get("weights_artifact") in removed:
            note = optuna_dashboard.get_note(optuna.trial.Trial(study, t._trial_id))
            assert "weights removed" in note and "no longer among the best 2" in note
    table = summary_table(study, ("accuracy",))
    weights = list(table.columns[-1].cells)
    assert weights[:2] == ["kept", "kept"] and set(weights[2:]) <= {""}


def test_a_removed_trial_exports_only_by_retraining(tmp_path: Path, tiny_space: Path) -> None:
    result = _search(tmp_path, tiny_space, trials=10, keep=1)
    study = result.study
    removed = removed_weights(study)
    gone = next(t for t in study.trials if t.user_attrs.get("weights_artifact") in removed)
    out = tmp_path / "out"
    with pytest.raises(SearchError, match=rf"--trial {gone.number}: its weights were not kept"):
        export_trial(result.storage_url, result.study_name, out, gone.number)
    done = export_trial(result.storage_url, result.study_name, out, gone.number,
                        retrain_epochs=1)  # fmt: skip
    assert done.retrained and (out / "weights.pt").exists()
    assert "weights_artifact" not in (out / "metrics.json").read_text()  # no stale claim


def test_a_smaller_keep_on_rerun_trims_what_was_kept(tmp_path: Path, tiny_space: Path) -> None:
    _search(tmp_path, tiny_space, trials=6, keep=3, study="s")
    again = _search(tmp_path, tiny_space, trials=6, keep=1, study="s")
    assert kept_numbers(again.study) == {top_trials(again.study, 1)[0].number}
    assert len(weight_files(tmp_path / "artifacts")) == 1


def test_several_objectives_keep_exactly_the_pareto_front(
    tmp_path: Path, tiny_space: Path
) -> None:
    result = _search(tmp_path, tiny_space, trials=10, keep=1, sampler="nsga2",
                     objectives=("accuracy", "params"))  # fmt: skip
    study = result.study
    front = {t.number for t in top_trials(study, 50)}
    assert kept_numbers(study) == front
    assert len(weight_files(tmp_path / "artifacts")) == len(front)


def test_parallel_workers_keep_exactly_the_best_k(tmp_path: Path, tiny_space: Path) -> None:
    result = _search(tmp_path, tiny_space, trials=10, keep=2, workers=2)
    best = {t.number for t in top_trials(result.study, 2)}
    assert kept_numbers(result.study) == best
    assert len(weight_files(tmp_path / "artifacts")) == 2


def _study_with_weights(tmp_path: Path, ids: list[str]) -> StudyHandle:
    """A study whose trials claim the weights artifacts ``ids`` (trial i: value i)."""
    url = f"sqlite:///{tmp_path / 'made.db'}"
    study = optuna.create_study(study_name="made", storage=url, direction="maximize")
    for i, artifact in enumerate(ids):
        study.add_trial(
            create_trial(
                params={"w": 8},
                distributions={"w": CategoricalDistribution([8, 16])},
                value=float(i),
                user_attrs={"weights_artifact": artifact},
            )
        )
    store = tmp_path / "store"
    store.mkdir()
    study.set_user_attr("artifacts", str(store))
    return StudyHandle(study, url, store)


def test_ids_from_storage_never_delete_outside_the_store(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    ours = str(uuid.uuid4())
    hostile = ["../outside.txt", str(outside), "../" + ours, ours.upper()]
    handle = _study_with_weights(tmp_path, [ours, *hostile, str(uuid.uuid4())])
    (handle.artifact_dir / ours).write_bytes(b"weights")
    (handle.artifact_dir / "outside.txt").write_text("not an artifact id")
    assert prune_weights(handle, ("accuracy",), ["maximize"], keep=1) == [0]
    assert not (handle.artifact_dir / ours).exists()  # trial 0 fell out: deleted
    assert outside.read_text() == "keep me"
    assert (handle.artifact_dir / "outside.txt").exists()
    study = handle.study
    assert removed_weights(study) == {ours}
    assert kept_numbers(study) == {5}  # the best; the hostile ids never counted as weights
    for bad in hostile:
        assert artifact_path(handle.artifact_dir, bad) is None
    assert artifact_path(handle.artifact_dir, ours) == handle.artifact_dir.resolve() / ours


def test_ranking_counts_running_trials_of_live_workers(tmp_path: Path) -> None:
    handle = _study_with_weights(tmp_path, [str(uuid.uuid4()) for _ in range(3)])
    # a trial still running with its metrics stored outranks the complete ones
    trial = handle.study.ask()
    trial.set_user_attr("worker", "somewhere-else:1")  # another host: alive as far as we know
    trial.set_user_attr("val_accuracy", 9.0)
    trial.set_user_attr("weights_artifact", str(uuid.uuid4()))
    assert prune_weights(handle, ("accuracy",), ["maximize"], keep=2) == [0, 1]
    assert kept_numbers(handle.study) == {2, trial.number}
    assert handle.study.trials[trial.number].state == TrialState.RUNNING


def test_ties_keep_the_earlier_trial_and_fronts_keep_equals() -> None:
    values = {0: [0.5], 1: [0.9], 2: [0.9], 3: [0.1]}
    assert best_numbers(values, ["maximize"], 2) == {1, 2}
    assert best_numbers({**values, 4: [0.9]}, ["maximize"], 2) == {1, 2}
    front = {0: [0.9, 10.0], 1: [0.9, 10.0], 2: [0.5, 5.0], 3: [0.4, 6.0]}
    assert best_numbers(front, ["maximize", "minimize"], 1) == {0, 1, 2}
