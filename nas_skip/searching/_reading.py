"""Reading a study someone else may have written: the storage must exist, trials are checked.

``export``, ``report``, ``retrain`` and ``dashboard`` only read a study, so a storage URL
that names no database is an error, and nothing is created for it (``search`` alone
creates storages). A stored trial is data: its ``genotype`` must parse under this
nas-skip's schema, and its ``duplicate_of`` must name another trial that is no duplicate
itself; :func:`trial_problem` says in one line what is wrong. ``export`` and ``retrain``
refuse such a trial; ``report`` leaves it out with a warning.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from nas_skip.errors import NasSkipError, brief
from nas_skip.genotype import Genotype
from nas_skip.searching._config import SearchError
from nas_skip.searching._storage import is_journal, make_storage, storage_file


def open_existing(url: str) -> BaseStorage:
    """The storage at ``url``, which must already exist: a SQLite file that holds Optuna's
    tables, or a journal file. Other URLs (PostgreSQL, MySQL) open as they are.

    Raises:
        SearchError: no such file, or a SQLite file that is not an Optuna storage (it is
            left as it was: no table is added to it).
    """
    journal = is_journal(url)
    if journal or url.startswith("sqlite:///"):
        path = storage_file(url) or Path(":memory:")  # an in-memory database is no file
        if not path.is_file():
            raise SearchError(
                f"--storage {url}: no such file {path} (nas-skip search creates storages)"
            )
        if not journal:
            _check_optuna_sqlite(url, path)
    return make_storage(url)


def _check_optuna_sqlite(url: str, path: Path) -> None:
    """Whether the SQLite file holds Optuna's ``studies`` table, read without changing it."""
    try:
        # mode=rw: never creates the file; the query reads only
        with sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True) as db:
            found = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'studies'"
            ).fetchone()
    except sqlite3.Error as exc:
        raise SearchError(f"--storage {url}: cannot read it as SQLite ({exc})") from None
    if found is None:
        raise SearchError(f"--storage {url}: not an Optuna storage (it has no studies table)")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:197] + "..."


def parse_genotype(trial: FrozenTrial) -> Genotype:
    """The genotype the trial stored.

    Raises:
        SearchError: the trial has none (a study made outside nas-skip), or it is not a
            valid genotype of this nas-skip's schema; the message names the trial.
    """
    if "genotype" not in trial.user_attrs:
        raise SearchError(f"--trial {trial.number}: it has no genotype (not a nas-skip trial)")
    try:
        return Genotype.from_json(trial.user_attrs["genotype"])
    except (NasSkipError, ValueError, TypeError, KeyError, RecursionError) as exc:
        raise SearchError(
            f"--trial {trial.number}: its genotype attribute is not a genotype this "
            f"nas-skip reads ({_one_line(exc)})"
        ) from None


def duplicate_problem(trial: FrozenTrial, trials: Sequence[FrozenTrial]) -> str | None:
    """Why the trial's ``duplicate_of`` names no original; None when it has none or the
    original is another trial of the study that is no duplicate itself (so no cycle)."""
    if "duplicate_of" not in trial.user_attrs:
        return None
    original = trial.user_attrs["duplicate_of"]
    number = isinstance(original, int) and not isinstance(original, bool)
    if not number or not 0 <= original < len(trials) or original == trial.number:
        last = f"0 to {len(trials) - 1}" if trials else "none"
        return (
            f"its duplicate_of attribute {brief(original)} names no other trial (trials: {last})"
        )
    if "duplicate_of" in trials[original].user_attrs:
        return f"its duplicate_of attribute names trial {original}, itself a duplicate"
    return None


def read_trial(trial: FrozenTrial,
               trials: Sequence[FrozenTrial]) -> tuple[Genotype | None, str | None]:  # fmt: skip
    """The stored trial's genotype and what makes the trial unreadable, in one line:
    (genotype, None), (None, problem), or (None, None) for a trial without a genotype that
    may lack one.

    A complete trial must hold a genotype; any genotype it holds must parse; a
    ``duplicate_of`` must name an original (:func:`duplicate_problem`). Trials that never
    got a valid sample (pruned or failed early) may lack a genotype.
    """
    problem = duplicate_problem(trial, trials)
    if problem is not None:
        return None, problem
    if "genotype" not in trial.user_attrs and trial.state != TrialState.COMPLETE:
        return None, None
    try:
        return parse_genotype(trial), None
    except SearchError as exc:
        return None, str(exc).removeprefix(f"--trial {trial.number}: ")


def trial_problem(trial: FrozenTrial, trials: Sequence[FrozenTrial]) -> str | None:
    """What makes the stored trial unreadable, in one line; None when nothing does (see
    :func:`read_trial`)."""
    return read_trial(trial, trials)[1]


def malformed(study: optuna.Study) -> dict[int, str]:
    """The study's unreadable trials: trial number -> what is wrong (one line)."""
    trials = study.get_trials(deepcopy=False)
    found = {t.number: trial_problem(t, trials) for t in trials}
    return {number: problem for number, problem in found.items() if problem is not None}
