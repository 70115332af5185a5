"""``search(config)``: open the study, repair what a dead run left, run a backend, report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import optuna
from rich.console import Console

from nas_skip.evaluators import check_family, make_evaluator
from nas_skip.searching._config import SearchConfig, SearchError, task_objectives
from nas_skip.searching._devices import check_device
from nas_skip.searching._progress import StudyWatcher
from nas_skip.searching._queries import StudyQueries
from nas_skip.searching._storage import fail_stale_trials, open_study, storage_failure
from nas_skip.searching._weights import prune_weights
from nas_skip.spaces import load_space, load_spec


@dataclass(frozen=True)
class SearchResult:
    """Where the study is and what it holds after the run."""

    study: optuna.Study
    storage_url: str
    artifact_dir: Path
    finished: int
    failed: int
    pruned: int  # stopped early by the pruner, or because training diverged
    diverged: int  # pruned because training diverged (lower lr, grad_clip, warmup_epochs)
    duplicates: int
    stale: int  # RUNNING trials of a dead run, marked FAIL at the start
    interrupted: bool  # stopped by Ctrl-C
    objectives: tuple[str, ...] = ("accuracy",)  # as searched (bpc on language models)

    @property
    def study_name(self) -> str:
        return self.study.study_name


def search(config: SearchConfig, console: Console | None = None, progress: bool = True,
           log_file: str | Path | None = None) -> SearchResult:  # fmt: skip
    """Run a search to ``config.trials`` finished trials (continuing a study that has some).

    Args:
        config: the search.
        console: where progress goes (stderr by default): a progress bar in a terminal,
            one plain line per finished trial elsewhere.
        progress: show progress.
        log_file: append one JSON object per finished trial to this file, and one with
            the counts at the end.

    Returns:
        The :class:`SearchResult`.

    Raises:
        SpaceError, DatasetError, SearchError, EvaluatorError: bad input, before any
            trial runs.
    """
    from nas_skip._user_ops import registered_ops

    config = config.with_(user_ops=tuple(registered_ops()))  # for the workers
    space_path = Path(config.space)
    if space_path.suffix in (".yaml", ".yml"):  # workers may run elsewhere: an absolute path
        config = config.with_(space=str(space_path.resolve()))
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our progress bar says enough
    # an evaluator that binds its own dataset first checks the family, which says more
    # than a dataset of the wrong domain would
    check_family(config.evaluator, load_spec(config.space))
    space = load_space(config.space, config.dataset, config.train)
    config = config.with_(dataset=space.dataset)
    if config.evaluator != "objective":  # a user's function names its own values
        from nas_skip.data import dataset_info

        task = dataset_info(space.dataset).task
        config = config.with_(objectives=task_objectives(config.objectives, task))
    assert config.epochs is not None  # SearchConfig resolves it
    # refused here, before the study is touched, rather than in every worker
    check_device(config)
    make_evaluator(config.evaluator, space, config.epochs, config.threads, config.data_dir,
                   config.train_error, config.objective_fn, len(config.directions))  # fmt: skip
    try:
        handle = open_study(config, space.name, space.dataset, config.space)
        stale = fail_stale_trials(handle.study)
    except Exception as exc:  # a storage that takes no write (a full disk): one line
        what = None if isinstance(exc, SearchError) else storage_failure(exc)
        if what is None:
            raise
        raise SearchError(f"--storage {config.storage_url()}: cannot write ({what})") from None
    maximize = config.directions[0] == "maximize"
    interrupted = False
    if config.strategy == "oneshot":  # a supernet, then its network as the next trial
        from nas_skip.searching._oneshot import run_oneshot

        try:
            run_oneshot(config, space, handle, console, progress)
        except KeyboardInterrupt:
            raise SearchError("--strategy oneshot: interrupted; nothing was queued") from None
        queued = StudyQueries(handle.study).counts()  # this run's network, and any a killed
        config = config.with_(trials=queued["finished"] + queued["WAITING"])  # run queued
    with StudyWatcher(handle.storage_url, handle.study.study_name, config.trials, maximize,
                      console, enabled=progress, log_file=log_file) as watcher:  # fmt: skip
        try:
            if config.backend == "local":
                from nas_skip.searching._local import run_local

                run_local(config, space)
            else:
                from nas_skip.searching._ray import run_ray

                run_ray(config, space)
        except KeyboardInterrupt:
            interrupted = True
    # each trial that keeps weights prunes the rest; once more at the end trims what a run
    # with a larger --keep, or a trial that died after keeping, left
    prune_weights(handle, config.objectives, config.directions, config.keep)
    queries = StudyQueries(handle.study)
    c = queries.counts()
    watcher.summary(c, queries.best_value(maximize), interrupted)
    return SearchResult(handle.study, handle.storage_url, handle.artifact_dir, c["finished"],
                        c["FAIL"], c["PRUNED"], c["diverged"], c["duplicate"], stale,
                        interrupted, config.objectives)  # fmt: skip
