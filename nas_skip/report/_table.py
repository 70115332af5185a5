"""One row per trial: state, objective values, Optuna params, user attributes and topology.

Column names (documented in ``dashboards/README.md``):

- ``number``, ``state``, ``datetime_start``, ``datetime_complete``, ``duration_s``;
- ``value:<objective>``: one per objective of the study's ``objectives`` user attribute
  (``value:accuracy``, ``value:params``, ...), empty for a trial without values;
- ``param:<name>``: every Optuna parameter (``param:depth``, ``param:edge:l1->l3``);
- ``attr:<name>``: every user attribute but the genotype JSON itself;
- unprefixed: features derived from the genotype: ``depth``, ``nodes``, ``skips_<kind>``,
  ``longest_skip``, ``params``, ``flops`` (empty for a trial without a genotype).
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
from nas_skip.genotype import Genotype, costs, topology

#: the derived columns, in order; ``skips_<kind>`` come from ``topology()`` itself
TOPOLOGY_HEAD = ("depth", "nodes")
TOPOLOGY_TAIL = ("longest_skip", "params", "flops")


def objective_names(study: optuna.Study) -> list[str]:
    """The study's objective names (``accuracy`` first); ``objective<i>`` for unnamed ones."""
    names = list(study.user_attrs.get("objectives") or ["accuracy"])
    # a study made outside nas-skip may have more directions than names
    names += [f"objective{i}" for i in range(len(names), len(study.directions))]
    return names[: len(study.directions)]


def genotype_of(trial: FrozenTrial) -> Genotype | None:
    """The trial's genotype, or None when it has none or it no longer parses."""
    text = trial.user_attrs.get("genotype")
    if not text:
        return None
    try:
        return Genotype.from_json(text)
    except (NasSkipError, ValueError, KeyError, TypeError):
        return None  # a report shows what it can; one unreadable trial is no reason to stop


def levels(genotype: Genotype) -> dict[str, int]:
    """Each node's depth level, as :func:`nas_skip.genotype.topology` counts them."""
    level = {genotype.order[0]: 0}
    for node_id in genotype.order[1:]:
        plan = genotype.plans[node_id]
        level[node_id] = 1 + max(level[m.edge.src] for m in (*plan.base, *plan.additive))
    return level


def skip_hops(genotype: Genotype) -> Counter[tuple[str, int]]:
    """How many skips of each (kind, hop distance) the genotype has (``seq`` edges are not
    skips; ``none`` edges are switched off and absent from the plans)."""
    level = levels(genotype)
    found: Counter[tuple[str, int]] = Counter()
    for plan in genotype.plans.values():
        for merge in (*plan.base, *plan.additive):
            e = merge.edge
            if e.kind != "seq":
                found[e.kind, level[e.dst] - level[e.src]] += 1
    return found


def features(genotype: Genotype) -> dict[str, int]:
    """The derived columns of one genotype: topology, parameters and FLOPs."""
    row = dict(topology(genotype))
    rows = costs(genotype)
    row["params"] = sum(r.params for r in rows)
    row["flops"] = sum(r.flops for r in rows)
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
        row.update({f"param:{k}": v for k, v in t.params.items()})
        row.update({f"attr:{k}": v for k, v in t.user_attrs.items() if k != "genotype"})
        genotype = genotype_of(t)
        if genotype is not None:
            found = features(genotype)
            derived += [k for k in found if k not in derived]
            row.update(found)
        rows.append(row)
    head = ["number", "state", "datetime_start", "datetime_complete", "duration_s"]
    head += [f"value:{n}" for n in names]
    frame = pd.DataFrame(rows, columns=_order(rows, head, derived))
    return _parquet_safe(frame)


def _order(rows: list[dict[str, Any]], head: list[str], derived: list[str]) -> list[str]:
    """Head, then params and attributes (sorted), then the derived features in their order."""
    seen = {k for row in rows for k in row}
    middle = sorted(k for k in seen if k.startswith("param:"))
    middle += sorted(k for k in seen if k.startswith("attr:"))
    if not derived:  # no trial had a genotype: keep the derived columns, empty
        derived = [*TOPOLOGY_HEAD, *TOPOLOGY_TAIL]
    return [*head, *middle, *derived]
