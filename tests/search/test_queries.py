"""What a search asks of its study per trial: SQL on RDB storages, the same answers as a
read of every trial, on SQLite, PostgreSQL and a journal file."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState, create_trial

from nas_skip.searching import make_storage
from nas_skip.searching._queries import (
    CachedStorage,
    StudyQueries,
    ensure_indexes,
    rdb_of,
    set_user_attrs,
)
from nas_skip.searching._storage import counts

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _populate(study: optuna.Study) -> None:
    """Trials in every state, duplicates, diverged ones, non-finite values, kept weights."""
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}

    def add(state: TrialState, value: float | None, **attrs: object) -> None:
        study.add_trial(create_trial(state=state, value=value, params={"x": 0.5},
                                     distributions=dist, user_attrs=attrs))  # fmt: skip

    add(TrialState.COMPLETE, 0.5, dedup_key="a", weights_artifact="w0")
    add(TrialState.COMPLETE, 0.5, dedup_key="a", duplicate_of=0)  # a duplicate of 0
    add(TrialState.COMPLETE, 0.9, dedup_key="b")
    add(TrialState.COMPLETE, math.inf, dedup_key="c")  # stored, but not a finite best
    add(TrialState.PRUNED, None, dedup_key="d", pruned_reason="diverged: loss nan")
    add(TrialState.PRUNED, None, dedup_key="e", pruned_reason="pruned after epoch 2")
    add(TrialState.FAIL, None, dedup_key="f", fail_reason="boom")
    add(TrialState.RUNNING, None, dedup_key="g", worker="h:1")
    add(TrialState.WAITING, None)
    study._storage.set_study_system_attr(study._study_id, "weights_removed:w0", 0)
    study._storage.set_study_system_attr(study._study_id, "weights_removedXw1", 0)  # no '_'


@pytest.fixture(params=["sqlite", "journal", "postgresql"])
def study(request: pytest.FixtureRequest, tmp_path: Path) -> optuna.Study:
    url = {"sqlite": f"sqlite:///{tmp_path / 's.db'}", "journal": f"journal:{tmp_path / 's.log'}",
           "postgresql": None}[request.param]  # fmt: skip
    if url is None:
        name = request.getfixturevalue("study_name")  # first: postgres deletes it after
        url = request.getfixturevalue("postgres")
    else:
        name = "q"
    storage = make_storage(url)
    ensure_indexes(storage)
    s = optuna.create_study(storage=storage, study_name=name, direction="maximize")
    _populate(s)
    return s


def test_the_answers_are_those_of_a_read_of_every_trial(study: optuna.Study) -> None:
    q = StudyQueries(study)
    trials = study.get_trials(deepcopy=False)
    assert q.states() == Counter(t.state for t in trials)
    assert q.counts() == counts(trials)
    assert q.counts()["duplicate"] == 1 and q.counts()["diverged"] == 1
    assert q.best_value(True) == 0.9 and q.best_value(False) == 0.5
    assert [t.number for t in q.running()] == [7]
    original = q.original("a")
    assert original is not None and original.number == 0  # not its duplicate
    assert q.original("d") is None and q.original("f") is None and q.original("zz") is None
    assert q.original("x' OR '1'='1") is None  # a key is a value, never SQL
    assert q.complete_values() == {0: [0.5], 2: [0.9]}  # no duplicate, no infinity
    assert [(n, v) for _, n, v in q.with_attr("weights_artifact")] == [(0, "w0")]
    assert q.system_keys("weights_removed:") == {"weights_removed:w0"}  # `_` is no wildcard
    assert q.running_twins("g", 8) == [(7, "h:1")]  # running, earlier, the same key
    assert q.running_twins("g", 7) == [] and q.running_twins("a", 8) == []  # not earlier;
    # not running
    assert q.running_twins("x' OR '1'='1", 8) == []


def test_a_trial_s_attributes_written_at_once_read_as_written_one_by_one(
    study: optuna.Study,
) -> None:
    values = {"genotype": '{"a": [1, 2]}', "params": 12, "ratio": 0.25, "skips": {"add": [1]},
              "none": None, "quote": "it's", "unicode": "żółw", "big": 2**62}  # fmt: skip
    batch, single = study.ask(), study.ask()
    set_user_attrs(batch, {"params": 1})  # rewritten below: an update, not a second row
    set_user_attrs(batch, values)
    for key, value in values.items():
        single.set_user_attr(key, value)
    assert batch.user_attrs == single.user_attrs == values  # the trial's own view
    stored = {t.number: t.user_attrs for t in study.get_trials(deepcopy=False)}
    assert stored[batch.number] == stored[single.number] == values
    set_user_attrs(batch, {})  # nothing to write
    study.tell(batch, 1.0)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        set_user_attrs(optuna.Trial(study, batch._trial_id), {"late": 1})
    assert "late" not in study.get_trials(deepcopy=False)[batch.number].user_attrs


def test_finished_since_reports_each_finished_trial_once(study: optuna.Study) -> None:
    q = StudyQueries(study)
    new, cursor = q.finished_since(None)
    assert new == []  # what finished before the watch began is not reported
    running = q.running()[0]
    study._storage.set_trial_state_values(running._trial_id, TrialState.COMPLETE, [0.1])
    trial = study.ask()
    study.tell(trial, 0.2)
    late = study.ask()  # still running
    new, cursor = q.finished_since(cursor)
    assert [t.number for t in new] == [running.number, trial.number]
    study.tell(late, state=TrialState.FAIL)
    new, cursor = q.finished_since(cursor)
    assert [(t.number, t.state) for t in new] == [(late.number, TrialState.FAIL)]
    assert q.finished_since(cursor)[0] == []


def test_duplicates_are_found_through_an_index_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    storage = make_storage(url)
    ensure_indexes(storage)
    ensure_indexes(storage)  # again: harmless
    rdb = rdb_of(storage)
    assert rdb is not None
    with rdb.engine.connect() as connection:
        plan = connection.execute(sqlalchemy.text(
            "EXPLAIN QUERY PLAN SELECT trial_id FROM trial_user_attributes"
            " WHERE key = 'dedup_key' AND value_json = '\"k\"'")).all()  # fmt: skip
    assert "ix_nas_skip_dedup_key" in " ".join(str(row) for row in plan)


def test_asking_for_a_trial_does_not_read_every_trial(tmp_path: Path) -> None:
    """Optuna's cache reads all trials at the first ``ask``: 15 s at 2,000 trials."""
    storage = make_storage(f"sqlite:///{tmp_path / 's.db'}")
    assert isinstance(storage, CachedStorage)
    study = optuna.create_study(storage=storage, study_name="c")
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    study.add_trials([create_trial(value=float(i), params={"x": 0.5}, distributions=dist)
                      for i in range(50)])  # fmt: skip
    fresh = make_storage(f"sqlite:///{tmp_path / 's.db'}")
    resumed = optuna.load_study(study_name="c", storage=fresh)
    trial = resumed.ask()
    resumed.tell(trial, 1.0)
    assert len(fresh._studies[resumed._study_id].trials) == 1  # type: ignore[attr-defined]
    assert len(resumed.get_trials()) == 51  # asked for everything: everything
    trial = resumed.ask()  # from the cache now, as Optuna's does
    assert trial.number == 51


def test_a_search_off_a_terminal_prints_a_line_per_trial_and_logs_json(
    tmp_path: Path, tiny_space: Path
) -> None:
    log = tmp_path / "log.jsonl"
    db, art = tmp_path / "s.db", tmp_path / "a"
    command = [sys.executable, "-m", "nas_skip.cli", "search", "--space", str(tiny_space),
               "--trials", "3", "--epochs", "1", "--storage", f"sqlite:///{db}",
               "--artifacts", str(art), "--seed", "0", "--log-file", str(log)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)  # a pipe
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("trial ")]
    assert len(lines) == 3 and all(" COMPLETE value=" in line for line in lines), done.stderr
    assert "\x1b[" not in done.stderr  # no progress bar, no colour codes
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["trial"] for r in records[:3]] == [0, 1, 2]
    assert all(set(r) >= {"state", "values", "params", "seconds", "hash"} for r in records[:3])
    assert records[3]["summary"]["finished"] == 3 and records[3]["target"] == 3
