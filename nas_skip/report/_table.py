"""One row per trial: state, objective values, Optuna params, user attributes and topology.

Column names (documented in ``dashboards/README.md``):

- ``number``, ``state``, ``datetime_start``, ``datetime_complete``, ``duration_s``;
- ``value:<objective>``: one per objective of the study's ``objectives`` user attribute
  (``value:accuracy``, ``value:params``, ...; ``value:mIoU`` for segmentation), empty for
  a trial without values;
- ``retrain_val_mean``, ``retrain_val_std``, ``retrain_test_mean``, ``retrain_test_std``,
  ``retrain_epochs``, ``retrain_seeds``: the trial's ``nas-skip retrain`` result (scores
  as mean and sample std over the seeds), empty for a trial not retrained;
- ``param:<name>``: every Optuna parameter (``param:depth``, ``param:edge:l1->l3``);
- ``attr:<name>``: every user attribute but the genotype JSON itself and the structure
  attributes (``depth``, ``skips``, ``longest_skip``), which are the columns below;
  ``attr:weights_artifact`` only while the trial's weights are kept;
- unprefixed: features derived from the genotype: ``depth``, ``nodes``, ``skips_<kind>``,
  ``longest_skip``, ``params``, ``flops`` (empty for a trial without a genotype). Depth,
  skips and the longest skip count the space's layers (as the trial stored them, else as
  its space counts them from its choices; see :class:`nas_skip.spaces.Structure`); only a
  genotype from no space is measured on its graph. ``nodes`` counts the graph's nodes.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

import optuna
import pandas as pd
from optuna.trial import FrozenTrial

from nas_skip.errors import NasSkipError
from nas_skip.genotype import Genotype
from nas_skip.report._facts import Facts, facts
from nas_skip.report._readable import ReadableStudy
from nas_skip.searching._names import study_labels
from nas_skip.searching._retrain import retrained
from nas_skip.searching._weights import kept_weights, removed_weights
from nas_skip.spaces import STRUCTURE_ATTRS, Space, Structure, load_space

#: a retrained trial's result (``nas-skip retrain``) as columns ``retrain_<key>``
RETRAIN_KEYS = ("val_mean", "val_std", "test_mean", "test_std", "epochs")
#: the derived columns, in order; ``skips_<kind>`` come from ``topology()`` itself
TOPOLOGY_HEAD = ("depth", "nodes")
TOPOLOGY_TAIL = ("longest_skip", "params", "flops")
#: user attributes that are not ``attr:`` columns: the genotype, and the structure (the
#: derived columns hold it)
_NOT_ATTRS = ("genotype", *STRUCTURE_ATTRS)


def objective_names(study: optuna.Study) -> list[str]:
    """The study's objective names as people read them (``accuracy`` first, ``mIoU`` for
    segmentation); ``objective<i>`` for unnamed ones."""
    return study_labels(study)


def genotype_of(trial: FrozenTrial) -> Genotype | None:
    """The trial's genotype, or None when it has none or it no longer parses."""
    text = trial.user_attrs.get("genotype")
    if not text:
        return None
    try:
        return Genotype.from_json(text)
    except (NasSkipError, ValueError, KeyError, TypeError):
        return None  # a report shows what it can; one unreadable trial is no reason to stop


def facts_of(trial: FrozenTrial, study: optuna.Study | None = None) -> Facts | None:
    """What the report reads from the trial's genotype; None when it has none or it no
    longer parses. A study from :func:`~nas_skip.report._readable.readable` holds them from
    the one parse that checked the trial; another study's trial is parsed now."""
    if isinstance(study, ReadableStudy):
        return study.facts.get(trial.number)
    genotype = genotype_of(trial)
    return None if genotype is None else facts(genotype)


def space_of(study: optuna.Study) -> Space | None:
    """The space the study searched, when it can still be loaded (a moved file: None)."""
    name = study.user_attrs.get("space")
    if not isinstance(name, str):
        return None
    try:
        return load_space(name, study.user_attrs.get("dataset"))
    except (NasSkipError, OSError, ValueError, TypeError):
        return None


def structure_of(trial: FrozenTrial, space: Space | None) -> Structure | None:
    """The trial's depth and skips in its space's layers: as it stored them, else as its
    space counts them from its choices (a study made before trials stored them); None
    when neither is known (measure the genotype's graph instead)."""
    found = Structure.from_attrs(trial.user_attrs)
    if found is None and space is not None and trial.params:
        try:
            found = space.structure(trial.params)
        except (NasSkipError, KeyError, ValueError, TypeError):
            return None  # choices the space no longer makes
    return found


def trial_hops(trial: FrozenTrial, space: Space | None,
               study: optuna.Study | None = None) -> Counter[tuple[str, int]] | None:  # fmt: skip
    """How many skips of each (kind, hop) the trial's network has, hops in its space's
    layers (in graph levels for a genotype from no space); None without a genotype (the
    genotype's facts as :func:`facts_of` reads them from ``study``)."""
    structure = structure_of(trial, space)
    if structure is not None:
        return structure.hops()
    known = facts_of(trial, study)
    return None if known is None else known.hops


def _structured(known: Facts, structure: Structure | None) -> dict[str, int]:
    """The derived columns of one genotype from its facts: topology, parameters and FLOPs;
    depth, skips and the longest skip from ``structure`` when the space gave one."""
    row = dict(known.features)
    if structure is not None:
        kinds = [k.removeprefix("skips_") for k in row if k.startswith("skips_")]
        row.update(structure.features(kinds))
    return row


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _parquet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns whose cells mix types (a categorical param of ints and strings, a user
    attribute that is a number in one trial and a list in another) become text, because
    Arrow needs one type per column; dicts and lists become JSON."""
    for column in frame.columns:
        if frame[column].dtype != object:
            continue
        cells = frame[column].dropna()
        if cells.map(lambda v: isinstance(v, (dict, list, tuple))).any():
            frame[column] = frame[column].map(
                lambda v: json.dumps(v) if isinstance(v, (dict, list, tuple)) else v
            )
            cells = frame[column].dropna()
        if len({type(v) for v in cells}) > 1:
            frame[column] = frame[column].map(lambda v: v if _missing(v) else str(v))
    return frame


def trial_frame(study: optuna.Study) -> pd.DataFrame:
    """The study's trials as a table (columns: see the module docstring).

    Args:
        study: the study.

    Returns:
        One row per trial, in trial-number order.
    """
    names = objective_names(study)
    records = retrained(study)
    space = space_of(study)
    removed = removed_weights(study)
    rows: list[dict[str, Any]] = []
    derived: list[str] = []
    for t in study.get_trials(deepcopy=False):
        duration = t.duration.total_seconds() if t.duration is not None else None
        row: dict[str, Any] = {
            "number": t.number,
            "state": t.state.name,
            "datetime_start": t.datetime_start,
            "datetime_complete": t.datetime_complete,
            "duration_s": duration,
        }
        values = t.values or [None] * len(names)
        row.update({f"value:{n}": v for n, v in zip(names, values, strict=False)})
        record = records.get(t.number, {})
        row.update({f"retrain_{k}": record.get(k) for k in RETRAIN_KEYS})
        row["retrain_seeds"] = len(record["seeds"]) if record else None
        row.update({f"param:{k}": v for k, v in t.params.items()})
        row.update({f"attr:{k}": v for k, v in t.user_attrs.items() if k not in _NOT_ATTRS})
        if kept_weights(t, removed) is None:  # weights removed since: the id is stale
            row.pop("attr:weights_artifact", None)
        known = facts_of(t, study)
        if known is not None:
            found = _structured(known, structure_of(t, space))
            derived += [k for k in found if k not in derived]
            row.update(found)
        rows.append(row)
    head = ["number", "state", "datetime_start", "datetime_complete", "duration_s"]
    head += [f"value:{n}" for n in names]
    head += [*(f"retrain_{k}" for k in RETRAIN_KEYS), "retrain_seeds"]
    frame = pd.DataFrame(rows, columns=_order(rows, head, derived))
    for column in head[-len(RETRAIN_KEYS) - 1 :]:  # one dtype, with or without a retrain
        kind = "float64" if column.endswith(("_mean", "_std")) else "Int64"
        frame[column] = frame[column].astype(kind)
    return _parquet_safe(frame)


def _order(rows: list[dict[str, Any]], head: list[str], derived: list[str]) -> list[str]:
    """Head, then params and attributes (sorted), then the derived features in their order."""
    seen = {k for row in rows for k in row}
    middle = sorted(k for k in seen if k.startswith("param:"))
    middle += sorted(k for k in seen if k.startswith("attr:"))
    if not derived:  # no trial had a genotype: keep the derived columns, empty
        derived = [*TOPOLOGY_HEAD, *TOPOLOGY_TAIL]
    return [*head, *middle, *derived]
