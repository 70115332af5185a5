"""What every loader shares: the error type, the cache, deterministic splits, tensors."""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from nas_skip.data._base import Dataset
from nas_skip.errors import NasSkipError

Arrays = dict[str, np.ndarray]


class DatasetError(NasSkipError):
    """A dataset cannot be loaded: unknown name, unsupported domain, missing files or
    a missing optional package."""


def resolve_cache_dir(cache_dir: str | Path | None) -> Path:
    """The cache folder: ``cache_dir``, else ``$NAS_SKIP_CACHE``, else ``~/.cache/nas-skip``.

    Args:
        cache_dir: an explicit folder, or None to use the environment or the default.

    Returns:
        The folder (not created here).
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("NAS_SKIP_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "nas-skip"


def _read_npz(path: Path, keys: tuple[str, ...]) -> Arrays | None:
    """The arrays in ``path``, or None when it is missing, unreadable or lacks a key."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            if not set(keys) <= set(npz.files):
                return None
            return {k: npz[k] for k in keys}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        # a truncated or foreign file is not worth an error: it is rebuilt from the seed
        return None


def cached_arrays(path: Path, keys: tuple[str, ...], make: Callable[[], Arrays]) -> Arrays:
    """Read arrays from an .npz cache file, or call ``make`` and write them there.

    The file is written to a temporary name and renamed into place, so parallel
    workers that load the same dataset never see half a file.

    Args:
        path: the .npz file; its folder is created when needed.
        keys: the arrays the file must hold; a file lacking one is rebuilt.
        make: builds the arrays when the cache has none.

    Returns:
        The arrays by key.

    Raises:
        DatasetError: the cache folder cannot be created or written.
    """
    arrays = _read_npz(path, keys)
    if arrays is not None:
        return arrays
    arrays = make()
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.stem + ".", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **{k: arrays[k] for k in keys})
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache is shared like any file
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise DatasetError(
            f"cannot write the dataset cache {path} ({exc.strerror or exc}); "
            "pass another cache_dir or set NAS_SKIP_CACHE"
        ) from exc
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return arrays


def split_indices(
    y: np.ndarray, fractions: tuple[float, float], seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A stratified, seeded split of ``range(len(y))`` into train / val / test indices.

    Each class is shuffled with its own draw from one seeded stream and cut at
    ``round(fraction * class_size)`` for val and test; the rest is train.

    Args:
        y: class labels (N,).
        fractions: the (val, test) fractions.
        seed: seed of the shuffle.

    Returns:
        Sorted index arrays (train, val, test).
    """
    rng = np.random.default_rng(seed)
    parts: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_val, n_test = (round(f * len(idx)) for f in fractions)
        parts[1].append(idx[:n_val])
        parts[2].append(idx[n_val : n_val + n_test])
        parts[0].append(idx[n_val + n_test :])
    train, val, test = (np.sort(np.concatenate(p)) for p in parts)
    return train, val, test


def make_dataset(
    name: str,
    domain: str,
    num_classes: int,
    splits: tuple[tuple[np.ndarray, np.ndarray], ...],
    task: str = "",
) -> Dataset:
    """Wrap numpy splits as a :class:`Dataset` of float32 inputs and int64 labels.

    Inputs of the ``sequence`` domain are token ids and become int64 instead.

    Args:
        name: the dataset name.
        domain: one of ``DATA_DOMAINS``.
        num_classes: number of classes (background included for segmentation; the
            vocabulary size for sequence datasets).
        splits: ``(x, y)`` for train, val and test, already shaped for ``domain``.
        task: one of ``TASKS``; empty for the domain's default (see :class:`Dataset`).

    Returns:
        The dataset; tensors own their memory (no view into a cache file).

    Raises:
        ValueError: ``task`` is not one of ``TASKS``.
    """
    import torch

    x_dtype = np.int64 if domain == "sequence" else np.float32
    (xtr, ytr), (xva, yva), (xte, yte) = (
        (
            torch.from_numpy(np.ascontiguousarray(x, dtype=x_dtype)),
            torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64)),
        )
        for x, y in splits
    )
    return Dataset(
        name=name,
        domain=domain,
        input_shape=tuple(int(d) for d in xtr.shape[1:]),
        num_classes=num_classes,
        x_train=xtr,
        y_train=ytr,
        x_val=xva,
        y_val=yva,
        x_test=xte,
        y_test=yte,
        task=task,
    )
