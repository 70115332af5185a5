"""``retrain``: confirm a search's result by training a trial again, longer, with several seeds.

A search ranks networks on a short budget and one seed; ``retrain`` trains one trial's
genotype with the trial's own hyperparameters (:class:`Recipe`: the space's ``train:``
choices as the trial made them, constants and the search's fixed ``--lr``-style values
included) for ``epochs`` under seeds ``0 .. seeds-1``, and reports validation and test
scores (accuracy, or mIoU for segmentation) as mean and sample standard deviation.

The result is stored on the study as the user attribute ``retrain:<trial number>`` (Optuna
refuses to change a finished trial's own attributes), appended to the trial's
optuna-dashboard note, shown by ``nas-skip report``'s "Confirmed" table, and the best
seed's weights are exported as ``nas-skip export`` writes them. A trial holds one result:
retraining it again replaces the previous one, whatever its epochs and seeds (a mean over
runs of different budgets would mean nothing).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial
from rich.console import Console

from nas_skip.evaluators import DEFAULT_EVALUATOR
from nas_skip.genotype import Genotype
from nas_skip.searching._config import DEFAULT_RUNS, SearchError
from nas_skip.searching._export import (
    choose_trial,
    export_metrics,
    load_study,
    refuse_malformed,
    trial_genotype,
    write_export,
)

if TYPE_CHECKING:
    from torch import nn

    from nas_skip.data import Dataset
    from nas_skip.train import EpochMetrics, TrainResult

#: the least default budget: a search trains short to rank, a confirmation to converge
MIN_DEFAULT_EPOCHS = 40
PREFIX = "retrain:"  # study user attribute ``retrain:<trial number>`` holds a trial's result


def retrain_key(number: int) -> str:
    """The study user attribute that holds trial ``number``'s retraining result."""
    return f"{PREFIX}{number}"


#: what a stored result must hold for the report and trials.csv to show it
_SCORES = ("val_mean", "val_std", "test_mean", "test_std", "search_value")


def _readable_record(value: object) -> bool:
    """Whether a stored ``retrain:<N>`` value has the shape :func:`retrain` writes (a study
    is untrusted input: anything else is left out, not shown or crashed on)."""
    if not isinstance(value, dict):
        return False
    scores = all(
        isinstance(value.get(k), int | float) and not isinstance(value.get(k), bool)
        for k in _SCORES
    )
    epochs = value.get("epochs")
    whole = isinstance(epochs, int) and not isinstance(epochs, bool)
    return scores and whole and isinstance(value.get("seeds"), list)


def retrained(study: optuna.Study) -> dict[int, dict[str, Any]]:
    """Every stored retraining result of the study, by trial number (ascending); values
    not shaped as :func:`retrain` stores them are left out."""
    found = {}
    for key, value in study.user_attrs.items():
        number = key.removeprefix(PREFIX)
        plain = number.isascii() and number.isdigit() and len(number) < 10  # not "²"
        if key.startswith(PREFIX) and plain and _readable_record(value):
            found[int(number)] = value
    return dict(sorted(found.items()))


def default_epochs(study: optuna.Study) -> int:
    """The budget ``retrain`` uses when none is given: the search's, and at least 40."""
    return max(MIN_DEFAULT_EPOCHS, int(study.user_attrs.get("epochs") or 0))


def check_search(study: optuna.Study) -> None:
    """Refuse a study ``nas-skip search`` did not make: nothing says how to train it.

    Raises:
        SearchError: the study records no space and dataset.
    """
    if "space" not in study.user_attrs or "dataset" not in study.user_attrs:
        raise SearchError(
            f"--study {study.study_name}: not a nas-skip search (no space and dataset "
            "recorded), so its trials cannot be trained again"
        )


@dataclass(frozen=True)
class Recipe:
    """How a trial is trained: its network, its data, its hyperparameters."""

    genotype: Genotype
    data: Dataset
    hparams: dict[str, Any]  # TrainConfig fields of the trial (lr, batch_size, ...)

    @classmethod
    def of(cls, study: optuna.Study, trial: FrozenTrial, data_dir: str | None = None) -> Recipe:
        """The recipe of ``trial``: the genotype it stored, the study's dataset, and its
        space's training choices as the trial made them.

        Raises:
            SearchError: the study was not made by ``nas-skip search``, or it was
                evaluated in a table and the dataset to train on is not available.
            SpaceError, DatasetError: the space file or the dataset cannot be read.
        """
        from nas_skip.data import DatasetError, load_dataset
        from nas_skip.spaces import load_space

        attrs = study.user_attrs
        check_search(study)
        genotype = trial_genotype(trial)
        # the search's fixed training values (--lr ...) replace the file's train: entries
        train = attrs.get("train") or None
        space = load_space(attrs["space"], attrs["dataset"], train)
        try:
            data = load_dataset(space.dataset, space.domain, data_dir)
        except DatasetError as exc:
            evaluator = attrs.get("evaluator", DEFAULT_EVALUATOR)
            if evaluator == DEFAULT_EVALUATOR:
                raise
            raise SearchError(
                f"--study {study.study_name}: its trials were looked up in a table "
                f"({evaluator}); training one needs the {space.dataset} data ({exc})"
            ) from None
        # the space's training choices, constants included (they are not trial params)
        hparams = space.sample_train(optuna.trial.FixedTrial(trial.params))
        return cls(genotype, data, hparams)

    def fit(self, epochs: int, seed: int, threads: int = 1,
            callback: Callable[[int, EpochMetrics], None] | None = None,
            progress: bool = False,
            compile: bool = False) -> tuple[TrainResult, nn.Module]:  # fmt: skip
        """Train the genotype once with :func:`nas_skip.train.fit` (the search's trainer).

        Raises:
            TrialDiverged: the loss became NaN or infinite.
        """
        from nas_skip.train import TrainConfig, fit

        # the training split's evaluation measures nothing a confirmation reports
        config = TrainConfig(epochs=epochs, seed=seed, threads=threads, train_error=False,
                             compile=compile, **self.hparams)  # fmt: skip
        return fit(self.genotype, self.data, config, callback, progress=progress)


@dataclass(frozen=True)
class Retrained:
    """What :func:`retrain` measured, stored and wrote."""

    study: str
    trial: FrozenTrial
    record: dict[str, Any]  # what the study stores as ``retrain:<trial number>``
    out_dir: Path
    files: tuple[Path, ...] = field(default=())

    @property
    def metric(self) -> str:
        """ "accuracy", "mIoU" for segmentation, "bpc" for a language model."""
        return str(self.record["metric"])

    @property
    def seeds(self) -> list[int]:
        return list(self.record["seeds"])

    @property
    def val(self) -> list[float]:
        """Validation scores, one per seed."""
        return list(self.record["val"])

    @property
    def test(self) -> list[float]:
        """Test scores, one per seed."""
        return list(self.record["test"])


def summarize(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1; 0 for one value)."""
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else 0.0


def retrain(storage_url: str, study_name: str, trial: int | None = None,
            epochs: int | None = None, seeds: int = 3, threads: int = 1,
            data_dir: str | None = None, out: str | Path | None = None, class_name: str = "Net",
            progress: bool = True, console: Console | None = None,
            compile: bool = False) -> Retrained:  # fmt: skip
    """Train a trial again under ``seeds`` seeds, store the scores, export the best seed.

    Args:
        storage_url, study_name: the study (as ``nas-skip search`` made it).
        trial: the trial number; None: the best (most accurate on the Pareto front).
        epochs: the budget of each run; None: :func:`default_epochs`.
        seeds: how many runs, with seeds ``0 .. seeds-1``.
        threads: torch threads per run.
        data_dir: local dataset files (cifar10, mnist ...).
        out: the export folder; None: ``runs/retrain/<study>/trial-<N>``.
        class_name: the exported ``nn.Module``'s name.
        compile: ``torch.compile`` each run (see :class:`nas_skip.train.TrainConfig`).
        progress: show a rich progress bar over seeds x epochs.
        console: where the bar goes (stderr by default).

    Returns:
        The :class:`Retrained` result; its ``record`` is also stored on the study.

    Raises:
        SearchError: bad ``epochs``, ``seeds`` or ``threads``; no such study or trial, or
            it did not complete; a tabular study's dataset is not available; a seed
            diverged (nothing is stored then).
    """
    from nas_skip.train import TrialDiverged

    for flag, value in (("epochs", epochs), ("seeds", seeds), ("threads", threads)):
        if value is not None and (isinstance(value, bool) or value < 1):
            raise SearchError(f"--{flag}: must be at least 1, got {value}")
    study = load_study(storage_url, study_name)
    chosen = choose_trial(study, trial, "retrain")
    check_search(study)
    refuse_malformed(study, chosen, "retrain")
    budget = epochs or default_epochs(study)
    recipe = Recipe.of(study, chosen, data_dir)
    runs: list[TrainResult] = []
    best_state: dict[str, Any] | None = None
    started = time.perf_counter()
    with _Bar(chosen.number, seeds, budget, progress, console) as bar:
        for seed in range(seeds):
            try:
                result, model = recipe.fit(budget, seed, threads, bar.callback(seed),
                                           compile=compile)  # fmt: skip
            except TrialDiverged as exc:
                raise SearchError(
                    f"--trial {chosen.number}: seed {seed} diverged ({exc}); nothing was stored"
                ) from None
            if not runs or _better(result, runs):
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            runs.append(result)
    record = _record(study, chosen, budget, runs, time.perf_counter() - started)
    record["hparams"] = recipe.hparams
    default = DEFAULT_RUNS / "retrain" / study.study_name / f"trial-{chosen.number}"
    folder = Path(out) if out is not None else default
    record["out"] = str(folder.resolve())
    metrics = {**export_metrics(study, chosen, retrained=True), "retrain": record}
    files = write_export(folder, recipe.genotype, class_name, best_state, metrics)
    study.set_user_attr(retrain_key(chosen.number), record)
    _save_note(study, chosen, recipe.genotype, record)
    return Retrained(study.study_name, chosen, record, folder, files)


def _scores(r: TrainResult) -> tuple[float, float]:
    """Validation and test score of a run: bits per character for a language model (lower
    is better), else accuracy (mIoU for segmentation)."""
    if r.val_bpc is not None and r.test_bpc is not None:
        return r.val_bpc, r.test_bpc
    return r.val_accuracy, r.test_accuracy


def _better(result: TrainResult, runs: list[TrainResult]) -> bool:
    """Whether ``result`` validates better than every run of ``runs``."""
    sign = -1.0 if result.val_bpc is not None else 1.0
    return all(sign * _scores(result)[0] > sign * _scores(r)[0] for r in runs)


def _record(study: optuna.Study, trial: FrozenTrial, epochs: int, runs: list[TrainResult],
            seconds: float) -> dict[str, Any]:  # fmt: skip
    val = [_scores(r)[0] for r in runs]
    test = [_scores(r)[1] for r in runs]
    (val_mean, val_std), (test_mean, test_std) = summarize(val), summarize(test)
    sign = -1.0 if runs[0].val_bpc is not None else 1.0
    metric = {"segmentation": "mIoU", "language_model": "bpc"}.get(runs[0].task, "accuracy")
    return {
        "epochs": epochs,
        "seeds": list(range(len(runs))),
        "metric": metric,
        "val": val,
        "test": test,
        "val_mean": val_mean,
        "val_std": val_std,
        "test_mean": test_mean,
        "test_std": test_std,
        "best_seed": max(range(len(val)), key=lambda i: (sign * val[i], -i)),
        "search_value": trial.values[0],
        "search_epochs": study.user_attrs.get("epochs"),
        "evaluator": study.user_attrs.get("evaluator", DEFAULT_EVALUATOR),
        "device": runs[0].device,
        "seconds": round(seconds, 3),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def note_section(record: dict[str, Any]) -> str:
    """The markdown a retraining adds to the trial's optuna-dashboard note."""
    metric = record["metric"]
    seeds = ", ".join(str(s) for s in record["seeds"])
    lines = [
        f"#### Retrained: {record['epochs']} epochs, {len(record['seeds'])} seeds",
        "",
        f"| {metric} | mean | std | per seed ({seeds}) |",
        "|---|---|---|---|",
    ]
    for split, label in (("val", "validation"), ("test", "test")):
        each = ", ".join(f"{v:.4f}" for v in record[split])
        mean, std = record[f"{split}_mean"], record[f"{split}_std"]
        lines.append(f"| {label} | {mean:.4f} | {std:.4f} | {each} |")
    search = f"{record['search_value']:.4f}"
    if record.get("search_epochs"):
        search += f" after {record['search_epochs']} epochs"
    lines += ["", f"search: {search}; best seed {record['best_seed']}: weights in "
              f"`{record['out']}`"]  # fmt: skip
    return "\n".join(lines) + "\n"


def _save_note(study: optuna.Study, trial: FrozenTrial, g: Genotype,
               record: dict[str, Any]) -> None:  # fmt: skip
    """Rewrite the trial's dashboard note: the search's note, then the retraining."""
    from nas_skip.searching._describe import note, rewrite_note

    body = note(trial.number, g, dict(trial.user_attrs)) + "\n" + note_section(record)
    # a note lives in the study's system attributes, so a finished trial can get one
    rewrite_note(study, trial._trial_id, body)


class _Bar:
    """One rich progress bar over seeds x epochs (or nothing when disabled)."""

    def __init__(self, number: int, seeds: int, epochs: int, enabled: bool,
                 console: Console | None) -> None:  # fmt: skip
        from nas_skip.train import epoch_progress

        self.number, self.seeds, self.enabled = number, seeds, enabled
        self.progress = epoch_progress(console or Console(stderr=True))
        self.task = self.progress.add_task(f"trial {number}: retraining", total=seeds * epochs)

    def __enter__(self) -> _Bar:
        if self.enabled:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.progress.stop()

    def callback(self, seed: int) -> Callable[[int, EpochMetrics], None]:
        """The per-epoch callback of seed ``seed``'s run."""

        def update(epoch: int, m: EpochMetrics) -> None:
            score, value = m.shown()
            desc = f"trial {self.number} seed {seed + 1}/{self.seeds}: {score} {value:.4f}"
            self.progress.update(self.task, advance=1, description=desc)

        return update
