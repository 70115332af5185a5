"""What a person watches during a search: a progress bar read from the study's storage.

The bar polls the storage (any backend, any number of workers, other machines included)
rather than listening to one process, so what it shows is what the study holds.
"""

from __future__ import annotations

import json
import math
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import optuna
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

from nas_skip.searching._names import objective_labels
from nas_skip.searching._queries import Cursor, StudyQueries
from nas_skip.searching._storage import diverged, make_storage, originals
from nas_skip.searching._weights import kept_weights, removed_weights


class StudyWatcher:
    """What a person sees of a running study, read from its storage.

    In a terminal, a rich progress bar: finished / running / failed / duplicates, best.
    Elsewhere (a pipe, nohup, a Slurm log), one plain line per finished trial (number,
    state, value, seconds, parameters) instead, as a log reads best. ``log_file`` also
    gets one JSON object per finished trial, in both cases. Use as a context manager; it
    polls in a thread with its own storage connection and one study object, asking only
    what changed (:mod:`nas_skip.searching._queries`), whatever the study's size.
    """

    def __init__(self, storage_url: str, study_name: str, target: int, maximize: bool,
                 console: Console | None = None, interval: float = 0.5,
                 enabled: bool = True, log_file: str | Path | None = None) -> None:  # fmt: skip
        self.storage_url, self.study_name = storage_url, study_name
        self.target, self.maximize, self.interval = target, maximize, interval
        self.console = console or Console(stderr=True)
        self.enabled = enabled
        self.lines = enabled and not self.console.is_terminal  # plain lines, not a bar
        self.log_path = Path(log_file) if log_file else None
        self._stop = threading.Event()
        self._queries: StudyQueries | None = None
        self._cursor: Cursor = Cursor(-1, frozenset())
        self._counts: Counter[str] = Counter()
        self._best: float | None = None
        self._log: TextIO | None = None
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
        if self.log_path is not None:
            self._log = self.log_path.open("a", encoding="utf-8")
        if self.enabled or self._log is not None:
            self._open()  # the trials finished before the run are not reported
            if self.enabled and not self.lines:
                self._progress.start()
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self.refresh()
            if self.enabled and not self.lines:
                self._progress.stop()
        if self._log is not None:
            self._log.close()

    def _open(self) -> StudyQueries:
        if self._queries is None:  # one storage and study for the watcher's lifetime
            study = optuna.load_study(study_name=self.study_name,
                                      storage=make_storage(self.storage_url))  # fmt: skip
            self._queries = StudyQueries(study)
            # counted once; then only the trials that finish are read, each once
            self._counts = self._queries.counts()
            self._best = self._queries.best_value(self.maximize)
            _, self._cursor = self._queries.finished_since(None)
        return self._queries

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except Exception:  # noqa: S110 - a busy database must not end the search
                pass

    def refresh(self) -> None:
        queries = self._open()
        done, self._cursor = queries.finished_since(self._cursor)
        for t in done:
            self._count(t)
            if not self.lines and self._log is None:
                continue
            record = trial_record(t)
            if self.lines:
                self.console.print(plain_line(record), markup=False, highlight=False,
                                   soft_wrap=True)  # fmt: skip
            if self._log is not None:
                self._log.write(json.dumps(record) + "\n")
                self._log.flush()
        if self.enabled and not self.lines:
            c, best = self._counts, self._best
            status = (
                f"running {len(self._cursor.open)}  failed {c['FAIL']}  pruned {c['PRUNED']}  "
                f"diverged {c['diverged']}  duplicates {c['duplicate']}"
                + (f"  best {best:.4f}" if best is not None else "")
            )
            self._progress.update(self._task, completed=min(c["finished"], self.target),
                                  status=status)  # fmt: skip

    def _count(self, t: FrozenTrial) -> None:
        """Add a trial that finished to the counts and the best value."""
        c = self._counts
        c[t.state.name] += 1
        c["finished"] += t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        c["duplicate"] += "duplicate_of" in t.user_attrs
        c["diverged"] += diverged(t)
        if t.state == TrialState.COMPLETE and t.values and math.isfinite(t.values[0]):
            v, best = t.values[0], self._best
            if best is None or (v > best if self.maximize else v < best):
                self._best = v

    def summary(self, counts: Counter[str], best: float | None, interrupted: bool) -> None:
        """Append the run's summary to the log file (the CLI prints its own)."""
        if self.log_path is None:
            return
        record = {"summary": {k: counts[k] for k in ("finished", "COMPLETE", "PRUNED",
                                                     "diverged", "duplicate", "FAIL")},
                  "study": self.study_name, "best": best, "target": self.target,
                  "interrupted": interrupted}  # fmt: skip
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(json.dumps(record) + "\n")


def trial_record(t: FrozenTrial) -> dict[str, Any]:
    """What a log says of a finished trial (a JSON object)."""
    ended = t.datetime_complete
    seconds = (ended - t.datetime_start).total_seconds() if ended and t.datetime_start else None
    record: dict[str, Any] = {"trial": t.number, "state": t.state.name, "values": t.values,
                              "seconds": None if seconds is None else round(seconds, 3),
                              "params": t.params}  # fmt: skip
    for key in ("duplicate_of", "fail_reason", "pruned_reason", "hash"):
        if key in t.user_attrs:
            record[key] = t.user_attrs[key]
    return record


def plain_line(record: dict[str, Any]) -> str:
    """One line of a finished trial for a log that is no terminal."""
    values = record["values"]
    shown = " ".join(f"{v:.6g}" for v in values) if values else "-"
    seconds = "-" if record["seconds"] is None else f"{record['seconds']:.1f}s"
    why = record.get("fail_reason") or record.get("pruned_reason")
    dup = f" duplicate_of={record['duplicate_of']}" if "duplicate_of" in record else ""
    params = json.dumps(record["params"], separators=(",", ":"), default=str)
    line = f"trial {record['trial']} {record['state']} value={shown} {seconds}{dup} {params}"
    return line + (f" reason={json.dumps(why)}" if why else "")


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
        values = [fmt.get(o, "{:.6g}".format)(v) for o, v in zip(objectives, t.values,
                                                                  strict=True)]  # fmt: skip
        if params_column:
            values.append(f"{t.user_attrs.get('params', 0):,}")
        kept = "kept" if kept_weights(t, removed) is not None else ""
        table.add_row(str(t.number), *values, str(t.user_attrs.get("hash", "")), kept)
    return table
