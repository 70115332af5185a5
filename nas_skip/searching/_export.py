"""Export a trial of a study as standalone code with its trained weights."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas_skip.evaluators import DEFAULT_EVALUATOR
from nas_skip.genotype import Genotype
from nas_skip.searching._artifacts import ArtifactFolders, recorded_folder
from nas_skip.searching._config import SearchError
from nas_skip.searching._names import score_name, study_labels
from nas_skip.searching._progress import top_trials
from nas_skip.searching._reading import (
    duplicate_problem,
    open_existing,
    parse_genotype,
    trial_problem,
)
from nas_skip.searching._weights import kept_weights, removed_weights
from nas_skip.train._metrics import named_scores


@dataclass(frozen=True)
class Exported:
    """What ``export_trial`` wrote."""

    trial: FrozenTrial
    out_dir: Path
    files: tuple[Path, ...]
    retrained: bool
    pareto: tuple[FrozenTrial, ...]  # the front, for a multi-objective study
    weights: bool = True  # False: a table-evaluated trial, exported without weights


def load_study(storage_url: str, study_name: str) -> optuna.Study:
    """Open an existing study; a missing one is an error listing those that exist, and a
    storage that does not exist is an error too (it is not created: see
    :func:`~nas_skip.searching._reading.open_existing`)."""
    storage = open_existing(storage_url)
    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        names = optuna.get_all_study_names(storage)
        raise SearchError(
            f"--study {study_name}: no such study in {storage_url} "
            f"(studies: {', '.join(names) or 'none'})"
        ) from None


def choose_trial(study: optuna.Study, number: int | None, purpose: str = "export") -> FrozenTrial:
    """The trial ``number``, or the best (the most accurate of the Pareto front).

    Args:
        study: the study.
        number: the trial; None: the best.
        purpose: what the trial is chosen for ("export", "retrain"), for the messages.

    Raises:
        SearchError: no such trial, or it did not complete, or nothing completed yet.
    """
    if number is None:
        best = top_trials(study, 1)
        if not best:
            raise SearchError(f"--study {study.study_name}: no complete trial to {purpose} yet")
        return best[0]
    trials = study.get_trials(deepcopy=False)
    if not 0 <= number < len(trials):
        raise SearchError(f"--trial {number}: the study has trials 0 to {len(trials) - 1}")
    trial = trials[number]
    if trial.state != TrialState.COMPLETE:
        raise SearchError(f"--trial {number}: it is {trial.state.name}, not COMPLETE")
    return trial


def refuse_malformed(study: optuna.Study, trial: FrozenTrial, purpose: str = "export") -> None:
    """Refuse a trial whose stored attributes cannot be read as a nas-skip trial's.

    Raises:
        SearchError: no genotype, one this nas-skip cannot read, or a ``duplicate_of``
            that names no original (:func:`~nas_skip.searching._reading.trial_problem`); the
            message names the trial and the attribute.
    """
    problem = trial_problem(trial, study.get_trials(deepcopy=False))
    if problem is not None:
        raise SearchError(f"--trial {trial.number}: {problem}; it cannot be {purpose}ed")


def _weights_source(study: optuna.Study, trial: FrozenTrial) -> FrozenTrial:
    """A duplicate's weights are its original's (``duplicate_of`` checked first)."""
    trials = study.get_trials(deepcopy=False)
    problem = duplicate_problem(trial, trials)
    if problem is not None:
        raise SearchError(f"--trial {trial.number}: {problem}")
    original = trial.user_attrs.get("duplicate_of")
    return trials[original] if original is not None else trial


def kept_state(store: ArtifactFolders, study: optuna.Study, trial: FrozenTrial,
               genotype: Genotype) -> dict[str, Any] | None:  # fmt: skip
    """The trial's kept weights, read from the user's artifact folders and checked to fit
    its network; None when the search did not keep them. Both ``nas-skip export`` and
    :func:`nas_skip.load_model` load a trial's weights through it.

    Raises:
        SearchError: they were kept, but no folder holds them (the message names the
            folder the study records, for ``--artifacts``), or they do not load into the
            trial's network.
    """
    import torch
    from optuna.artifacts.exceptions import ArtifactNotFound

    from nas_skip.compile import build

    artifact = kept_weights(_weights_source(study, trial), removed_weights(study))
    if artifact is None:  # not kept, removed since, or not an artifact id
        return None
    try:
        with store.open_reader(artifact) as f:
            state = torch.load(f, weights_only=True)
    except ArtifactNotFound:
        recorded = recorded_folder(study)
        hint = ""
        if recorded is not None and not store.serves(recorded):
            hint = f" (the study records {recorded}: pass the search's --artifacts)"
        raise SearchError(
            f"--trial {trial.number}: its kept weights (artifact {artifact}) are not in the "
            f"artifact folder {store}{hint}; or add --retrain-epochs E to train it again"
        ) from None
    except Exception as exc:  # noqa: BLE001 - torch.load raises whatever the bytes provoke
        raise SearchError(
            f"--trial {trial.number}: its weights (artifact {artifact}) do not load "
            f"({type(exc).__name__})"
        ) from None
    try:
        build(genotype).load_state_dict(state)  # the keys do not depend on the class name
    except (RuntimeError, TypeError, AttributeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SearchError(
            f"--trial {trial.number}: its weights (artifact {artifact}) do not fit its "
            f"genotype ({first[:160]})"
        ) from None
    return dict(state)


def export_trial(storage_url: str, study_name: str, out_dir: Path, number: int | None = None,
                 class_name: str = "Net", retrain_epochs: int | None = None,
                 data_dir: str | None = None,
                 artifacts: str | Path | None = None) -> Exported:  # fmt: skip
    """Write ``model.py``, ``weights.pt``, ``genotype.json`` and ``metrics.json``.

    Args:
        storage_url, study_name: the study.
        out_dir: the folder to write (created).
        number: the trial; None: the best (most accurate on the Pareto front).
        class_name: the exported ``nn.Module``'s name.
        retrain_epochs: retrain for this many epochs when the trial's weights were not
            kept (the search keeps only its best trials' weights), with the trial's own
            hyperparameters (:class:`~nas_skip.searching._retrain.Recipe`, seed = the trial's
            number; ``nas-skip retrain`` runs several seeds). A trial a table evaluated
            (``nb201-*``) has none: without retraining, its code, genotype and metrics are
            written without ``weights.pt``.
        data_dir: local dataset files, for retraining on cifar10 / mnist.
        artifacts: the artifact folder the search wrote (its ``--artifacts``); None:
            ``runs/artifacts``. The folder the study records is never read
            (:mod:`~nas_skip.searching._artifacts`).

    Raises:
        SearchError: no such study or trial; a malformed trial; no kept weights (or
            weights that do not load) and no ``retrain_epochs``.
    """
    from nas_skip.searching._retrain import Recipe

    study = load_study(storage_url, study_name)
    trial = choose_trial(study, number)
    refuse_malformed(study, trial)
    genotype = trial_genotype(trial)
    retrained = False
    state: dict[str, Any] | None = None
    try:
        state = kept_state(ArtifactFolders(artifacts), study, trial, genotype)
    except SearchError:
        if not retrain_epochs:
            raise  # kept, but missing or unreadable: retraining is the user's call
    trained = study.user_attrs.get("evaluator", DEFAULT_EVALUATOR) == DEFAULT_EVALUATOR
    if state is None and retrain_epochs:
        recipe = Recipe.of(study, trial, data_dir)
        _, model = recipe.fit(retrain_epochs, seed=trial.number, progress=True)
        state, retrained = model.state_dict(), True
    elif state is None and trained:
        raise SearchError(
            f"--trial {trial.number}: its weights were not kept (the search keeps only its "
            "best --keep trials' weights); add --retrain-epochs E to train it again"
        )
    # else: looked up in a table, the architecture is the result: nothing was trained
    metrics = export_metrics(study, trial, retrained)
    files = write_export(out_dir, genotype, class_name, state, metrics)
    pareto = tuple(top_trials(study, 50)) if len(study.directions) > 1 else ()
    return Exported(trial, out_dir, files, retrained, pareto, state is not None)


def trial_genotype(trial: FrozenTrial) -> Genotype:
    """The genotype the trial stored (every nas-skip trial that got a sample has one).

    Raises:
        SearchError: the trial has none (a study made outside nas-skip), or it is not a
            valid genotype of this nas-skip's schema.
    """
    return parse_genotype(trial)


def write_export(
    out_dir: Path,
    genotype: Genotype,
    class_name: str,
    state: dict[str, Any] | None,
    metrics: dict[str, Any],
) -> tuple[Path, ...]:
    """Write the standalone model: ``model.py``, ``weights.pt`` (when ``state`` is given),
    ``genotype.json`` and ``metrics.json``; returns the paths written.

    The code is generated before anything is written (a bad ``class_name`` writes
    nothing), and the weights are checked to load into the exported class.
    """
    import torch

    from nas_skip.compile import build
    from nas_skip.export import export_code

    source = export_code(genotype, class_name)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / "weights.pt"
    if state is not None:
        build(genotype, class_name).load_state_dict(state)  # the weights fit the class
        torch.save(state, weights)
    else:
        weights.unlink(missing_ok=True)  # an older export's weights are not this trial's
    (out_dir / "model.py").write_text(source, encoding="utf-8")
    (out_dir / "genotype.json").write_text(genotype.dumps() + "\n", encoding="utf-8")
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    names = ("model.py", "weights.pt", "genotype.json", "metrics.json")
    return tuple(out_dir / n for n in names if state is not None or n != "weights.pt")


def export_metrics(study: optuna.Study, trial: FrozenTrial, retrained: bool) -> dict[str, Any]:
    """``metrics.json``: the study, the trial, its values, choices and user attributes.

    Values are named as people read them (``mIoU`` for segmentation, whose scores are
    ``val_miou`` and ``test_miou``; ``metric`` names the score); ``weights_artifact``
    appears only while the weights are kept.
    """
    labels = study_labels(study)
    attrs = {k: v for k, v in trial.user_attrs.items() if k not in ("genotype", "worker")}
    if kept_weights(trial, removed_weights(study)) is None:
        attrs.pop("weights_artifact", None)  # removed when better trials came
    task = "segmentation" if score_name(study.user_attrs.get("dataset")) == "mIoU" else ""
    out = named_scores({
        "study": study.study_name,
        "trial": trial.number,
        "values": dict(zip(labels, trial.values, strict=False)),
        "choices": trial.params,
        "space": study.user_attrs.get("space"),
        "dataset": study.user_attrs.get("dataset"),
        "epochs": study.user_attrs.get("epochs"),
        "retrained": retrained,
        **attrs,
    }, task)  # fmt: skip
    if study.user_attrs.get("objective_fn"):  # scored by a user's function, not accuracy
        out["metric"] = study.user_attrs["objective_fn"]
    elif labels[:1] == ["bpc"]:  # a language model's bits per character
        out["metric"] = "bpc"
    return out
