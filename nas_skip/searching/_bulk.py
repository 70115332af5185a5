"""Reading many trials from an RDB storage in six plain queries.

Optuna's ``RDBStorage`` reads trials through its ORM: one Python object per row of six
tables, and each parameter's distribution decoded from its JSON twice. A nas-skip trial
holds about 150 parameters and 20 attributes, so reading a study of 2,000 trials built
some 350,000 ORM objects and 600,000 distributions, about 5 s of the report's 12 and most
of the dashboard's first page. :class:`BulkRDBStorage` answers the same
``_get_trials`` question (every read of many trials goes through it: ``get_all_trials``,
Optuna's cache, the samplers' history) with one Core query per table, rows as tuples,
and each distinct distribution JSON decoded once. It returns the same ``FrozenTrial``
objects, field for field (tested against Optuna's own reader on SQLite and PostgreSQL);
writes and single-trial reads are Optuna's.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Container, Iterable
from functools import lru_cache
from typing import Any

import sqlalchemy
from optuna import distributions
from optuna.storages import RDBStorage
from optuna.storages._rdb import models
from optuna.trial import FrozenTrial, TrialState

#: the most trial ids named in one ``IN (...)`` (SQLite's older builds allow 999 variables)
_MAX_IDS = 900

_T = models.TrialModel.__table__
_PARAMS = models.TrialParamModel.__table__
_VALUES = models.TrialValueModel.__table__
_USER = models.TrialUserAttributeModel.__table__
_SYSTEM = models.TrialSystemAttributeModel.__table__
_INTERMEDIATE = models.TrialIntermediateValueModel.__table__


@lru_cache(maxsize=4096)
def _distribution(text: str) -> distributions.BaseDistribution:
    """A distribution from its stored JSON (a study holds few distinct ones). Callers share
    the object, as Optuna's cached storage shares its trials: never changed in place."""
    return distributions.json_to_distribution(text)


def _local(utc: datetime.datetime | None) -> datetime.datetime | None:
    """A stored naive UTC time as the naive local time a ``FrozenTrial`` holds (Optuna's
    ``TrialModel.datetime_start``)."""
    if utc is None:
        return None
    return utc.replace(tzinfo=datetime.timezone.utc).astimezone().replace(tzinfo=None)


class BulkRDBStorage(RDBStorage):
    """Optuna's ``RDBStorage`` whose reads of many trials are six Core queries."""

    def _get_trials(
        self,
        study_id: int,
        states: Container[TrialState] | None,
        included_trial_ids: set[int],
        trial_id_greater_than: int,
    ) -> list[FrozenTrial]:
        included = {i for i in included_trial_ids if i <= trial_id_greater_than}
        keep: set[int] | None = None  # when there are too many to name: read from the
        mark = trial_id_greater_than  # oldest of them, and keep those and the newer ones
        if len(included) > _MAX_IDS:
            keep, included, trial_id_greater_than = included, set(), min(included) - 1
        where = _T.c.study_id == study_id
        if states is not None:
            assert isinstance(states, Iterable)
            where = where & _T.c.state.in_(list(states))
        if trial_id_greater_than > -1:
            newer = _T.c.trial_id > trial_id_greater_than
            where = where & ((newer | _T.c.trial_id.in_(sorted(included))) if included else newer)
        with self.engine.connect() as connection:
            rows = connection.execute(
                sqlalchemy.select(_T.c.trial_id, _T.c.number, _T.c.state, _T.c.datetime_start,
                                  _T.c.datetime_complete).where(where).order_by(_T.c.trial_id)
            ).all()  # fmt: skip
            if not rows:
                found = connection.execute(
                    sqlalchemy.select(models.StudyModel.__table__.c.study_id).where(
                        models.StudyModel.__table__.c.study_id == study_id
                    )
                ).first()
                if found is None:
                    raise KeyError(f"No study with study_id {study_id} exists.")
                return []
            ids = sqlalchemy.select(_T.c.trial_id).where(where).scalar_subquery()

            def read(table: sqlalchemy.Table, *columns: str) -> list[Any]:
                order = table.primary_key.columns.values()[0]
                cols = [table.c.trial_id, *(table.c[c] for c in columns)]
                query = sqlalchemy.select(*cols).where(table.c.trial_id.in_(ids)).order_by(order)
                return connection.execute(query).all()  # type: ignore[return-value]

            params = read(_PARAMS, "param_name", "param_value", "distribution_json")
            values = read(_VALUES, "objective", "value", "value_type")
            user = read(_USER, "key", "value_json")
            system = read(_SYSTEM, "key", "value_json")
            intermediate = read(_INTERMEDIATE, "step", "intermediate_value",
                                "intermediate_value_type")  # fmt: skip

        fields: dict[int, dict[str, Any]] = {
            int(r[0]): {"params": {}, "distributions": {}, "values": {}, "user_attrs": {},
                        "system_attrs": {}, "intermediate_values": {}}
            for r in rows
        }  # fmt: skip
        for trial_id, name, value, text in params:
            f = fields.get(trial_id)
            if f is not None:
                dist = _distribution(text)
                f["params"][name] = dist.to_external_repr(value)
                f["distributions"][name] = dist
        for trial_id, objective, value, kind in values:
            f = fields.get(trial_id)
            if f is not None:
                f["values"][objective] = models.TrialValueModel.stored_repr_to_value(value, kind)
        for table, key in ((user, "user_attrs"), (system, "system_attrs")):
            for trial_id, name, text in table:
                f = fields.get(trial_id)
                if f is not None:
                    f[key][name] = json.loads(text)
        for trial_id, step, value, kind in intermediate:
            f = fields.get(trial_id)
            if f is not None:
                f["intermediate_values"][step] = (
                    models.TrialIntermediateValueModel.stored_repr_to_intermediate_value(
                        value, kind
                    )
                )
        out = []
        for trial_id, number, state, start, complete in rows:
            if keep is not None and trial_id not in keep and trial_id <= mark:
                continue
            f = fields[trial_id]
            by_objective = f["values"]
            values_list = [by_objective.get(i, 0) for i in range(len(by_objective))] or None
            out.append(
                FrozenTrial(
                    number=number,
                    state=state,
                    value=None,
                    values=values_list,
                    datetime_start=_local(start),
                    datetime_complete=_local(complete),
                    params=f["params"],
                    distributions=f["distributions"],
                    user_attrs=f["user_attrs"],
                    system_attrs=f["system_attrs"],
                    intermediate_values=f["intermediate_values"],
                    trial_id=trial_id,
                )
            )
        return out
