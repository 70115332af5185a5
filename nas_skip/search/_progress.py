"""What a person watches during a search: a progress bar read from the study's storage.

The bar polls the storage (any backend, any number of workers, other machines included)
rather than listening to one process, so what it shows is what the study holds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from nas_skip.search._names import objective_labels
from nas_skip.search._storage import counts, make_storage, originals
from nas_skip.search._weights import kept_weights, removed_weights


class StudyWatcher:
    """A rich progress bar of a study: finished / running / failed / duplicates, best.

    Use as a context manager; it polls in a thread with its own storage connection.
    """

    def __init__(self, storage_url: str, study_name: str, target: int, maximize: bool,
                 console: Console | None = None, interval: float = 0.5,
                 enabled: bool = True) -> None:  # fmt: skip
        self.storage_url, self.study_name = storage_url, study_name
        self.target, self.maximize, self.interval = target, maximize, interval
        self.console = console or Console(stderr=True)
        self.enabled = enabled
        self._stop = threading.Event()
        self._storage: BaseStorage | None = None
        self._thread: threading.Thread | None = None
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self._task = self._progress.add_task(study_name, total=target, status="starting")

    def __enter__(self) -> StudyWatcher:
        if self.enabled:
            self._progress.start()
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self.refresh()
            self._progress.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except Exception:  # noqa: S110 - a busy database must not end the search
                pass

    def refresh(self) -> None:
        if self._storage is None:  # opened in the polling thread, used only there
            self._storage = make_storage(self.storage_url)
        study = optuna.load_study(study_name=self.study_name, storage=self._storage)
        trials = study.get_trials(deepcopy=False)
        c = counts(trials)
        best = best_value(trials, self.maximize)
        status = (
            f"running {c['RUNNING']}  failed {c['FAIL']}  pruned {c['PRUNED']}  "
            f"diverged {c['diverged']}  duplicates {c['duplicate']}"
            + (f"  best {best:.4f}" if best is not None else "")
        )
        self._progress.update(self._task, completed=min(c["finished"], self.target),
                              status=status)  # fmt: skip


def best_value(trials: list[FrozenTrial], maximize: bool) -> float | None:
    values = [t.values[0] for t in trials if t.state == TrialState.COMPLETE and t.values]
    if not values:
        return None
    return max(values) if maximize else min(values)


def top_trials(study: optuna.Study, n: int = 5) -> list[FrozenTrial]:
    """The best ``n`` complete trials (the Pareto front, best accuracy first, for several
    objectives); duplicates are left out, their originals stand for them."""
    done = originals(study)
    if len(study.directions) > 1:
        front = {t.number for t in study.best_trials}
        done = [t for t in done if t.number in front]
    sign = -1.0 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else 1.0
    return sorted(done, key=lambda t: (sign * t.values[0], t.number))[:n]


def summary_table(study: optuna.Study, objectives: tuple[str, ...], n: int = 5) -> Table:
    """The final table: value(s), parameters, hash and trial number of the best trials.

    Each column appears once (``params`` as an objective is not repeated), objectives are
    named as people read them (``mIoU`` for segmentation), and ``weights`` says whether
    the trial's weights are kept now (not whether they once were).
    """
    title = "Pareto front" if len(objectives) > 1 else f"top {n}"
    table = Table(title=f"{study.study_name}: {title}", header_style="bold")
    table.add_column("trial", justify="right")
    for label in objective_labels(objectives, study.user_attrs.get("dataset")):
        table.add_column(label, justify="right")
    params_column = "params" not in objectives
    if params_column:
        table.add_column("params", justify="right")
    table.add_column("hash")
    table.add_column("weights")
    removed = removed_weights(study)
    fmt: dict[str, Callable[[float], str]] = {
        "accuracy": lambda v: f"{v:.4f}",
        "params": lambda v: f"{int(v):,}",
        "latency": lambda v: f"{v:.3f} ms",
        "flops": lambda v: f"{v:,.0f}",
    }
    for t in top_trials(study, n if len(objectives) == 1 else 50):
        values = [fmt[o](v) for o, v in zip(objectives, t.values, strict=True)]
        if params_column:
            values.append(f"{t.user_attrs.get('params', 0):,}")
        kept = "kept" if kept_weights(t, removed) is not None else ""
        table.add_row(str(t.number), *values, str(t.user_attrs.get("hash", "")), kept)
    return table
