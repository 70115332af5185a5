"""The best trials' weights: kept as Optuna artifacts, deleted as better trials arrive.

``--keep K`` keeps the weights of exactly the best K trials (for several objectives, the
Pareto front): a trial that trained uploads its ``weights.pt`` when it is among them, and
the weights of trials that fall out are deleted. Several workers (local processes, Ray
trials, other machines) may do this at once on one study, so each follows one protocol:

1. with its values already stored (its metrics are user attributes), it reads the
   storage and uploads its weights only if it is among the best, recording the artifact
   id as ``weights_artifact``;
2. then it reads the storage again and removes the weights of every trial outside the
   best: it first records the removal on the study (system attribute
   ``weights_removed:<artifact id>``), then deletes the file from the artifact store.

Trials still running count with the values they stored, so no worker deletes weights that
another is about to keep because it has not completed yet. A worker always uploads before
it reads, so when two keep weights at once, at least the later reader sees both; and a
trial that falls out never comes back (values do not change, and only better trials push
others out). The best K are ranked by the first objective, ties by trial number, as
:func:`~nas_skip.searching.top_trials` ranks them. The search prunes once more when it ends,
so a rerun with a smaller ``--keep`` trims what an earlier run kept.

Optuna freezes a finished trial's attributes, so a removal is recorded on the study, not
on the trial: :func:`kept_weights` is how anything asks whether a trial has weights.
Artifact ids come from stored attributes and are not trusted: only the form
:func:`optuna.artifacts.upload_artifact` writes (a UUID) names a file, always directly in
the artifact folder; nothing outside it is ever deleted.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.trial import FrozenTrial

from nas_skip.searching._artifacts import ARTIFACT_ID as _ARTIFACT_ID
from nas_skip.searching._queries import StudyQueries
from nas_skip.searching._storage import StudyHandle, worker_alive

if TYPE_CHECKING:
    import torch

#: the user attribute that records a trial's weights artifact
ATTR = "weights_artifact"
#: study system attribute prefix: weights removed (``weights_removed:<artifact id>``: the
#: trial number)
REMOVED = "weights_removed:"
#: which user attribute holds each objective's value
_OBJECTIVE_ATTRS = {"accuracy": "val_accuracy", "bpc": "val_bpc", "params": "params",
                    "latency": "latency_ms", "flops": "flops"}  # fmt: skip


def stored_values(attrs: dict[str, Any], objectives: Sequence[str]) -> list[float]:
    """The objective values a trial's user attributes hold (NaN where one is missing)."""
    out = []
    for o in objectives:
        value = attrs.get(_OBJECTIVE_ATTRS.get(o, o), math.nan)  # a user's: its own name
        number = isinstance(value, int | float) and not isinstance(value, bool)
        out.append(float(value) if number else math.nan)
    return out


def removed_weights(study: optuna.Study) -> set[str]:
    """The artifact ids of weights the search removed (read once per listing of trials)."""
    return {k.removeprefix(REMOVED) for k in StudyQueries(study).system_keys(REMOVED)}


def kept_weights(trial: FrozenTrial, removed: set[str]) -> str | None:
    """The artifact id of the trial's kept weights; None when it kept none, they were
    removed (``removed``: :func:`removed_weights`), or the stored id is not an artifact id.
    The file may still be missing (a deleted folder): readers check it."""
    artifact = trial.user_attrs.get(ATTR)
    if not isinstance(artifact, str) or not _ARTIFACT_ID.fullmatch(artifact):
        return None
    return None if artifact in removed else artifact


def artifact_path(store_dir: str | Path, artifact_id: str) -> Path | None:
    """The artifact's file: directly in ``store_dir``; None for anything but an artifact
    id (a stored attribute may hold ``../x`` or an absolute path)."""
    if not _ARTIFACT_ID.fullmatch(artifact_id):
        return None
    base = Path(store_dir).resolve()
    path = base / artifact_id
    return path if path.parent == base else None


def _signs(directions: Sequence[str]) -> list[float]:
    return [1.0 if d == "maximize" else -1.0 for d in directions]


def _dominated(values: Sequence[float], other: Sequence[float], signs: list[float]) -> bool:
    """Whether ``other`` dominates ``values`` (signs: +1 maximise, -1 minimise)."""
    better_or_equal = all(s * o >= s * v for o, v, s in zip(other, values, signs, strict=True))
    return better_or_equal and any(o != v for o, v in zip(other, values, strict=True))


def _candidates(queries: StudyQueries, objectives: Sequence[str]) -> dict[int, list[float]]:
    """Values of the trials that compete for the kept weights: the complete ones and the
    running ones of live workers whose metrics are stored (they are about to complete);
    duplicates stand aside for their originals. Read without reading every trial."""
    found = queries.complete_values()
    for t in queries.running():
        if "duplicate_of" in t.user_attrs or not worker_alive(str(t.user_attrs.get("worker"))):
            continue
        values = stored_values(t.user_attrs, objectives)
        if len(values) == len(objectives) and all(math.isfinite(v) for v in values):
            found[t.number] = values
    return found


def best_numbers(candidates: dict[int, list[float]], directions: Sequence[str],
                 keep: int) -> set[int]:  # fmt: skip
    """The trials whose weights are kept: the best ``keep`` by the first objective (ties:
    the earlier trial), or for several objectives the Pareto front."""
    signs = _signs(directions)
    if len(directions) > 1:
        front = list(candidates.values())
        return {n for n, v in candidates.items()
                if not any(_dominated(v, o, signs) for o in front)}  # fmt: skip
    ranked = sorted(candidates, key=lambda n: (-signs[0] * candidates[n][0], n))
    return set(ranked[:keep])


def keep_weights(trial: optuna.Trial, handle: StudyHandle, values: list[float],
                 model: torch.nn.Module, objectives: Sequence[str], directions: Sequence[str],
                 keep: int) -> str | None:  # fmt: skip
    """Upload the trial's weights if it is among the best, then remove the weights of the
    trials that are no longer (see the module docstring).

    Args:
        trial: the running trial; its metrics are stored already.
        handle: the study and its artifact folder.
        values: the trial's objective values.
        model: the trained network.
        objectives, directions: the study's.
        keep: K; 0 keeps nothing.

    Returns:
        The artifact id, or None when the trial's weights are not kept.
    """
    if keep == 0:
        return None
    candidates = _candidates(StudyQueries(handle.study), objectives)
    candidates[trial.number] = values
    if trial.number not in best_numbers(candidates, directions, keep):
        return None
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "weights.pt"
        torch.save(model.state_dict(), path)
        artifact_id = optuna.artifacts.upload_artifact(
            artifact_store=handle.artifact_store,
            file_path=str(path),
            study_or_trial=trial,
            mimetype="application/octet-stream",
        )
    trial.set_user_attr(ATTR, artifact_id)
    prune_weights(handle, objectives, directions, keep)
    return artifact_id


def prune_weights(handle: StudyHandle, objectives: Sequence[str], directions: Sequence[str],
                  keep: int) -> list[int]:  # fmt: skip
    """Remove the kept weights of every trial outside the best ``keep`` (or the Pareto
    front), and say so in its dashboard note. ``keep`` 0 removes nothing (a search that
    keeps no weights leaves what an earlier one kept).

    Returns:
        The numbers of the trials whose weights this call removed.
    """
    if keep == 0:
        return []
    study = handle.study
    queries = StudyQueries(study)
    removed = removed_weights(study)
    holders = [(trial_id, number, artifact) for trial_id, number, artifact
               in queries.with_attr(ATTR) if isinstance(artifact, str)
               and _ARTIFACT_ID.fullmatch(artifact) and artifact not in removed]  # fmt: skip
    if not holders:
        return []
    best = best_numbers(_candidates(queries, objectives), directions, keep)
    how = "the Pareto front" if len(directions) > 1 else f"the best {keep}"
    done = []
    for trial_id, number, artifact in sorted(holders, key=lambda h: h[1]):
        if number in best:
            continue
        t = queries.trial(trial_id)
        # the claim goes first: a trial never says it has weights that are gone
        study._storage.set_study_system_attr(study._study_id, REMOVED + artifact, t.number)
        path = artifact_path(handle.artifact_dir, artifact)
        if path is not None:
            try:
                handle.artifact_store.remove(artifact)
            except (ArtifactNotFound, IsADirectoryError, PermissionError):
                pass  # another worker removed it first, or it is not ours to remove
        _note_removed(study, t, f"no longer among {how}")
        done.append(t.number)
    return done


def _note_removed(study: optuna.Study, trial: FrozenTrial, reason: str) -> None:
    """Rewrite the trial's dashboard note, which now says its weights were removed (the
    dashboard still lists the artifact of a finished trial, whose attributes are frozen)."""
    from nas_skip.genotype import Genotype
    from nas_skip.searching._describe import note, rewrite_note

    text = trial.user_attrs.get("genotype")
    if not isinstance(text, str):
        return
    try:
        g = Genotype.from_json(text)
    except (ValueError, KeyError, TypeError):  # GenotypeError is a ValueError
        return
    attrs = {**trial.user_attrs, "weights_removed": reason}
    rewrite_note(study, trial._trial_id, note(trial.number, g, attrs))
