"""Where a search lives: the Optuna storage, the study, its artifact store, stale trials."""

from __future__ import annotations

import os
import socket
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.artifacts import FileSystemArtifactStore
from optuna.storages import BaseStorage, JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from nas_skip.evaluators import DEFAULT_EVALUATOR
from nas_skip.searching._bulk import BulkRDBStorage
from nas_skip.searching._config import DEFAULT_RUNS, SearchConfig, SearchError
from nas_skip.searching._names import name_metrics, objective_labels
from nas_skip.searching._queries import CachedStorage, StudyQueries, ensure_indexes

# user attributes of the study that tie it to one space and budget
STUDY_KEYS = ("space", "dataset", "evaluator", "epochs", "objectives", "train")
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def make_storage(url: str) -> BaseStorage:
    """An Optuna storage from a URL: any SQLAlchemy URL, or a journal file.

    ``journal:path/to/file.log`` (or a path ending in ``.log`` / ``.jsonl``) is Optuna's
    journal file storage; anything else is an RDB URL (``sqlite:///runs/nas_skip.db``,
    ``postgresql://user@127.0.0.1:5432/db``).

    A file's folder must exist (a typo makes no folder), except nas-skip's own ``runs/``
    (``sqlite:///runs/nas_skip.db``, the default, or ``journal:runs/study.log``).

    Raises:
        SearchError: the storage cannot be opened, the URL is a bare path (``x.db``: the
            message suggests ``sqlite:///x.db``), or names a missing folder; the message
            names the URL.
    """
    journal = is_journal(url)
    if not journal and "://" not in url:
        hint = "sqlite:///FILE.db, postgresql://USER@HOST/DB, or a journal file FILE.log"
        if url.endswith((".db", ".sqlite", ".sqlite3")):
            hint = f"sqlite:///{url}"
        raise SearchError(f"--storage {url}: not a storage URL; did you mean {hint}?")
    try:
        if journal:
            path = storage_file(url)
            assert path is not None
            _need_folder(url, path)
            return JournalStorage(JournalFileBackend(str(path)))
        if not url.startswith("sqlite:///"):
            return CachedStorage(BulkRDBStorage(url))
        file = storage_file(url)
        if file is not None:  # none in memory
            _need_folder(url, file)
        # several worker processes share the file: wait for the lock, don't fail
        storage = BulkRDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
        sqlalchemy.event.listen(storage.engine, "connect", _sqlite_pragmas)
        storage.engine.dispose()  # the connections opened so far had no pragmas
        return CachedStorage(storage)  # as Optuna would wrap it, minus a read at start
    except (ImportError, ValueError, OSError) as exc:
        raise SearchError(f"--storage {url}: cannot open ({_one_line(exc)})") from None
    except Exception as exc:  # SQLAlchemy's errors: a wrong host, database or driver
        if type(exc).__module__.startswith("sqlalchemy"):
            raise SearchError(f"--storage {url}: cannot open ({_one_line(exc)})") from None
        raise


def is_journal(url: str) -> bool:
    """Whether a storage URL names Optuna's journal file storage."""
    return url.startswith("journal:") or url.endswith((".log", ".jsonl"))


def storage_file(url: str) -> Path | None:
    """The file a SQLite or journal storage URL names; None for a server or in memory."""
    if is_journal(url):
        return Path(url.removeprefix("journal:").removeprefix("///"))
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        return Path(url.removeprefix("sqlite:///"))
    return None


def _need_folder(url: str, path: Path) -> None:
    """Make ``runs/`` for a storage file in it; any other folder must exist."""
    if path.parent == DEFAULT_RUNS:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.parent.is_dir():
        raise SearchError(f"--storage {url}: no folder {path.parent} (create it first)")


def _sqlite_pragmas(connection: Any, record: Any) -> None:
    """Write-ahead logging: readers (the dashboard, other workers) do not block the writer,
    and a commit appends to the log instead of syncing a rollback journal and the file
    (Optuna's per-trial storage cost on SQLite falls by about a third). ``synchronous=
    NORMAL``: a killed process loses nothing committed; a power cut may lose the last
    commits, never the file. The file must be on a local disk (as SQLite asks anyway)."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # kept in the file once set
    cursor.execute("PRAGMA synchronous=NORMAL")  # per connection
    cursor.close()


def storage_failure(exc: BaseException) -> str | None:
    """One line on what failed, where ``exc`` arose from the storage (a database error,
    Optuna's storage error, a file that cannot be written: a full disk); else None.

    The line is the first of the error at the root of the chain ("database or disk is
    full"), not Optuna's guess about it ("... e.g. exceeding max length").
    """
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    if not any(isinstance(e, OSError | optuna.exceptions.StorageInternalError)
               or type(e).__module__.startswith("sqlalchemy") for e in chain):  # fmt: skip
        return None
    return _one_line(chain[-1])


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


@dataclass
class StudyHandle:
    """An open study with what a worker needs to find its way around it."""

    study: optuna.Study
    storage_url: str
    artifact_dir: Path

    @property
    def artifact_store(self) -> FileSystemArtifactStore:
        self.artifact_dir.mkdir(parents=True, exist_ok=True)
        return FileSystemArtifactStore(str(self.artifact_dir))


def open_study(config: SearchConfig, space_name: str, dataset: str, space_ref: str,
               sampler: optuna.samplers.BaseSampler | None = None,
               pruner: optuna.pruners.BasePruner | None = None) -> StudyHandle:  # fmt: skip
    """Create the study, or load it and check it belongs to the same search.

    Raises:
        SearchError: the named study exists for another space, dataset, budget or
            objectives (nothing stored is touched).
    """
    url = config.storage_url()
    storage = make_storage(url)
    ensure_indexes(storage)  # duplicates are looked up by key
    name = config.study_name(space_name, dataset)
    wanted = {"space": space_ref, "dataset": dataset, "epochs": config.epochs,
              "objectives": list(config.objectives), "evaluator": config.evaluator,
              "train": dict(config.train)}  # fmt: skip
    try:
        existing = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        existing = None
    if existing is not None:
        attrs = dict(existing.user_attrs)
        if "space" in attrs:  # made before evaluators were recorded: it trained
            attrs.setdefault("evaluator", DEFAULT_EVALUATOR)
        for key in STUDY_KEYS:
            if key in attrs and attrs[key] != wanted[key]:
                raise SearchError(
                    f"--study {name}: the study in {url} was made with {key}={attrs[key]!r}, "
                    f"not {wanted[key]!r}; choose another --study"
                )
    recorded = existing.user_attrs.get("objective_fn") if existing is not None else None
    if recorded is not None and recorded != config.objective_name:
        raise SearchError(f"--study {name}: the study in {url} was scored by the objective "
                          f"{recorded!r}, not {config.objective_name!r}; choose another "
                          "study")  # fmt: skip
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        directions=config.directions,
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )
    if [d.name.lower() for d in study.directions] != config.directions:
        raise SearchError(f"--study {name}: exists with other objectives; choose another --study")
    for key, value in wanted.items():
        if key not in study.user_attrs:
            study.set_user_attr(key, value)
    if config.objective_name is not None and "objective_fn" not in study.user_attrs:
        study.set_user_attr("objective_fn", config.objective_name)  # its name, never its code
    # what optuna-dashboard calls each objective ("accuracy", "mIoU", "params"), also on
    # a study made before they were set
    name_metrics(study, objective_labels(config.objectives, dataset))
    artifact_dir = config.artifact_dir().resolve()
    study.set_user_attr("artifacts", str(artifact_dir))
    return StudyHandle(study, url, artifact_dir)


def worker_id() -> str:
    """``host:pid`` of this process, stored on each trial it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def worker_alive(worker: str) -> bool:
    """Whether the ``host:pid`` worker may still run: dead only if on this host and gone."""
    host, _, pid = worker.rpartition(":")
    return not (host == socket.gethostname() and pid.isdigit() and not _alive(int(pid)))


def fail_trials_of(study: optuna.Study, worker: str, reason: str) -> int:
    """Mark FAIL the RUNNING trials that ``worker`` (host:pid) runs, with ``reason``.

    Returns:
        How many trials were marked.
    """
    marked = 0
    for t in StudyQueries(study).running():
        if t.user_attrs.get("worker") == worker:
            _fail(study, t, reason)
            marked += 1
    return marked


def _fail(study: optuna.Study, trial: FrozenTrial, reason: str) -> None:
    try:
        study._storage.set_trial_user_attr(trial._trial_id, "fail_reason", reason)
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    except RuntimeError:  # finished meanwhile (Optuna refuses to change a finished trial)
        pass


def fail_stale_trials(study: optuna.Study, grace: timedelta | None = timedelta(minutes=2)) -> int:
    """Mark FAIL the RUNNING trials whose process died (a kill -9, a lost machine).

    A trial records ``worker`` = host:pid when it starts. One from this host whose process
    is gone is stale; one without a worker is stale once older than ``grace`` (never,
    for ``None``). Trials of live processes, here or on other hosts, are left alone. Only
    the running trials are read, whatever the study's size.

    Returns:
        How many trials were marked.
    """
    now = datetime.now()
    marked = 0
    for t in StudyQueries(study).running():
        worker = t.user_attrs.get("worker")
        if worker:
            stale = not worker_alive(str(worker))
        else:
            started = t.datetime_start or now
            stale = grace is not None and now - started > grace
        if stale:
            _fail(study, t, f"left RUNNING by a run that died ({worker or 'unknown worker'})")
            marked += 1
    return marked


def originals(study: optuna.Study) -> list[FrozenTrial]:
    """The COMPLETE trials that were trained: duplicates are left out, their originals
    stand for them."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return [t for t in done if "duplicate_of" not in t.user_attrs]


def diverged(trial: FrozenTrial) -> bool:
    """Whether the trial was PRUNED because its training diverged (not by the pruner)."""
    reason = trial.user_attrs.get("pruned_reason")
    return trial.state == TrialState.PRUNED and str(reason).startswith("diverged")


def counts(trials: list[FrozenTrial]) -> Counter[str]:
    """Trials by state name, plus "duplicate" for those that reused a finished trial and
    "diverged" for the PRUNED ones whose training diverged."""
    out: Counter[str] = Counter(t.state.name for t in trials)
    out["duplicate"] = sum(1 for t in trials if "duplicate_of" in t.user_attrs)
    out["diverged"] = sum(1 for t in trials if diverged(t))
    out["finished"] = out["COMPLETE"] + out["PRUNED"]
    return out
