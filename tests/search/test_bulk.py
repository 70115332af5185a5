"""``BulkRDBStorage`` reads the very trials Optuna's ``RDBStorage`` reads, on SQLite and
PostgreSQL, whatever the question (states, unfinished ids, ids above a mark)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from nas_skip.searching import _bulk, make_storage
from nas_skip.searching._bulk import BulkRDBStorage

optuna.logging.set_verbosity(optuna.logging.WARNING)


def fields(trial: FrozenTrial) -> str:
    """Every field of the trial, in a form where equal NaNs compare equal (and dicts in any
    order: Optuna's reader orders attributes as the database's index does)."""

    def shown(value: Any) -> str:
        if isinstance(value, dict):
            return repr(sorted((repr(k), shown(v)) for k, v in value.items()))
        return repr(value)

    return shown(vars(trial))


def fill(study: optuna.Study) -> None:
    """Trials of every state, value kind, parameter kind and attribute shape."""
    choices = CategoricalDistribution([None, True, 1, 2.5, "a", "long " * 40])
    dists = {"x": FloatDistribution(-1e300, 1e300), "lr": FloatDistribution(1e-5, 1, log=True),
             "s": FloatDistribution(0, 1, step=0.25), "n": IntDistribution(1, 1024, log=True),
             "k": IntDistribution(0, 10, step=2), "c": choices}  # fmt: skip
    for i in range(12):
        trial = study.ask()
        for name, dist in dists.items():
            if (i + len(name)) % 4:  # each trial its own subset of the parameters
                trial._suggest(name, dist)
        trial.set_user_attr("nested", {"a": [1, {"b": None}], "u": "ü\n\"'", "i": i})
        trial.set_user_attr("big", "g" * 5000)
        study._storage.set_trial_system_attr(trial._trial_id, "sys", [i, "x"])
        for step, value in enumerate([0.5, math.inf, -math.inf, math.nan][: i % 5]):
            study._storage.set_trial_intermediate_value(trial._trial_id, step, value)
        values = [[0.25, 1.0], [math.inf, -math.inf], [-0.0, 1e-300]][i % 3]
        state = [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, None][i % 4]
        if state == TrialState.COMPLETE:
            study.tell(trial, values)
        elif state is not None:
            study.tell(trial, state=state)
    study.enqueue_trial({"x": 0.5}, user_attrs={"queued": True})  # WAITING


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'b.db'}"
    request.getfixturevalue("study_name")
    return str(request.getfixturevalue("postgres"))


def test_the_same_trials_as_optunas_reader(url: str, study_name: str) -> None:
    study = optuna.create_study(storage=make_storage(url), study_name=study_name,
                                directions=["maximize", "minimize"])  # fmt: skip
    fill(study)
    optunas, ours = RDBStorage(url), BulkRDBStorage(url)
    sid = study._study_id
    ids = [t._trial_id for t in optunas.get_all_trials(sid)]
    questions: list[tuple[Any, set[int], int]] = [
        (None, set(), -1),
        ((TrialState.COMPLETE,), set(), -1),
        ((TrialState.RUNNING, TrialState.WAITING), set(), -1),
        (None, set(), ids[5]),
        (None, {ids[1], ids[3], ids[7]}, ids[6]),
        (None, {ids[1], ids[9]}, ids[6]),  # 9 is above the mark: read once
        ((TrialState.PRUNED,), {ids[1]}, ids[-1]),
        (None, set(), ids[-1]),  # nothing newer
    ]
    for states, included, above in questions:
        want = optunas._get_trials(sid, states, included, above)
        got = ours._get_trials(sid, states, included, above)
        assert [fields(t) for t in got] == [fields(t) for t in want], (states, included, above)
    assert len(ours.get_all_trials(sid)) == 13
    with pytest.raises(KeyError):
        ours._get_trials(sid + 10_000, None, set(), -1)


def test_more_unfinished_ids_than_one_query_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A study with thousands of trials left RUNNING (a cache asking about each): the ids
    are not written into one statement; the answer is the same. (The bound, 900, is
    lowered to 20 here to keep the study small.)"""
    assert _bulk._MAX_IDS == 900
    monkeypatch.setattr(_bulk, "_MAX_IDS", 20)
    url = f"sqlite:///{tmp_path / 'r.db'}"
    study = optuna.create_study(storage=make_storage(url), study_name="r")
    for _ in range(90):
        study.ask().suggest_int("x", 0, 3)
    optunas, ours = RDBStorage(url), BulkRDBStorage(url)
    ids = [t._trial_id for t in optunas.get_all_trials(study._study_id)]
    included, above = set(ids[1:-10]), ids[-20]  # 69 named, 19 of them above the mark
    want = optunas._get_trials(study._study_id, None, included, above)
    got = ours._get_trials(study._study_id, None, included, above)
    assert [fields(t) for t in got] == [fields(t) for t in want]
    assert len(got) == len(ids) - 1


def test_searches_read_through_it(tmp_path: Path) -> None:
    storage = make_storage(f"sqlite:///{tmp_path / 's.db'}")
    assert isinstance(storage._backend, BulkRDBStorage)  # type: ignore[attr-defined]
