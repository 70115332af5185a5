"""The study as the report reads it: every trial it can read, the malformed ones left out.

A stored trial is untrusted data (:mod:`nas_skip.searching._reading`): one without a
genotype, with a genotype of another schema or a ``duplicate_of`` that names no original
is skipped with a warning, so that the table, every figure and the top drawings see the
same trials, and one bad trial never stops a report.

Checking a trial parses its genotype, the report's largest cost after reading the storage
(a few milliseconds for a 30-layer network): what the report reads from it is kept
(:mod:`nas_skip.report._facts`), so that the table and the figures parse none again.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Container, Mapping
from functools import cached_property
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas_skip.errors import SkippedTrialWarning
from nas_skip.report._facts import Facts, facts
from nas_skip.searching._reading import read_trial

#: how many skipped trials are named one warning each; the rest are counted in one more
MAX_WARNINGS = 10


class ReadableStudy(optuna.Study):
    """``study`` whose trial listings leave out the trial numbers in ``skipped``, with the
    ``facts`` of its other trials' genotypes (trial number -> facts; a trial without a
    genotype is absent).

    Every listing Optuna and the report make (``trials``, ``best_trials``, parameter
    importances) goes through :meth:`get_trials`, so they all agree. The study's user
    attributes are read (and copied) once: Optuna deep-copies them on every access, and a
    report reads them a dozen times (a stored attribute may hold a million entries).
    """

    def __init__(self, study: optuna.Study, skipped: Container[int],
                 known: Mapping[int, Facts]) -> None:  # fmt: skip
        super().__init__(study_name=study.study_name, storage=study._storage)
        self.skipped = skipped
        self.facts = known

    @cached_property
    def user_attrs(self) -> dict[str, Any]:
        return copy.deepcopy(self._storage.get_study_user_attrs(self._study_id))

    def get_trials(self, deepcopy: bool = True,
                   states: Container[TrialState] | None = None) -> list[FrozenTrial]:  # fmt: skip
        found = super().get_trials(deepcopy=deepcopy, states=states)
        return [t for t in found if t.number not in self.skipped]


def checked(study: optuna.Study) -> tuple[dict[int, str], dict[int, Facts]]:
    """The study's malformed trials (number -> what is wrong, in one line, as
    :func:`nas_skip.searching._reading.malformed` says) and the facts of the others'
    genotypes, each genotype parsed once."""
    trials = study.get_trials(deepcopy=False)
    problems: dict[int, str] = {}
    known: dict[int, Facts] = {}
    for t in trials:
        g, problem = read_trial(t, trials)
        if problem is not None:
            problems[t.number] = problem
        elif g is not None:
            known[t.number] = facts(g)
    return problems, known


def readable(study: optuna.Study) -> ReadableStudy:
    """The study without its malformed trials, each one warned about in one line (at most
    :data:`MAX_WARNINGS`, then one line that counts the rest), and with the facts of the
    others' genotypes."""
    problems, known = checked(study)
    for number, problem in list(problems.items())[:MAX_WARNINGS]:
        warnings.warn(f"report: trial {number} skipped: {problem}", SkippedTrialWarning,
                      stacklevel=2)  # fmt: skip
    if len(problems) > MAX_WARNINGS:
        more = len(problems) - MAX_WARNINGS
        warnings.warn(f"report: {more} more malformed trials skipped", SkippedTrialWarning,
                      stacklevel=2)  # fmt: skip
    return ReadableStudy(study, frozenset(problems), known)
