"""The local backend: RDB and journal storages, worker processes, kill -9 and resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from helpers import BARRIER_ENV, score_once_two_started, search_arrays
from helpers import search_config as config
from optuna.trial import TrialState

import nas_skip
from nas_skip.searching import SearchConfig, SearchError, make_storage, search

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_postgresql_with_two_worker_processes(
    tmp_path: Path, tiny_space: Path, postgres: str, study_name: str
) -> None:
    result = search(config(tmp_path, tiny_space, storage=postgres, study=study_name,
                           trials=6, workers=2), progress=False)  # fmt: skip
    trials = result.study.get_trials()
    failed = sum(t.state == TrialState.FAIL for t in trials)
    # the total, not one more: a worker stops when the other's running trial may reach it
    assert result.finished == 6 and len(trials) == 6 + failed
    assert not [t for t in trials if t.state == TrialState.RUNNING]  # nothing left behind
    assert sorted(t.number for t in trials) == list(range(len(trials)))  # none lost
    workers = {t.user_attrs["worker"] for t in trials}
    assert len(workers) == 2 and str(os.getpid()) not in " ".join(workers)
    # no trial trained twice: every trial with a dedup key is unique or says duplicate_of
    keys = [t.user_attrs["dedup_key"] for t in trials
            if t.state == TrialState.COMPLETE and "duplicate_of" not in t.user_attrs]  # fmt: skip
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize("where", ["sqlite", "postgresql"])
def test_two_workers_ending_trials_together_stop_at_the_target(
    tmp_path: Path, data: nas_skip.Dataset, monkeypatch: pytest.MonkeyPatch,
    where: str, study_name: str, request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    """Two workers' first trials end at the same moment with one trial left to run: each
    counts one finished and one running, and without the study's lock over the count and
    the next trial's creation both would start one (4 trials for a target of 3)."""
    (tmp_path / "barrier").mkdir()
    monkeypatch.setenv(BARRIER_ENV, str(tmp_path / "barrier"))
    storage = request.getfixturevalue("postgres") if where == "postgresql" else None
    study = search_arrays(tmp_path, data, objective=score_once_two_started, trials=3,
                          workers=2, study=study_name,
                          **({"storage": storage} if storage else {}))  # fmt: skip
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    assert len({t.user_attrs["worker"] for t in trials}) == 2


def test_sqlite_studies_use_a_write_ahead_log_readable_while_written(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "s.db"
    study = optuna.create_study(storage=make_storage(f"sqlite:///{db}"), study_name="s")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone() == ("wal",)
    # a reader (the dashboard, another worker) sees the commits while a writer holds its
    # transaction open: a rollback journal would make it wait for the lock
    writer = sqlite3.connect(db, timeout=0.1)
    writer.execute("BEGIN EXCLUSIVE")
    writer.execute("UPDATE trials SET number = number")
    reader = optuna.load_study(study_name="s", storage=f"sqlite:///{db}")
    assert len(reader.trials) == 2
    writer.rollback()


def test_journal_file_storage(tmp_path: Path, tiny_space: Path) -> None:
    journal = tmp_path / "journal.log"
    result = search(config(tmp_path, tiny_space, storage=f"journal:{journal}", trials=2),
                    progress=False)  # fmt: skip
    assert result.finished == 2 and journal.stat().st_size > 0
    study = optuna.load_study(study_name=result.study_name, storage=make_storage(str(journal)))
    assert len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))) == 2


def test_evolution_sampler_in_a_search(tmp_path: Path, tiny_space: Path) -> None:
    result = search(config(tmp_path, tiny_space, trials=6, sampler="evolution", population=3,
                           tournament=2, pruning=False), progress=False)  # fmt: skip
    children = [t for t in result.study.get_trials() if "evolution:parent" in t.system_attrs]
    assert children and all(t.number >= 3 for t in children)


def test_a_study_of_another_search_is_refused_untouched(tmp_path: Path, tiny_space: Path) -> None:
    first = search(config(tmp_path, tiny_space, trials=1, study="s"), progress=False)
    with pytest.raises(SearchError, match="made with epochs=2, not 3"):
        search(config(tmp_path, tiny_space, trials=2, study="s", epochs=3), progress=False)
    assert len(first.study.get_trials()) == 1


def test_training_flags_fix_the_space_s_values_and_belong_to_the_study(
    tmp_path: Path, tiny_space: Path
) -> None:
    fixed = {"optimizer": "adamw", "lr": 0.003, "grad_clip": 1.0, "warmup_epochs": 0.5}
    result = search(config(tmp_path, tiny_space, trials=2, study="f", train=fixed),
                    progress=False)  # fmt: skip
    assert result.study.user_attrs["train"] == fixed
    done = [t for t in result.study.get_trials() if t.state == TrialState.COMPLETE]
    assert done and all(not any(k.startswith("train:") for k in t.params) for t in done)
    # the training split is not evaluated during a search unless asked for
    assert all("train_error" not in t.user_attrs for t in done)
    with pytest.raises(SearchError, match=r"made with train=\{.*'lr': 0.003.*\}, not \{\}"):
        search(config(tmp_path, tiny_space, trials=3, study="f"), progress=False)
    assert len(result.study.get_trials()) == len(optuna.load_study(
        study_name="f", storage=f"sqlite:///{tmp_path / 'study.db'}").get_trials())  # fmt: skip
    measured = search(config(tmp_path, tiny_space, trials=1, study="m", train_error=True),
                      progress=False)  # fmt: skip
    trial = measured.study.best_trial
    assert 0.0 <= trial.user_attrs["train_error"] <= 1.0


def test_diverged_trials_are_counted_as_such(tmp_path: Path, tiny_space: Path) -> None:
    result = search(config(tmp_path, tiny_space, trials=3, train={"lr": 1e6}), progress=False)
    trials = result.study.get_trials()
    assert result.finished == 3 and result.diverged == result.pruned == 3
    assert all(t.user_attrs["pruned_reason"].startswith("diverged: training diverged in epoch")
               for t in trials if "duplicate_of" not in t.user_attrs)  # fmt: skip


@pytest.mark.parametrize(
    ("train", "message"),
    [
        ({"lr": -1.0}, "--lr: must be a finite number > 0, got -1.0"),
        ({"optimizer": "adam"}, "--optimizer: must be one of 'sgd', 'adamw', got 'adam'"),
        ({"grad_clip": 0.0}, "--grad-clip: must be a finite number > 0 or None, got 0.0"),
        ({"epochs": 3}, "--epochs: is not a training setting (settings: optimizer, lr"),
    ],
)
def test_bad_training_flags_name_the_flag(train: dict[str, object], message: str) -> None:
    with pytest.raises(SearchError) as info:
        SearchConfig(space="deep_mlp", train=train)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_a_space_train_value_no_run_accepts_is_refused_before_the_study(
    tmp_path: Path,
) -> None:
    from conftest import write_space

    from nas_skip.spaces import SpaceError

    bad = write_space(tmp_path, "bad", extra="  warmup_epochs: -1")
    with pytest.raises(SpaceError, match=r"bad.yaml: train.warmup_epochs: TrainConfig.warm"):
        search(config(tmp_path, bad, trials=1), progress=False)
    assert not (tmp_path / "study.db").exists() or not optuna.get_all_study_names(
        f"sqlite:///{tmp_path / 'study.db'}")  # fmt: skip


def test_bad_storage_is_one_clear_error(tmp_path: Path, tiny_space: Path) -> None:
    with pytest.raises(SearchError, match="--storage postgresql://nobody@127.0.0.1:1/x"):
        search(config(tmp_path, tiny_space, storage="postgresql://nobody@127.0.0.1:1/x"),
               progress=False)  # fmt: skip


def test_kill_9_then_the_same_command_resumes(tmp_path: Path, tiny_space: Path) -> None:
    db = tmp_path / "study.db"
    command = [sys.executable, "-m", "nas_skip.cli", "search", "--space", str(tiny_space),
               "--trials", "4", "--epochs", "40", "--storage", f"sqlite:///{db}",
               "--artifacts", str(tmp_path / "a"), "--study", "k", "--seed", "1"]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    storage = f"sqlite:///{db}"
    running = None
    deadline = time.monotonic() + 120
    while running is None and time.monotonic() < deadline:
        time.sleep(0.3)
        try:
            study = optuna.load_study(study_name="k", storage=storage)
        except KeyError:
            continue
        busy = study.get_trials(states=(TrialState.RUNNING,))
        running = next((t for t in busy if "worker" in t.user_attrs), None)
    assert running is not None, "no trial started"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    left = optuna.load_study(study_name="k", storage=storage).trials[running.number]
    assert left.state == TrialState.RUNNING  # the dead run left it so
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "marked 1 trials of a dead run FAIL" in done.stdout
    study = optuna.load_study(study_name="k", storage=storage)
    stale = study.trials[running.number]
    assert stale.state == TrialState.FAIL
    assert "left RUNNING by a run that died" in stale.user_attrs["fail_reason"]
    finished = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(finished) == 4 and not study.get_trials(states=(TrialState.RUNNING,))


def test_the_budget_counts_how_trials_end_and_stops_a_failure_streak(
    tmp_path: Path, tiny_space: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from nas_skip.searching._local import run_local
    from nas_skip.searching._storage import open_study
    from nas_skip.spaces import load_space

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        if trial.number == 0:
            raise RuntimeError("boom\nsecond line")
        if trial.number == 1:
            return float("nan")  # Optuna tells FAIL
        if trial.number == 2:
            raise optuna.TrialPruned()
        return x

    space = load_space(str(tiny_space))
    c = config(tmp_path, tiny_space, trials=3, pruning=False)
    open_study(c, space.name, space.dataset, c.space)
    run_local(c, space, objective)
    study = optuna.load_study(study_name=c.study_name(space.name, space.dataset),
                              storage=c.storage_url())  # fmt: skip
    states = [t.state for t in study.trials]
    assert states == [TrialState.FAIL, TrialState.FAIL, TrialState.PRUNED,
                      TrialState.COMPLETE, TrialState.COMPLETE]  # fmt: skip
    assert study.trials[0].user_attrs["fail_reason"] == "RuntimeError: boom"
    err = capfd.readouterr().err
    assert "warning: trial 0 failed: RuntimeError: boom\n" in err and "Traceback" not in err

    def broken(trial: optuna.Trial) -> float:
        raise ValueError("no data")

    c = c.with_(study="broken")
    open_study(c, space.name, space.dataset, c.space)
    with pytest.raises(SearchError, match="10 trials failed in a row"):
        run_local(c, space, broken)
    assert len(optuna.load_study(study_name="broken", storage=c.storage_url()).trials) == 10
