"""Export a trial of a study as standalone code with its trained weights."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.artifacts import FileSystemArtifactStore
from optuna.trial import FrozenTrial, TrialState

from nas_skip.evaluators import DEFAULT_EVALUATOR
from nas_skip.genotype import Genotype
from nas_skip.search._config import SearchError
from nas_skip.search._progress import top_trials
from nas_skip.search._storage import make_storage


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
    """Open an existing study; a missing one is an error listing those that exist."""
    storage = make_storage(storage_url)
    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        names = optuna.get_all_study_names(storage)
        raise SearchError(
            f"--study {study_name}: no such study in {storage_url} "
            f"(studies: {', '.join(names) or 'none'})"
        ) from None


def choose_trial(study: optuna.Study, number: int | None) -> FrozenTrial:
    """The trial ``number``, or the best (the most accurate of the Pareto front).

    Raises:
        SearchError: no such trial, or it did not complete, or nothing completed yet.
    """
    if number is None:
        best = top_trials(study, 1)
        if not best:
            raise SearchError(f"--study {study.study_name}: no complete trial to export yet")
        return best[0]
    trials = study.get_trials(deepcopy=False)
    if not 0 <= number < len(trials):
        raise SearchError(f"--trial {number}: the study has trials 0 to {len(trials) - 1}")
    trial = trials[number]
    if trial.state != TrialState.COMPLETE:
        raise SearchError(f"--trial {number}: it is {trial.state.name}, not COMPLETE")
    return trial


def _weights_source(study: optuna.Study, trial: FrozenTrial) -> FrozenTrial:
    """A duplicate's weights are its original's."""
    original = trial.user_attrs.get("duplicate_of")
    return study.get_trials(deepcopy=False)[original] if original is not None else trial


def export_trial(storage_url: str, study_name: str, out_dir: Path, number: int | None = None,
                 class_name: str = "Net", retrain_epochs: int | None = None,
                 data_dir: str | None = None) -> Exported:  # fmt: skip
    """Write ``model.py``, ``weights.pt``, ``genotype.json`` and ``metrics.json``.

    Args:
        storage_url, study_name: the study.
        out_dir: the folder to write (created).
        number: the trial; None: the best (most accurate on the Pareto front).
        class_name: the exported ``nn.Module``'s name.
        retrain_epochs: retrain for this many epochs when the trial's weights were not
            kept (the search keeps only its best trials' weights). A trial a table
            evaluated (``nb201-*``) has none: without retraining, its code, genotype and
            metrics are written without ``weights.pt``.
        data_dir: local dataset files, for retraining on cifar10 / mnist.

    Raises:
        SearchError: no such study or trial, or no kept weights and no ``retrain_epochs``.
    """
    import torch

    from nas_skip.compile import build
    from nas_skip.export import export_code

    study = load_study(storage_url, study_name)
    trial = choose_trial(study, number)
    genotype = Genotype.from_json(trial.user_attrs["genotype"])
    source = export_code(genotype, class_name)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / "weights.pt"
    holder = _weights_source(study, trial)
    artifact = holder.user_attrs.get("weights_artifact")
    artifact_dir = study.user_attrs.get("artifacts")
    retrained = has_weights = False
    if artifact and artifact_dir and (Path(artifact_dir) / artifact).exists():
        store = FileSystemArtifactStore(artifact_dir)
        weights.unlink(missing_ok=True)
        optuna.artifacts.download_artifact(artifact_store=store, file_path=str(weights),
                                           artifact_id=artifact)  # fmt: skip
        has_weights = True
    elif retrain_epochs:
        _retrain(study, trial, genotype, retrain_epochs, weights, data_dir)
        retrained = has_weights = True
    elif study.user_attrs.get("evaluator", DEFAULT_EVALUATOR) == DEFAULT_EVALUATOR:
        raise SearchError(
            f"--trial {trial.number}: its weights were not kept (the search keeps its best "
            "trials'); add --retrain-epochs E to train it again"
        )
    if has_weights:
        state = torch.load(weights, weights_only=True)
        build(genotype, class_name).load_state_dict(state)  # the weights fit the class
    else:  # looked up in a table: the architecture is the result, nothing was trained
        weights.unlink(missing_ok=True)
    (out_dir / "model.py").write_text(source, encoding="utf-8")
    (out_dir / "genotype.json").write_text(genotype.dumps() + "\n", encoding="utf-8")
    metrics = _metrics(study, trial, retrained)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    pareto = tuple(top_trials(study, 50)) if len(study.directions) > 1 else ()
    names = ("model.py", "weights.pt", "genotype.json", "metrics.json")
    files = tuple(out_dir / n for n in names if has_weights or n != "weights.pt")
    return Exported(trial, out_dir, files, retrained, pareto, has_weights)


def _metrics(study: optuna.Study, trial: FrozenTrial, retrained: bool) -> dict[str, Any]:
    objectives = study.user_attrs.get("objectives", ["accuracy"])
    attrs = {k: v for k, v in trial.user_attrs.items() if k not in ("genotype", "worker")}
    return {
        "study": study.study_name,
        "trial": trial.number,
        "values": dict(zip(objectives, trial.values, strict=False)),
        "choices": trial.params,
        "space": study.user_attrs.get("space"),
        "dataset": study.user_attrs.get("dataset"),
        "epochs": study.user_attrs.get("epochs"),
        "retrained": retrained,
        **attrs,
    }


def _retrain(study: optuna.Study, trial: FrozenTrial, genotype: Genotype, epochs: int,
             weights: Path, data_dir: str | None) -> None:  # fmt: skip
    import torch

    from nas_skip.data import load_dataset
    from nas_skip.spaces import load_space
    from nas_skip.train import TrainConfig, fit

    space = load_space(study.user_attrs["space"], study.user_attrs["dataset"])
    data = load_dataset(space.dataset, space.domain, data_dir)
    # the space's training choices, constants included (they are not trial params)
    hparams = space.sample_train(optuna.trial.FixedTrial(trial.params))
    config = TrainConfig(epochs=epochs, seed=trial.number, **hparams)
    _, model = fit(genotype, data, config, progress=True)
    torch.save(model.state_dict(), weights)
