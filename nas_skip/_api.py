"""The public Python API: what a notebook user reaches for first.

```python
import nas_skip
data = nas_skip.Dataset.from_arrays(x, y, x_val=xv, y_val=yv)
study = nas_skip.search("deep_mlp", data, trials=50, epochs=10, workers=2)
best = nas_skip.best(study)
model = nas_skip.load_model(study, best)  # the trained nn.Module
```

These are thin: :func:`search` makes a :class:`~nas_skip.searching.SearchConfig` and runs
the same search as ``nas-skip search`` (the CLI calls the same function), and an
in-memory :class:`Dataset` becomes a file dataset (an ``.npz`` named by its content,
:mod:`nas_skip.data._files`), so worker processes and Ray workers load it by name as
they load any dataset, and a rerun with the same arrays continues the same study.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial

from nas_skip.errors import NasSkipError

if TYPE_CHECKING:
    import torch

#: the splits an in-memory dataset may hold
_SPLITS = ("train", "val", "test")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Your own data, as arrays: inputs ``(N, *shape)`` and integer labels ``(N,)``.

    The domain follows the input shape as for an ``.npz`` file: ``(N, F)`` vectors,
    ``(N, C, L)`` signals (or one-channel images), ``(N, C, H, W)`` images. A missing
    validation or test split is carved from train with a fixed seed. Make one with
    :meth:`from_arrays` or :meth:`from_torch`.
    """

    arrays: dict[str, np.ndarray]
    name: str = "arrays"

    @classmethod
    def from_arrays(cls, x: Any, y: Any, *, x_val: Any = None, y_val: Any = None,
                    x_test: Any = None, y_test: Any = None,
                    name: str = "arrays") -> Dataset:  # fmt: skip
        """A dataset of numpy arrays (or anything ``np.asarray`` takes: torch tensors,
        lists).

        Raises:
            NasSkipError: a split given with only its inputs or only its labels, or a name
                that is no plain word.
        """
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
            raise NasSkipError(f"Dataset name: {name!r} must be 1-64 letters, digits, _ . -")
        arrays = {"x_train": _array(x), "y_train": _array(y)}
        for split, (xs, ys) in {"val": (x_val, y_val), "test": (x_test, y_test)}.items():
            if (xs is None) != (ys is None):
                raise NasSkipError(f"Dataset: x_{split} and y_{split} go together")
            if xs is not None:
                arrays[f"x_{split}"], arrays[f"y_{split}"] = _array(xs), _array(ys)
        return cls(arrays, name)

    @classmethod
    def from_torch(cls, train: Any, val: Any = None, test: Any = None, *,
                   name: str = "torch", batch_size: int = 1024) -> Dataset:  # fmt: skip
        """A dataset of map-style torch datasets yielding ``(input, label)`` pairs, read
        in batches of ``batch_size`` into host memory (never onto a device).

        Raises:
            NasSkipError: a split whose items are not (input, label) pairs.
        """
        from torch.utils.data import DataLoader

        def read(ds: Any, split: str) -> tuple[np.ndarray, np.ndarray]:
            xs, ys = [], []
            try:
                for xb, yb in DataLoader(ds, batch_size=batch_size, shuffle=False):
                    xs.append(np.asarray(xb))
                    ys.append(np.asarray(yb))
            except (TypeError, ValueError) as exc:
                raise NasSkipError(f"Dataset.from_torch: {split}: items must be (input, "
                                   f"label) pairs ({type(exc).__name__})") from None  # fmt: skip
            if not xs:
                raise NasSkipError(f"Dataset.from_torch: {split} is empty")
            return np.concatenate(xs), np.concatenate(ys)

        x, y = read(train, "train")
        given = {s: read(ds, s) for s, ds in (("val", val), ("test", test)) if ds is not None}
        kw = {f"{p}_{s}": a for s, pair in given.items() for p, a in zip("xy", pair, strict=True)}
        return cls.from_arrays(x, y, name=name, **kw)

    def save(self, folder: str | Path) -> Path:
        """Write the arrays to ``folder/<name>-<content hash>.npz`` (once: the same arrays
        give the same file) and return its path."""
        digest = hashlib.sha256()
        for key in sorted(self.arrays):
            a = np.ascontiguousarray(self.arrays[key])
            digest.update(f"{key}:{a.dtype.str}:{a.shape}".encode())
            digest.update(a.tobytes())
        path = Path(folder) / f"{self.name}-{digest.hexdigest()[:8]}.npz"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".partial.npz")
            np.savez(partial, **self.arrays)  # type: ignore[arg-type]
            partial.replace(path)  # whole or not at all, for a concurrent reader
        return path


def _array(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, possibly on a device
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def search(space: str | Path, dataset: str | Path | Dataset | None = None, *,
           trials: int = 20, epochs: int | None = None, backend: str = "local",
           workers: int = 1, storage: str | None = None, study: str | None = None,
           progress: bool = True, log_file: str | Path | None = None,
           objective: Callable[..., Any] | None = None,
           directions: Sequence[str] | None = None, **options: Any) -> optuna.Study:  # fmt: skip
    """Search ``space`` on ``dataset`` until the study holds ``trials`` finished trials
    (continuing it if it has some), as ``nas-skip search`` does.

    Args:
        space: a shipped space's name (``deep_mlp``) or a YAML file.
        dataset: a built-in dataset's name, a data file or folder (``.npz``, ``.csv``,
            ``.parquet``, an image folder), or a :class:`Dataset`; None: the space's own.
        trials, epochs, backend, workers, storage, study: as the CLI's flags
            (``storage=None``: the embedded SQLite file ``runs/nas_skip.db``).
        progress: show progress (a bar in a terminal, a line per trial elsewhere).
        log_file: append one JSON line per finished trial, then a summary.
        objective: your own scoring, ``objective(model, dataset, hparams, report) -> float
            | tuple[float, ...]``: ``model`` is the trial's network, freshly built;
            ``dataset`` the search's data (tensors ``x_train``, ``y_train``, ``x_val``,
            ``y_val``, ``x_test``, ``y_test``); ``hparams`` the trial's ``train:`` choices;
            ``report(epoch, value)`` feeds the pruner. Train the model in it as you like
            and return its score(s); the trained model's weights are kept as the built-in
            training's are. The values are named ``objective`` (``objective_0``, ... for
            several).
        directions: ``maximize`` / ``minimize``, one per value ``objective`` returns
            (default: one value, maximised).
        **options: every other field of :class:`nas_skip.searching.SearchConfig` (``seed``,
            ``sampler``, ``objectives``, ``evaluator``, ``keep``, ``artifacts``,
            ``pruning``, ``timeout``, ``train`` (``{"lr": 0.01}``), ...).

    Returns:
        The Optuna study (``nas_skip.best(study)``, ``study.trials_dataframe()``).

    Raises:
        NasSkipError: bad input, with a one-line message naming the option.
    """
    from nas_skip.searching import SearchConfig
    from nas_skip.searching import search as run

    known = {f.name for f in fields(SearchConfig)} - {"space", "dataset", "extra", "user_ops",
                                                      "objective_fn", "objective_name",
                                                      "directions_", "data_ref",
                                                      "store_mark"}  # fmt: skip
    unknown = sorted(set(options) - known)
    if unknown:
        raise NasSkipError(f"search(): unknown option {unknown[0]!r} "
                           f"(options: {', '.join(sorted(known))})")  # fmt: skip
    if "objectives" in options and isinstance(options["objectives"], str):
        options["objectives"] = (options["objectives"],)
    if objective is not None:
        from nas_skip.evaluators._objective import objective_names

        if not callable(objective):
            raise NasSkipError(f"search(): objective must be a function, not "
                               f"{type(objective).__name__}")  # fmt: skip
        wanted = tuple(directions or ("maximize",))
        module = getattr(objective, "__module__", None) or "__main__"
        options.update(
            evaluator="objective",
            objectives=objective_names(len(wanted)),
            directions_=wanted,
            objective_fn=_by_value(objective, module),
            objective_name=f"{module}.{getattr(objective, '__qualname__', '?')}",
        )
    elif directions is not None:
        raise NasSkipError("search(): directions= goes with objective= (the built-in "
                           "objectives have theirs)")  # fmt: skip
    if isinstance(dataset, Dataset):
        from nas_skip.searching._config import DEFAULT_ARTIFACTS

        artifacts = options.get("artifacts")
        folder = (Path(artifacts).parent if artifacts else DEFAULT_ARTIFACTS.parent) / "datasets"
        dataset = dataset.save(folder)
    config = SearchConfig(space=str(space), dataset=None if dataset is None else str(dataset),
                          trials=trials, epochs=epochs, backend=backend, workers=workers,
                          storage=storage, study=study, **options)  # fmt: skip
    return run(config, progress=progress, log_file=log_file).study


def _by_value(function: Callable[..., Any], module: str) -> bytes:
    """``function`` as cloudpickle bytes holding its code, not a reference to its module:
    a worker (a Ray worker on another machine) need not be able to import the user's
    module. Installed packages are still referenced (the workers have them)."""
    import sys
    import sysconfig

    import cloudpickle  # type: ignore[import-untyped]

    mod = sys.modules.get(module)
    path = str(getattr(mod, "__file__", "") or "")
    paths = sysconfig.get_paths()
    installed = path.startswith((paths["purelib"], paths["stdlib"]))
    if mod is None or module == "__main__" or installed:  # by value already, or importable
        return bytes(cloudpickle.dumps(function))
    cloudpickle.register_pickle_by_value(mod)
    try:
        return bytes(cloudpickle.dumps(function))
    finally:
        cloudpickle.unregister_pickle_by_value(mod)


def best(study: optuna.Study) -> FrozenTrial:
    """The best trial: the most accurate (for several objectives, the most accurate on
    the Pareto front); duplicates stand aside for their originals.

    Raises:
        NasSkipError: the study has no complete trial.
    """
    from nas_skip.searching import top_trials

    top = top_trials(study, 1)
    if not top:
        raise NasSkipError(f"study {study.study_name!r} has no complete trial yet")
    return top[0]


def load_model(study: optuna.Study, trial: FrozenTrial | int | None = None, *,
               artifacts: str | Path | None = None) -> torch.nn.Module:  # fmt: skip
    """The trained network of ``trial`` (default: :func:`best`), its kept weights loaded
    (``weights_only=True``), in eval mode.

    Args:
        study: a study a search made.
        trial: a trial or its number; None: the best.
        artifacts: the search's artifact folder (its ``artifacts=``); None: the default.

    Raises:
        NasSkipError: a malformed trial, or weights that were not kept (the search keeps
            the best ``keep`` trials'; ``nas-skip export --retrain-epochs`` trains one
            again).
    """
    from nas_skip.compile import build
    from nas_skip.searching._artifacts import ArtifactFolders
    from nas_skip.searching._config import SearchError
    from nas_skip.searching._export import (
        choose_trial,
        kept_state,
        refuse_malformed,
        trial_genotype,
    )

    number = trial.number if isinstance(trial, FrozenTrial) else trial
    chosen = choose_trial(study, number)
    refuse_malformed(study, chosen)
    genotype = trial_genotype(chosen)
    state = kept_state(ArtifactFolders(artifacts), study, chosen, genotype)
    if state is None:
        raise SearchError(f"trial {chosen.number}: its weights were not kept (the search "
                          "keeps the best keep= trials'); nas-skip export --retrain-epochs "
                          "trains it again")  # fmt: skip
    model = build(genotype)
    model.load_state_dict(state)
    return model.eval()
