"""The Ray backend: Ray Tune runs the trials, OptunaSearch asks and tells the same study.

``run_ray(config, space)`` has the local backend's semantics: the study reaches
``config.trials`` finished trials (failed ones are replaced), every trial runs the shared
objective (``sample`` on the driver inside OptunaSearch, ``evaluate`` in a Ray worker),
and pruning (ASHA here) ends trials as PRUNED. Ray Tune's own state is not the search's
state: a rerun starts a fresh Tuner on the study (never ``Tuner.restore``) after
``search()`` has failed the RUNNING trials of a dead run.

Ray is started loopback-only unless ``config.ray_address`` names a cluster: Ray must not
be imported before :func:`run_ray` has set its environment, so this module imports it
lazily.

Test hooks read from ``config.extra`` (documented, not part of the CLI):
``asha_grace_period`` and ``asha_reduction_factor`` override ASHA's defaults.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
import torch

from nas_skip.errors import NasSkipError
from nas_skip.genotype import Genotype
from nas_skip.searching._artifacts import check_store, mark_store
from nas_skip.searching._config import SearchConfig, SearchError
from nas_skip.searching._devices import ray_trial_device
from nas_skip.searching._objective import Sample, Worker, evaluate, failure_reason
from nas_skip.searching._samplers import make_sampler
from nas_skip.searching._storage import (
    StudyHandle,
    is_journal,
    make_storage,
    storage_file,
    worker_id,
)
from nas_skip.spaces import Space, load_space
from nas_skip.train import EpochMetrics

if TYPE_CHECKING:
    from ray.tune.schedulers import TrialScheduler

#: set before ``import ray``: a single-node Ray whose processes all use 127.0.0.1
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
_LOOPBACK = ("127.0.0.1", "::1", "localhost")
Trainable = Callable[..., None]


def run_ray(config: SearchConfig, space: Space, trainable: Trainable | None = None) -> None:
    """Run the search on Ray Tune until the study holds ``config.trials`` finished trials.

    Args:
        config: the search; ``ray_address`` None starts a local loopback-only Ray (shut
            down at the end), "auto" or host:port joins a cluster (disconnected at the
            end). A Ray already initialised in this process is used and left running.
        space: the space, loaded for ``config.dataset``.
        trainable: replaces :func:`train_trial` (benchmarks measure the framework with a
            trivial one); called as ``trainable(trial_config, search=config)``.

    Raises:
        KeyboardInterrupt: Ctrl-C; the running trials are marked FAIL.
        SearchError: the storage cannot be shared with Ray workers, the trial resources
            exceed the cluster, or every trial failed (a broken setup).
    """
    shipped = _shipped_config(config)
    shipped = shipped.with_(store_mark=mark_store(shipped.artifact_dir()))
    with _ray_session(config):
        shipped = shipped.with_(data_ref=_put_data(config, space))
        if "after_put" in config.extra:  # tests: the files are not needed from here on
            config.extra["after_put"]()
        _tune(shipped, space, _scheduler(config), trainable or train_trial)


def _put_data(config: SearchConfig, space: Space) -> Any:
    """The search's dataset, loaded here and put in Ray's object store once: every trial
    of every worker reads it from there (zero-copy on the driver's node), and workers on
    other machines need neither the files nor the data folder. None for an evaluator that
    reads no data (the tables)."""
    import ray

    from nas_skip.data import load_dataset
    from nas_skip.evaluators import EVALUATORS

    if EVALUATORS[config.evaluator].dataset is not None:
        return None
    return ray.put(load_dataset(space.dataset, space.domain, config.data_dir))


def _shipped_config(config: SearchConfig) -> SearchConfig:
    """The config as a Ray worker needs it: absolute paths (Tune changes a trial's working
    directory) and no test hooks (they may not pickle)."""
    url = config.storage_url()
    if ":memory:" in url or url.rstrip("/") == "sqlite:":
        raise SearchError(f"--storage {url}: Ray workers need a storage they can open too")
    data_dir = str(Path(config.data_dir).resolve()) if config.data_dir else None
    return config.with_(storage=_absolute(url), artifacts=str(config.artifact_dir().resolve()),
                        data_dir=data_dir, extra={})  # fmt: skip


def _absolute(url: str) -> str:
    """A file-based storage URL with an absolute path; others unchanged."""
    file, journal = storage_file(url), is_journal(url)
    if file is None or (file.is_absolute() and not journal):
        return url
    return ("journal:" if journal else "sqlite:///") + str(file.resolve())


# --- Ray's lifecycle --------------------------------------------------------------------------
@contextlib.contextmanager
def _ray_session(config: SearchConfig) -> Iterator[None]:
    """Ray for the run: joined, started loopback-only, or the caller's; quiet either way.

    A cluster at a loopback address (127.0.0.1:PORT: nodes started on this machine with
    ``--node-ip-address 127.0.0.1``) is joined as a loopback driver too, as its raylets
    are found at 127.0.0.1.
    """
    if _on_loopback(config.ray_address):
        os.environ[LOOPBACK_ENV] = "0"
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves the machine
    import ray
    from ray._private import ray_constants

    ray_logger = logging.getLogger("ray")
    level = ray_logger.level
    ray_logger.setLevel(logging.ERROR)  # our progress bar says what Ray's INFO lines would
    started = not ray.is_initialized()  # else the caller's Ray: theirs to shut down
    try:
        if started and _on_loopback(config.ray_address):
            # the variable is read when Ray is imported: someone may have imported it first
            ray_constants.ENABLE_RAY_CLUSTER = False
        if started and config.ray_address is None:
            ray.init(address="local", include_dashboard=False, num_cpus=os.cpu_count() or 1,
                     log_to_driver=False, logging_level=logging.ERROR)  # fmt: skip
            node_ip = ray.util.get_node_ip_address()
            if node_ip not in _LOOPBACK:
                raise SearchError(f"--backend ray: the local Ray took {node_ip}, not loopback")
        elif started:
            if not config.storage_url().startswith(("postgresql", "mysql")):
                warnings.warn(
                    f"--ray-address {config.ray_address}: trials on other machines need a "
                    "storage every machine reaches (PostgreSQL or MySQL), and a shared "
                    "--artifacts folder",
                    stacklevel=4,
                )
            _join(config.ray_address or "auto")
        yield
    finally:
        if started and ray.is_initialized():
            ray.shutdown()  # stops a local Ray; only disconnects from a cluster
        ray_logger.setLevel(level)


def _on_loopback(address: str | None) -> bool:
    """Whether Ray runs on this machine's loopback: a local Ray, or a cluster joined at
    127.0.0.1 / localhost / [::1]."""
    if address is None:
        return True
    host = address.removeprefix("ray://").rpartition(":")[0] or address
    return host.strip("[]") in _LOOPBACK


def _join(address: str) -> None:
    """``ray.init`` on a running cluster, its failures as one line naming the flag.

    Raises:
        SearchError: no cluster answers there, or it refuses this driver (Ray says only
            that it failed to connect: the message says where Ray looks for a token).
    """
    import ray

    try:
        ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
    except Exception as exc:  # ConnectionError, AuthenticationError, RuntimeError ...
        raise SearchError(
            f"--ray-address {address}: cannot join the Ray cluster ({failure_reason(exc)}); "
            "is one running there (ray start --head), and does this process have its token "
            "(RAY_AUTH_MODE=token, and RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or "
            "~/.ray/auth_token)?"
        ) from None


@contextlib.contextmanager
def _quiet_tune() -> Iterator[None]:
    """Ctrl-C raises as in the local backend (Tune's handler would swallow it and suggest
    Tuner.restore); Tune's per-trial error tracebacks are replaced by one line each; Tune
    writes no per-trial result logs (JSON, CSV, TensorBoard): the study holds every
    result, and the driver, which every ask and tell passes through, does not write them
    twice (a failed trial's error.txt is still written)."""
    # the new output engine prints its experiment table even at verbose=0; the legacy one
    # prints nothing there
    env = {"TUNE_DISABLE_SIGINT_HANDLER": "1", "RAY_AIR_NEW_OUTPUT": "0",
           "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}  # fmt: skip
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    tune_logger = logging.getLogger("ray.tune")
    level = tune_logger.level
    tune_logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        tune_logger.setLevel(level)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# --- the Tuner --------------------------------------------------------------------------------
def _tune(config: SearchConfig, space: Space, scheduler: TrialScheduler | None,
          trainable_fn: Trainable) -> None:  # fmt: skip
    import ray
    from ray import tune

    from nas_skip.searching._queries import StudyQueries
    from nas_skip.searching._ray_searcher import TRIAL_NUMBER, StudySearch

    url = config.storage_url()
    study_name = config.study_name(space.name, space.dataset)
    runs = Path(config.artifact_dir()).parent / "ray"  # beside the artifacts, absolute
    storage = make_storage(url)
    study = optuna.load_study(study_name=study_name, storage=storage)
    existing = sum(StudyQueries(study).states().values())  # not a read of every trial
    sampler = make_sampler(config, 0, existing, space)  # a rerun must not replay proposals
    searcher = StudySearch(config, space, storage, study_name, sampler, str(runs / study_name))

    def run_trial(trial_config: dict[str, Any]) -> None:
        # the config travels in the closure, pickled once with the trainable: small, unlike
        # tune.with_parameters' object-store copy, which every trial fetches from the driver
        trainable_fn(trial_config, search=config)

    run_trial.__name__ = trainable_fn.__name__
    trainable = tune.with_resources(run_trial, _resources(config, ray.cluster_resources()))

    def trial_name(trial: Any) -> str:  # Tune's default puts the whole config in the name
        return f"trial_{trial.config.get(TRIAL_NUMBER, trial.trial_id)}"

    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=-1,  # the searcher ends the run at the study's target (failures redone)
            max_concurrent_trials=config.workers,
            reuse_actors=True,  # ~0.1 s instead of ~2 s per trial (FIELD-NOTES)
            trial_name_creator=trial_name,
            trial_dirname_creator=trial_name,
        ),
        run_config=tune.RunConfig(
            name=study_name,
            storage_path=str(runs),
            verbose=0,  # the search's own progress bar polls the study
            failure_config=tune.FailureConfig(max_failures=0),  # a failed trial is FAIL
        ),
    )
    try:
        with _quiet_tune():
            tuner.fit()  # errored trials are in the ResultGrid, not raised
    except KeyboardInterrupt:
        searcher.fail_open_trials("interrupted (Ctrl-C)")
        raise
    except Exception as exc:
        searcher.fail_open_trials(f"the Ray run stopped: {failure_reason(exc)}")
        raise
    searcher.fail_open_trials("left open when the Ray run ended")
    if searcher.stop_reason == "failures":
        raise SearchError(
            f"{searcher.failures} trials failed in a row; see the trials' fail_reason "
            "(nas-skip dashboard) or run one with nas-skip train"
        )


def _resources(config: SearchConfig, cluster: dict[str, float]) -> dict[str, float]:
    """Per-trial resources; GPUs only where Ray sees some (else trials wait forever)."""
    gpus = config.gpus_per_trial
    if gpus > 0 and cluster.get("GPU", 0) <= 0:
        warnings.warn(
            f"--gpus-per-trial {gpus:g}: Ray sees no GPU; the trials run on CPUs", stacklevel=4
        )
        gpus = 0.0
    if config.cpus_per_trial > cluster.get("CPU", 0):
        raise SearchError(
            f"--cpus-per-trial {config.cpus_per_trial:g}: Ray has {cluster.get('CPU', 0):g} "
            "CPUs; no trial could start"
        )
    return {"cpu": config.cpus_per_trial, "gpu": gpus}


def _scheduler(config: SearchConfig) -> TrialScheduler | None:
    """ASHA on per-epoch validation accuracy, for single-objective searches that prune.

    Grace period ``config.prune_after`` (half the budget, as the local MedianPruner's
    warm-up) and reduction factor 3 (Hyperband's eta): rungs at grace * 3^k epochs.
    """
    from ray.tune.schedulers import ASHAScheduler

    from nas_skip.searching._ray_searcher import ACCURACY, EPOCH

    if not config.prunes or config.epochs < 2:
        return None  # Tune's FIFO: every trial runs to its end
    grace = int(config.extra.get("asha_grace_period", config.prune_after))
    return ASHAScheduler(
        time_attr=EPOCH,  # not training_iteration: a duplicate reports once, at its last epoch
        metric=ACCURACY,  # the first objective's per-epoch value, whatever its name
        mode="max" if config.directions[0] == "maximize" else "min",
        max_t=config.epochs,
        grace_period=min(grace, config.epochs),
        reduction_factor=float(config.extra.get("asha_reduction_factor", 3)),
    )


# --- the trainable (runs in a Ray worker) -----------------------------------------------------
_WORKERS: dict[tuple[SearchConfig, str], Worker] = {}  # one per process and device


def _worker(config: SearchConfig, node: str, device: str = "auto") -> Worker:
    """This process's Worker; an actor reused for many trials loads the data once.

    Raises:
        SearchError: this node does not see the driver's artifact folder.
    """
    if (config, device) not in _WORKERS:
        _WORKERS.clear()
        if config.store_mark is not None:
            check_store(config.artifact_dir(), config.store_mark, f"Ray node {node}")
        from nas_skip._user_ops import ensure_registered

        ensure_registered(config.user_ops)  # the user's ops, imported from their modules
        if config.data_ref is not None and config.dataset is not None:
            import ray

            from nas_skip.data._registry import provide

            provide(config.dataset, ray.get(config.data_ref))  # once per worker process
        space = load_space(config.space, config.dataset, config.train)
        url = config.storage_url()
        # a random sampler: a Trial made here never samples, and TPE's relative sampling on
        # the whole history would run for nothing
        study = optuna.load_study(study_name=config.study_name(space.name, space.dataset),
                                  storage=make_storage(url),
                                  sampler=optuna.samplers.RandomSampler())  # fmt: skip
        handle = StudyHandle(study, url, config.artifact_dir())
        _WORKERS[config, device] = Worker(config, space, handle, device)
    return _WORKERS[config, device]


def train_trial(trial_config: dict[str, Any], search: SearchConfig) -> None:
    """Ray Tune's function trainable: evaluate one asked trial, reporting each epoch.

    Reports ``epoch`` and ``accuracy`` (validation accuracy) after each epoch but the last,
    then one final report at the last epoch with the objective values (``final``); a trial
    the objective prunes (it diverged) ends with a ``pruned`` report instead. Other
    exceptions propagate, with ``fail_reason`` stored: Ray marks the trial errored and the
    searcher tells FAIL. Every report carries the node's ``warning`` when the trial asked
    for a GPU and trains on the CPU (the searcher prints it once).

    The trial records where it ran: ``node`` (the Ray node, ``ip/node-id``), ``device``,
    and, when it asked for GPUs, the ``cuda_visible_devices`` Ray set for it.
    """
    import ray
    from ray import tune

    from nas_skip.searching._ray_searcher import (
        ACCURACY,
        DUPLICATE,
        EPOCH,
        FINAL,
        GENOTYPE,
        HPARAMS,
        PARAMS,
        PRUNED,
        TRIAL_ID,
        WARNING,
        node_label,
    )

    torch.set_num_threads(search.threads)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    node = node_label(ray.util.get_node_ip_address(), ray.get_runtime_context().get_node_id())
    trial_id = int(trial_config[TRIAL_ID])
    try:
        device, warning = ray_trial_device(search.device, search.gpus_per_trial, node)
        worker = _worker(search, node, device)
    except Exception as exc:  # this node cannot run trials: say so on the trial
        storage = make_storage(search.storage_url())
        storage.set_trial_user_attr(trial_id, "node", node)
        reason = str(exc) if isinstance(exc, NasSkipError) else failure_reason(exc)
        storage.set_trial_user_attr(trial_id, "fail_reason", reason)
        raise
    trial = optuna.trial.Trial(worker.study, trial_id)
    # every report must carry every metric Tune was told of; not measured yet: NaN
    multi = search.multi_objective
    pending = {name: math.nan for name in search.objectives if multi and name != ACCURACY}
    if warning is not None:
        pending[WARNING] = warning  # not a metric: the searcher prints it once
    last_epoch = 0

    def report(epoch: int, metrics: EpochMetrics) -> None:
        nonlocal last_epoch
        last_epoch = epoch
        # The last epoch goes out with the final report: reported here, ASHA would stop
        # the trial at max_t before evaluate stores its results and weights.
        if epoch < search.epochs:
            value = metrics.value(search.objectives[0])
            tune.report({EPOCH: epoch, ACCURACY: value, FINAL: False, DUPLICATE: False,
                         **pending})  # fmt: skip

    try:
        trial.set_user_attr("ray_trial_id", tune.get_context().get_trial_id())
        # ``worker`` stays the driver's host:pid (the driver owns the trial, and
        # fail_stale_trials must see it die); this is where it trained
        trial.set_user_attr("ray_worker", worker_id())
        trial.set_user_attr("node", node)
        trial.set_user_attr("device", device)
        if search.gpus_per_trial > 0:
            trial.set_user_attr("cuda_visible_devices", os.environ.get("CUDA_VISIBLE_DEVICES"))
        g = Genotype.from_json(json.loads(trial_config[GENOTYPE]))
        s = Sample(g, dict(trial_config[HPARAMS]), dict(trial_config[PARAMS]))
        values = evaluate(trial, worker, s, report)
    except optuna.TrialPruned:
        # raised on, it would make the trial FAIL; pruned_reason is stored
        tune.report({EPOCH: min(last_epoch + 1, search.epochs), ACCURACY: math.nan,
                     FINAL: False, DUPLICATE: False, PRUNED: True, **pending})  # fmt: skip
        return
    except Exception as exc:
        if "fail_reason" not in trial.user_attrs:
            trial.set_user_attr("fail_reason", failure_reason(exc))
        raise
    duplicate = "duplicate_of" in trial.user_attrs
    # one objective goes out as ACCURACY, Tune's metric, whatever it is named (a user's)
    names = search.objectives if multi else (ACCURACY,)
    tune.report({EPOCH: search.epochs, FINAL: True, DUPLICATE: duplicate, **pending,
                 **dict(zip(names, values, strict=True))})  # fmt: skip
