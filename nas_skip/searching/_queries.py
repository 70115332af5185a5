"""What a search asks of its study on every trial, at a cost that does not grow with it.

A study of 10,000 trials is a normal thing to resume. Reading every trial to count the
finished ones, to find a trial with the same dedup key or to see which trials run would
make each new trial cost more than the last (and ``optuna.load_study`` in a new process
reads every trial once before it answers anything). On an RDB storage (SQLite,
PostgreSQL) these questions are single SQL queries on Optuna's own tables instead:

- trials by state: ``SELECT state, count(*) ... GROUP BY state`` on the indexed
  ``study_id``;
- the running trials: Optuna's own query, filtered by state in SQL; the running twins
  of a trial (same dedup key, an earlier number) through the dedup-key index;
- the finished trial with a dedup key: an index of our own on Optuna's
  ``trial_user_attributes`` table, partial (``WHERE key = 'dedup_key'``), made when the
  search opens the study (``CREATE INDEX IF NOT EXISTS``; SQLite and PostgreSQL; other
  databases answer the same query without it).

A trial's attributes are written in one statement where Optuna writes one transaction
each (an upsert on ``trial_user_attributes``, as Optuna's own ``set_trial_user_attr``
does one row at a time): 12 attributes a trial took 20-28 ms, a fifth of a trial whose
training is instant.

Optuna stays the only record: the index is over its rows, and every answer is read from
its tables. Other storages (journal files, in memory) keep every trial in memory anyway,
and are asked through Optuna's API.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Container
from dataclasses import dataclass
from typing import Any

import optuna
import sqlalchemy
from optuna.storages import BaseStorage, RDBStorage, _CachedStorage
from optuna.storages._cached_storage import _StudyInfo
from optuna.trial import FrozenTrial, TrialState

#: the user attribute that says which finished trial a trial's network equals
DEDUP_ATTR = "dedup_key"
_INDEX = "ix_nas_skip_dedup_key"
# the literal key is in the SQL text (not a bound parameter): a partial index is used
# only where the query's WHERE says the same as the index's
_FIND_ORIGINAL = sqlalchemy.text(
    "SELECT t.trial_id FROM trial_user_attributes a JOIN trials t ON t.trial_id = a.trial_id"
    f" WHERE a.key = '{DEDUP_ATTR}' AND a.value_json = :value AND t.study_id = :study"
    " AND t.state = 'COMPLETE' AND NOT EXISTS (SELECT 1 FROM trial_user_attributes d"
    " WHERE d.trial_id = t.trial_id AND d.key = 'duplicate_of') ORDER BY t.number LIMIT 1"
)
# the RUNNING trials numbered below :number with dedup key :value, and their workers
_TWINS = sqlalchemy.text(
    "SELECT t.number, w.value_json FROM trial_user_attributes a JOIN trials t"
    " ON t.trial_id = a.trial_id LEFT JOIN trial_user_attributes w ON w.trial_id ="
    f" t.trial_id AND w.key = 'worker' WHERE a.key = '{DEDUP_ATTR}' AND a.value_json = :value"
    " AND t.study_id = :study AND t.state = 'RUNNING' AND t.number < :number"
)
_STATE = sqlalchemy.text("SELECT state FROM trials WHERE trial_id = :trial")
_UPSERT_ATTR = sqlalchemy.text(
    "INSERT INTO trial_user_attributes (trial_id, key, value_json) VALUES (:trial, :key,"
    " :value) ON CONFLICT (trial_id, key) DO UPDATE SET value_json = excluded.value_json"
)
_STATES = sqlalchemy.text(
    "SELECT state, count(*) FROM trials WHERE study_id = :study GROUP BY state"
)
# trials of the study with a user attribute ``key`` (a duplicate, a diverged trial)
_WITH_ATTR = (
    "SELECT count(*) FROM trials t JOIN trial_user_attributes a ON a.trial_id = t.trial_id"
    " WHERE t.study_id = :study AND a.key = '{key}'"
)
_DUPLICATES = sqlalchemy.text(_WITH_ATTR.format(key="duplicate_of"))
_DIVERGED = sqlalchemy.text(
    _WITH_ATTR.format(key="pruned_reason")
    + " AND t.state = 'PRUNED' AND a.value_json LIKE '\"diverged%'"
)
_BEST = (
    "SELECT {how}(v.value) FROM trials t JOIN trial_values v ON v.trial_id = t.trial_id"
    " WHERE t.study_id = :study AND t.state = 'COMPLETE' AND v.objective = 0"
    " AND v.value_type = 'FINITE'"
)
# trials made since the last look, and those that were not finished then
_CHANGED = (
    "SELECT trial_id, state FROM trials WHERE study_id = :study AND (trial_id > :after{also})"
    " ORDER BY trial_id"
)
# the first objectives of the COMPLETE trials that are no duplicates
_VALUES = sqlalchemy.text(
    "SELECT t.number, v.objective, v.value, v.value_type FROM trials t"
    " JOIN trial_values v ON v.trial_id = t.trial_id WHERE t.study_id = :study"
    " AND t.state = 'COMPLETE' AND NOT EXISTS (SELECT 1 FROM trial_user_attributes d"
    " WHERE d.trial_id = t.trial_id AND d.key = 'duplicate_of')"
)
# (trial id, number, stored value) of the trials with user attribute ``key``
_ATTR_VALUES = (
    "SELECT t.trial_id, t.number, a.value_json FROM trials t JOIN trial_user_attributes a"
    " ON a.trial_id = t.trial_id WHERE t.study_id = :study AND a.key = '{key}'"
)
_SYSTEM_KEYS = sqlalchemy.text(
    "SELECT key FROM study_system_attributes WHERE study_id = :study AND key LIKE :prefix"
)
_SYSTEM_VALUE = sqlalchemy.text(
    "SELECT value_json FROM study_system_attributes WHERE study_id = :study AND key = :key"
)
_LAST_ID = sqlalchemy.text("SELECT max(trial_id) FROM trials WHERE study_id = :study")


class CachedStorage(_CachedStorage):
    """Optuna's cache over an RDB storage (what ``optuna.create_study`` wraps an
    ``RDBStorage`` in), minus one full read.

    The cache reads every trial of a study the first time any trial is asked for, and
    ``study.ask()`` asks for the WAITING ones before each trial: resuming a study of 2,000
    trials of ``deep_mlp`` (150 parameters each) spent 15 s there before the first trial,
    and start-up grows with the study. Here a question about WAITING or RUNNING trials
    only goes to the database (a filter on the state) until something asks for the rest
    (a model-based sampler, which needs the history anyway); from then on the cache
    answers as Optuna's does.
    """

    def __init__(self, backend: RDBStorage) -> None:
        super().__init__(backend)
        self._filled: set[int] = set()  # studies whose every trial the cache has read

    def get_all_trials(
        self, study_id: int, deepcopy: bool = True, states: Container[TrialState] | None = None
    ) -> list[FrozenTrial]:
        if study_id not in self._filled and states is not None and _LIVE.issuperset(states):
            trials = self._backend.get_all_trials(study_id, deepcopy=deepcopy, states=states)
            with self._lock:  # known to the cache, as Optuna's full read would make them:
                if study_id not in self._studies:  # study.ask() pops a WAITING one (an
                    self._studies[study_id] = _StudyInfo()  # enqueued trial) by its id
                self._add_trials_to_cache(study_id, trials)
                self._studies[study_id].unfinished_trial_ids.update(t._trial_id for t in trials)
            return trials
        self._filled.add(study_id)
        return super().get_all_trials(study_id, deepcopy=deepcopy, states=states)


_LIVE = frozenset({TrialState.WAITING, TrialState.RUNNING})


def rdb_of(storage: BaseStorage) -> RDBStorage | None:
    """The RDB storage under Optuna's cache wrapper, or None for other storages."""
    backend = getattr(storage, "_backend", storage)  # optuna.storages._CachedStorage
    return backend if isinstance(backend, RDBStorage) else None


def ensure_indexes(storage: BaseStorage) -> None:
    """Make the dedup-key index on an RDB storage that lacks it (a no-op otherwise).

    Several processes may open one study at once: one of them makes the index, and the
    others' failed attempt is harmless (the query works with or without it).
    """
    rdb = rdb_of(storage)
    if rdb is None or rdb.engine.dialect.name not in ("sqlite", "postgresql"):
        return
    sql = (f"CREATE INDEX IF NOT EXISTS {_INDEX} ON trial_user_attributes (value_json)"
           f" WHERE key = '{DEDUP_ATTR}'")  # fmt: skip
    try:
        with rdb.engine.begin() as connection:
            connection.execute(sqlalchemy.text(sql))
    except sqlalchemy.exc.SQLAlchemyError:  # another process made it at the same moment
        pass


class StudyQueries:
    """The questions of a search about ``study``, answered without reading every trial."""

    def __init__(self, study: optuna.Study) -> None:
        self.study = study
        self.rdb = rdb_of(study._storage)

    def states(self) -> Counter[TrialState]:
        """How many trials the study holds in each state."""
        if self.rdb is None:
            trials = self.study.get_trials(deepcopy=False)
            return Counter(t.state for t in trials)
        with self.rdb.engine.connect() as connection:
            rows = connection.execute(_STATES, {"study": self.study._study_id}).all()
        return Counter({TrialState[str(state)]: int(n) for state, n in rows})

    def counts(self) -> Counter[str]:
        """Trials by state name, plus "duplicate", "diverged" and "finished" (as
        :func:`nas_skip.searching._storage.counts` counts a list of trials)."""
        if self.rdb is None:
            from nas_skip.searching._storage import counts

            return counts(self.study.get_trials(deepcopy=False))
        out: Counter[str] = Counter({s.name: n for s, n in self.states().items()})
        with self.rdb.engine.connect() as connection:
            study = {"study": self.study._study_id}
            out["duplicate"] = int(connection.execute(_DUPLICATES, study).scalar() or 0)
            out["diverged"] = int(connection.execute(_DIVERGED, study).scalar() or 0)
        out["finished"] = out["COMPLETE"] + out["PRUNED"]
        return out

    def best_value(self, maximize: bool) -> float | None:
        """The best finite first objective value of the COMPLETE trials; None if none."""
        if self.rdb is None:
            done = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            values = [t.values[0] for t in done if t.values and math.isfinite(t.values[0])]
            return (max(values) if maximize else min(values)) if values else None
        sql = sqlalchemy.text(_BEST.format(how="max" if maximize else "min"))
        with self.rdb.engine.connect() as connection:
            best = connection.execute(sql, {"study": self.study._study_id}).scalar()
        return None if best is None else float(best)

    def complete_values(self) -> dict[int, list[float]]:
        """Objective values by trial number of the COMPLETE trials that are no duplicates
        (their originals stand for them); trials with a non-finite value are left out."""
        if self.rdb is None:
            done = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            return {t.number: list(t.values) for t in done if t.values
                    and "duplicate_of" not in t.user_attrs
                    and all(math.isfinite(v) for v in t.values)}  # fmt: skip
        with self.rdb.engine.connect() as connection:
            rows = connection.execute(_VALUES, {"study": self.study._study_id}).all()
        found: dict[int, dict[int, float]] = {}
        for number, objective, value, value_type in rows:
            finite = str(getattr(value_type, "name", value_type)) == "FINITE"
            found.setdefault(int(number), {})[int(objective)] = (
                float(value) if finite and value is not None else math.nan
            )
        n = len(self.study.directions)
        out = {}
        for number, values in found.items():
            row = [values.get(i, math.nan) for i in range(n)]
            if all(math.isfinite(v) for v in row):
                out[number] = row
        return out

    def with_attr(self, key: str) -> list[tuple[int, int, Any]]:
        """(trial id, number, value) of the trials with user attribute ``key``."""
        if self.rdb is None:
            trials = self.study.get_trials(deepcopy=False)
            return [(t._trial_id, t.number, t.user_attrs[key]) for t in trials
                    if key in t.user_attrs]  # fmt: skip
        sql = sqlalchemy.text(_ATTR_VALUES.format(key=key.replace("'", "''")))
        with self.rdb.engine.connect() as connection:
            rows = connection.execute(sql, {"study": self.study._study_id}).all()
        return [(int(i), int(n), json.loads(v)) for i, n, v in rows]

    def system_keys(self, prefix: str) -> set[str]:
        """The study's system attribute keys that start with ``prefix`` (the values are
        not read: optuna-dashboard keeps every trial's note among them)."""
        if self.rdb is None:
            attrs = self.study._storage.get_study_system_attrs(self.study._study_id)
            return {k for k in attrs if k.startswith(prefix)}
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        sql = sqlalchemy.text(_SYSTEM_KEYS.text + " ESCAPE '\\'")
        with self.rdb.engine.connect() as connection:
            params = {"study": self.study._study_id, "prefix": escaped + "%"}
            return {str(k) for (k,) in connection.execute(sql, params).all()}

    def system_value(self, key: str) -> Any:
        """The study's system attribute ``key``; None when it has none (one row read, not
        every attribute: optuna-dashboard keeps every trial's note among them)."""
        if self.rdb is None:
            return self.study._storage.get_study_system_attrs(self.study._study_id).get(key)
        with self.rdb.engine.connect() as connection:
            params = {"study": self.study._study_id, "key": key}
            text = connection.execute(_SYSTEM_VALUE, params).scalar()
        return None if text is None else json.loads(text)

    def trial(self, trial_id: int) -> FrozenTrial:
        """One trial, read now."""
        return (self.rdb or self.study._storage).get_trial(trial_id)

    def running(self) -> list[FrozenTrial]:
        """The study's RUNNING trials, read now (not from a cache)."""
        storage = self.rdb or self.study._storage
        return storage.get_all_trials(
            self.study._study_id, deepcopy=False, states=(TrialState.RUNNING,)
        )

    def running_twins(self, key: str, number: int) -> list[tuple[int, str]]:
        """(number, worker) of the RUNNING trials numbered below ``number`` whose dedup key
        is ``key``: the trials that train the same network now."""
        if self.rdb is None:
            return [(t.number, str(t.user_attrs.get("worker", ""))) for t in self.running()
                    if t.number < number and t.user_attrs.get(DEDUP_ATTR) == key]  # fmt: skip
        params = {"value": json.dumps(key), "study": self.study._study_id, "number": number}
        with self.rdb.engine.connect() as connection:
            rows = connection.execute(_TWINS, params).all()
        return [(int(n), "" if w is None else str(json.loads(w))) for n, w in rows]

    def original(self, key: str) -> FrozenTrial | None:
        """The earliest COMPLETE trial with dedup key ``key`` that is no duplicate itself."""
        if self.rdb is None:
            done = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            return next((t for t in done if t.user_attrs.get(DEDUP_ATTR) == key
                         and "duplicate_of" not in t.user_attrs), None)  # fmt: skip
        params = {"value": json.dumps(key), "study": self.study._study_id}
        with self.rdb.engine.connect() as connection:
            trial_id = connection.execute(_FIND_ORIGINAL, params).scalar()
        return None if trial_id is None else self.rdb.get_trial(int(trial_id))

    def finished_since(self, cursor: Cursor | None) -> tuple[list[FrozenTrial], Cursor]:
        """The trials that finished since ``cursor`` (None: since now), in the order of
        their numbers, and the cursor to ask with next time. The work is proportional to
        what changed and what runs, not to the study's size."""
        if self.rdb is None:
            trials = self.study.get_trials(deepcopy=False)
            last = max((t._trial_id for t in trials), default=-1)
            if cursor is None:
                return [], Cursor(last, frozenset(t._trial_id for t in trials
                                                  if not t.state.is_finished()))  # fmt: skip
            new = [t for t in trials if t.state.is_finished()
                   and (t._trial_id > cursor.last or t._trial_id in cursor.open)]  # fmt: skip
            open_ = frozenset(t._trial_id for t in trials if not t.state.is_finished())
            return new, Cursor(last, open_)
        study = {"study": self.study._study_id}
        with self.rdb.engine.connect() as connection:
            if cursor is None:
                last = connection.execute(_LAST_ID, study).scalar()
                cursor = Cursor(-1 if last is None else int(last), frozenset())
                sql = sqlalchemy.text(_CHANGED.format(also=" AND state IN ('RUNNING', 'WAITING')"))
                rows = connection.execute(sql, {**study, "after": -1}).all()
                return [], Cursor(cursor.last, frozenset(int(i) for i, _ in rows))
            also = ""
            if cursor.open:  # ids are ints this process read: safe to write into the SQL
                also = f" OR trial_id IN ({','.join(str(int(i)) for i in cursor.open)})"
            sql = sqlalchemy.text(_CHANGED.format(also=also))
            rows = connection.execute(sql, {**study, "after": cursor.last}).all()
        last, open_, done = cursor.last, set(), []
        for trial_id, state in rows:
            last = max(last, int(trial_id))
            if TrialState[str(state)].is_finished():
                done.append(int(trial_id))
            else:
                open_.add(int(trial_id))
        new = sorted((self.rdb.get_trial(i) for i in done), key=lambda t: t.number)
        return new, Cursor(last, frozenset(open_))


def set_user_attrs(trial: optuna.Trial, attrs: dict[str, Any]) -> None:
    """``trial.set_user_attr`` for each of ``attrs``, in one statement on SQLite and
    PostgreSQL (one transaction per attribute elsewhere).

    Raises:
        optuna.exceptions.UpdateFinishedTrialError: the trial has finished (as Optuna's).
    """
    rdb = rdb_of(trial.storage)
    if rdb is None or rdb.engine.dialect.name not in ("sqlite", "postgresql") or not attrs:
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return
    rows = [{"trial": trial._trial_id, "key": k, "value": json.dumps(v)} for k, v in attrs.items()]
    with rdb.engine.begin() as connection:
        state = connection.execute(_STATE, {"trial": trial._trial_id}).scalar()
        rdb.check_trial_is_updatable(trial._trial_id, TrialState[str(state)])
        connection.execute(_UPSERT_ATTR, rows)
    trial._cached_frozen_trial.user_attrs.update(attrs)  # what set_user_attr keeps too


@dataclass(frozen=True)
class Cursor:
    """Where :meth:`StudyQueries.finished_since` left off: the last trial id it saw, and
    the ids it saw unfinished."""

    last: int
    open: frozenset[int]
