"""``SearchConfig``: everything ``nas-skip search`` is told, checked in one place."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from nas_skip.errors import NasSkipError, brief
from nas_skip.evaluators import DEFAULT_EVALUATOR, EVALUATORS, EvaluatorSpec
from nas_skip.oneshot._relax import RELAXATIONS

BACKENDS = ("local", "ray")
#: "trials": sample and train each network; "oneshot": one supernet, then its network
STRATEGIES = ("trials", "oneshot")
SAMPLERS = ("local-search", "tpe", "random", "nsga2", "evolution")
#: objective name -> optimisation direction; the first is the task's score: "accuracy" is
#: validation accuracy (mIoU for segmentation), "bpc" a language model's validation bits
#: per character (per token), which "accuracy" stands for on language-model data.
OBJECTIVES = {
    "accuracy": "maximize",
    "bpc": "minimize",
    "params": "minimize",
    "latency": "minimize",
    "flops": "minimize",
}
DEFAULT_RUNS = Path("runs")
DEFAULT_EPOCHS = 10
#: where a search without --storage keeps its study (and the dashboard looks)
DEFAULT_STORAGE = f"sqlite:///{DEFAULT_RUNS / 'nas_skip.db'}"
#: the largest seed: numpy's generators, and so Optuna's samplers, take 0 .. 2**32 - 1
MAX_SEED = 2**32 - 1
#: where a search without --artifacts keeps its artifacts (and export, report and the
#: dashboard read them)
DEFAULT_ARTIFACTS = DEFAULT_RUNS / "artifacts"


#: training settings a search may fix for every trial (flags --lr, --grad-clip ...); each
#: replaces the space's train: entry of the same name
TRAIN_FLAGS = ("optimizer", "lr", "weight_decay", "batch_size", "momentum", "grad_clip",
               "warmup_epochs", "label_smoothing")  # fmt: skip


def _train_problem(key: str, value: Any) -> str:
    """What :class:`~nas_skip.train.TrainConfig` says of ``key=value``; "" when it's fine."""
    from nas_skip.train import TrainConfig, TrainError

    try:
        TrainConfig(**{key: value})
    except TrainError as exc:
        return str(exc).removeprefix(f"TrainConfig.{key} ")
    return ""


#: the objectives that are a task's score, one of which comes first
SCORES = ("accuracy", "bpc")


def task_objectives(objectives: tuple[str, ...], task: str) -> tuple[str, ...]:
    """The objectives on data of ``task``: a language model's score is ``bpc`` (bits per
    character, minimised), which ``accuracy`` stands for there.

    Raises:
        SearchError: ``bpc`` on data that is not a language model's.
    """
    if task == "language_model" and objectives[:1] == ("accuracy",):
        return ("bpc", *objectives[1:])
    if task != "language_model" and objectives[:1] == ("bpc",):
        raise SearchError(f"--objectives: bpc is a language model's score; this data is "
                          f"{task.replace('_', ' ')} (use accuracy)")  # fmt: skip
    return objectives


class SearchError(NasSkipError):
    """A search was asked for something it cannot do; the message names the flag."""


def _file_dataset(name: str) -> str:
    """A file dataset's name made absolute (workers may run elsewhere); others unchanged.

    Raises:
        SearchError: a path that is no dataset nas-skip reads.
    """
    from nas_skip.data import DATASETS, DatasetError, dataset_name
    from nas_skip.data._files import looks_like_file

    if name.strip().lower().replace("-", "_") in DATASETS or not looks_like_file(name):
        return name
    try:
        return dataset_name(name)
    except DatasetError as exc:
        raise SearchError(f"--dataset: {exc}") from None


@dataclass(frozen=True)
class SearchConfig:
    """One search: which space, on which data, with what budget, where the study lives."""

    space: str  # a shipped space's name or a YAML path
    dataset: str | None = None  # None: the space's own dataset
    trials: int = 20  # finished trials (complete or pruned) the study should reach
    epochs: int | None = None  # training budget of each trial; None: 10, or the evaluator's
    evaluator: str = DEFAULT_EVALUATOR  # how a trial is measured (see nas_skip.evaluators)
    backend: str = "local"  # "local" (Optuna processes) or "ray" (Ray Tune)
    storage: str | None = None  # Optuna storage URL or journal file; None: runs/nas_skip.db
    study: str | None = None  # None: derived from space, dataset and objectives
    sampler: str | None = None  # None: "local-search", or "nsga2" for several objectives
    objectives: tuple[str, ...] = ("accuracy",)
    seed: int | None = None  # seeds the sampler; trial k trains with seed (seed or 0) + k
    workers: int = 1  # trials at once (processes for local, concurrent trials for ray)
    cpus_per_trial: float = 1.0  # ray: CPUs reserved per trial
    gpus_per_trial: float = 0.0  # ray: GPUs per trial, fractional packs trials on one GPU
    ray_address: str | None = None  # None: a local loopback-only Ray; "auto": a cluster
    timeout: float | None = None  # seconds after which no new trial starts
    pruning: bool = True  # stop unpromising trials early (single objective only)
    keep: int = 3  # weights kept as artifacts: the best `keep` trials (or the Pareto front)
    artifacts: str | None = None  # artifact folder; None: runs/artifacts
    data_dir: str | None = None  # local files of cifar10 / mnist / fashion_mnist
    threads: int = 1  # torch threads per trial
    # where trials train: auto (local workers round-robin over the visible GPUs, a Ray
    # trial on the GPU Ray gave it, else the CPU), cpu, cuda or cuda:N (see _devices)
    device: str = "auto"
    compile: bool = False  # torch.compile each trial's network (train evaluator)
    # fixed training values replacing the space's train: entries ({"optimizer": "adamw"});
    # keys as in a space's train: section (lr, optimizer, grad_clip, warmup_epochs, ...)
    train: dict[str, Any] = field(default_factory=dict, hash=False)
    train_error: bool = False  # also evaluate each trial on the whole training split
    population: int = 20  # evolution: population size
    tournament: int = 5  # evolution: tournament size
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # for tests and tools
    # the user ops registered where the search started (nas_skip.registered_ops()): worker
    # processes and Ray workers import the modules that register them before they sample
    user_ops: tuple[Any, ...] = field(default=(), compare=False)
    # a user's objective (nas_skip.search(objective=fn)): the function (or its cloudpickle
    # bytes), its name (recorded on the study) and the directions of its values
    objective_fn: Any = field(default=None, compare=False, repr=False)
    objective_name: str | None = None
    directions_: tuple[str, ...] = ("maximize",)
    # ray: the search's dataset, put in Ray's object store once by the driver
    data_ref: Any = field(default=None, compare=False, repr=False)
    # ray: the id of the artifact folder's mark (_artifacts.mark_store), which every
    # worker checks it sees before it writes there
    store_mark: str | None = field(default=None, repr=False)
    strategy: str = "trials"  # "trials" or "oneshot" (a supernet, then its network)
    relaxation: str = "softmax"  # oneshot: "softmax" (DARTS) or "sigmoid" (Fair DARTS)
    max_skips: int | None = None  # oneshot: the most skips the derived network keeps
    supernet_epochs: int | None = None  # oneshot: the supernet's epochs; None: epochs
    arch_lr: float = 3e-3  # oneshot: Adam's learning rate on the architecture weights
    # oneshot: values of choices by parameter name ({"depth": 16}); the others that are
    # not relaxed take the largest structure and the middle of a training range
    fix: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        def need(ok: bool, flag: str, message: str) -> None:
            if not ok:
                raise SearchError(f"--{flag}: {message}")

        need(self.backend in BACKENDS, "backend", f"must be one of {', '.join(BACKENDS)}")
        need(self.trials >= 1, "trials", f"must be at least 1, got {self.trials}")
        known = ", ".join(EVALUATORS)
        need(self.evaluator in EVALUATORS, "evaluator",
             f"unknown evaluator {brief(self.evaluator)} (evaluators: {known})")  # fmt: skip
        spec = EVALUATORS[self.evaluator]
        if spec.epochs is not None:
            need(self.epochs in (None, spec.epochs), "epochs",
                 f"--evaluator {spec.name} holds {spec.epochs}-epoch results only; "
                 "leave --epochs out")  # fmt: skip
            object.__setattr__(self, "epochs", spec.epochs)
        elif self.epochs is None:
            object.__setattr__(self, "epochs", DEFAULT_EPOCHS)
        need(self.epochs >= 1, "epochs", f"must be at least 1, got {self.epochs}")
        if spec.dataset is not None:
            given = self.dataset
            need(given is None or given.strip().lower().replace("-", "_") == spec.dataset,
                 "dataset", f"--evaluator {spec.name} looks up {spec.dataset} results; leave "
                 "--dataset out")  # fmt: skip
            object.__setattr__(self, "dataset", spec.dataset)
        elif self.dataset is not None:
            object.__setattr__(self, "dataset", _file_dataset(self.dataset))
        need(self.workers >= 1, "workers", f"must be at least 1, got {self.workers}")
        need(self.seed is None or 0 <= self.seed <= MAX_SEED, "seed",
             f"must be in [0, {MAX_SEED}], got {brief(self.seed)}")  # fmt: skip
        need(self.keep >= 0, "keep", f"must be 0 or more, got {self.keep}")
        need(self.threads >= 1, "threads", f"must be at least 1, got {self.threads}")
        problem = _train_problem("device", self.device)
        need(not problem, "device", problem)
        need(self.cpus_per_trial > 0, "cpus-per-trial", "must be positive")
        need(self.gpus_per_trial >= 0, "gpus-per-trial", "must be 0 or more")
        need(self.timeout is None or self.timeout > 0, "timeout", "must be positive seconds")
        need(self.population >= 2, "population", "must be at least 2")
        need(1 <= self.tournament <= self.population, "tournament",
             f"must be in [1, population={self.population}]")  # fmt: skip
        objectives = self.objectives
        if self.evaluator == "objective":  # a user's function: its values, its directions
            from nas_skip.evaluators._objective import objective_names

            need(self.objective_fn is not None, "evaluator",
                 "objective needs the function: nas_skip.search(..., objective=fn)")  # fmt: skip
            need(bool(self.directions_) and all(d in ("maximize", "minimize")
                 for d in self.directions_), "directions",
                 "each must be maximize or minimize")  # fmt: skip
            need(objectives == objective_names(len(self.directions_)), "objectives",
                 "a user's objective names its values objective (objective_0, ... for "
                 "several)")  # fmt: skip
        else:
            need(bool(objectives) and objectives[0] in SCORES, "objectives",
                 "must start with accuracy (or bpc for a language model), e.g. accuracy or "
                 "accuracy,params")  # fmt: skip
            need(not any(o in SCORES for o in objectives[1:]), "objectives",
                 "names the task's score (accuracy, bpc) first only")  # fmt: skip
            for name in objectives:
                need(name in OBJECTIVES, "objectives",
                     f"unknown objective {brief(name)} (objectives: "
                     f"{', '.join(OBJECTIVES)})")  # fmt: skip
        need(len(set(objectives)) == len(objectives), "objectives", "names an objective twice")
        if self.sampler is not None:
            need(self.sampler in SAMPLERS, "sampler", f"must be one of {', '.join(SAMPLERS)}")
            single = self.sampler in ("evolution", "local-search")
            need(not (single and len(objectives) > 1), "sampler",
                 f"{self.sampler} optimises one objective; use nsga2 for several")  # fmt: skip
        for key, value in self.train.items():
            need(key in TRAIN_FLAGS, key.replace("_", "-"),
                 f"is not a training setting (settings: {', '.join(TRAIN_FLAGS)})")  # fmt: skip
            problem = _train_problem(key, value)
            need(not problem, key.replace("_", "-"), problem)
        need(self.strategy in STRATEGIES, "strategy", f"must be one of {', '.join(STRATEGIES)}")
        need(self.relaxation in RELAXATIONS, "relaxation",
             f"must be one of {', '.join(RELAXATIONS)}")  # fmt: skip
        need(self.max_skips is None or self.max_skips >= 0, "max-skips", "must be 0 or more")
        need(self.supernet_epochs is None or self.supernet_epochs >= 1, "supernet-epochs",
             f"must be at least 1, got {self.supernet_epochs}")  # fmt: skip
        need(0 < self.arch_lr <= 1, "arch-lr", f"must be in (0, 1], got {brief(self.arch_lr)}")
        if self.strategy == "oneshot":
            need(spec.dataset is None, "strategy",
                 f"oneshot trains a supernet on the search's data; --evaluator {spec.name} "
                 "looks results up in a table and has none to train it on")  # fmt: skip
        if self.study is not None:
            need(bool(re.fullmatch(r"[\w.\-]{1,100}", self.study)), "study",
                 "letters, digits, '.', '-' and '_' only")  # fmt: skip

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def directions(self) -> list[str]:
        if self.evaluator == "objective":
            return list(self.directions_)
        return [OBJECTIVES[o] for o in self.objectives]

    @property
    def sampler_name(self) -> str:
        return self.sampler or ("nsga2" if self.multi_objective else "local-search")

    @property
    def max_failures(self) -> int:
        """Failures in a row after which a backend gives up: a broken setup, not bad luck."""
        return max(10, self.trials)

    @property
    def prunes(self) -> bool:
        """Pruning applies to single-objective studies (Optuna's rule) whose evaluator
        reports each epoch."""
        return self.pruning and not self.multi_objective and self.evaluator_spec.reports_epochs

    @property
    def prune_after(self) -> int:
        """Epochs a trial runs before it may be stopped (MedianPruner's warm-up, ASHA's
        grace period): half the budget. Earlier epochs rank networks poorly, under a
        learning-rate warm-up most of all: pruning from epoch ``epochs // 3`` stopped 15 of
        the demo's 20 trials at epoch 2, every walk from its best trial among them."""
        assert self.epochs is not None  # resolved in __post_init__
        return max(1, self.epochs // 2)

    @property
    def evaluator_spec(self) -> EvaluatorSpec:
        return EVALUATORS[self.evaluator]

    def storage_url(self) -> str:
        return self.storage or DEFAULT_STORAGE

    def artifact_dir(self) -> Path:
        return Path(self.artifacts) if self.artifacts else DEFAULT_ARTIFACTS

    def study_name(self, space_name: str, dataset: str) -> str:
        if self.study:
            return self.study
        suffix = "" if not self.multi_objective else "-" + "-".join(self.objectives)
        table = {DEFAULT_EVALUATOR: "", "objective": ""}.get(self.evaluator, "-table")
        if self.evaluator == "objective":  # a user's: named by the function (and its values)
            function = (self.objective_name or "objective").rpartition(".")[2]
            table = "-" + re.sub(r"[^\w.\-]", "_", function)[:40]
            suffix = ""
        from nas_skip.data._files import short_name

        return f"{space_name}-{short_name(dataset)}{table}{suffix}"

    def with_(self, **changes: Any) -> SearchConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("extra")
        out.pop("user_ops")
        out.pop("objective_fn")
        out.pop("data_ref")
        out.pop("store_mark")
        out["objectives"] = list(self.objectives)
        return out
