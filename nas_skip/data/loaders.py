"""One loader per dataset, each ``(domain, data_dir, cache_dir) -> Dataset``.

Every ``load_*`` here takes the same arguments (a domain ``load_dataset`` has already
checked against the registry, the data folder, which these datasets ignore, and the
resolved cache folder), returns the split :class:`Dataset`, and raises
:class:`DatasetError` when the cache folder cannot be written; so each docstring says
only what its dataset is.

Nothing here downloads: MNIST-1D, the shape tasks and mqar are generated from fixed seeds
and cached as .npz, digits ships inside scikit-learn, pydoc_lm is read from the pydoc
topics of the running Python, and the torchvision datasets are read from files the user
already has. Heavy or optional packages are imported inside the
loader that needs them, so ``import nas_skip.data`` stays light.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from nas_skip.data import shapes as _shapes
from nas_skip.data import text as _text
from nas_skip.data._base import Dataset
from nas_skip.data._common import (
    Arrays,
    DatasetError,
    cached_arrays,
    make_dataset,
    split_indices,
)

SPLIT_KEYS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")

# --- MNIST-1D --------------------------------------------------------------------------

MNIST1D_CACHE = "mnist1d_v1.npz"
MNIST1D_VAL = 600  # taken from the generator's 4000 training signals
MNIST1D_SPLIT_SEED = 0
_MNIST1D_KEYS = ("x", "y", "x_test", "y_test")


def generate_mnist1d() -> Arrays:
    """Generate MNIST-1D offline with the reference arguments (seed 42).

    Returns:
        ``x`` (4000, 40) float32, ``y`` (4000,) int64 and the 1000 test signals as
        ``x_test`` / ``y_test``, exactly as ``mnist1d.data.make_dataset`` makes them.

    Raises:
        DatasetError: the mnist1d package is not installed.
    """
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as exc:
        raise DatasetError(
            "dataset 'mnist1d' needs the mnist1d package (pip install mnist1d)"
        ) from exc
    # make_dataset seeds the global `random` and numpy streams; put them back so that
    # loading data never changes the randomness of the caller's own code.
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        # never mnist1d's get_dataset(): it downloads a pickle by default
        raw = make_dataset(get_dataset_args())
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return {
        "x": np.asarray(raw["x"], dtype=np.float32),
        "y": np.asarray(raw["y"], dtype=np.int64),
        "x_test": np.asarray(raw["x_test"], dtype=np.float32),
        "y_test": np.asarray(raw["y_test"], dtype=np.int64),
    }


def load_mnist1d(domain: str, data_dir: Path | None, cache_dir: Path) -> Dataset:
    """MNIST-1D, vector (40,) or signal (1, 40), 10 classes: 3400 train / 600 val / 1000 test.

    The signals are kept as generated: the generator already centres the whole set and
    scales it to unit standard deviation.
    """
    # looked up on the module at call time so a test can tell a cache hit from a rebuild
    raw = cached_arrays(cache_dir / MNIST1D_CACHE, _MNIST1D_KEYS, lambda: generate_mnist1d())
    perm = np.random.default_rng(MNIST1D_SPLIT_SEED).permutation(len(raw["y"]))
    val, train = np.sort(perm[:MNIST1D_VAL]), np.sort(perm[MNIST1D_VAL:])
    x, x_test = raw["x"], raw["x_test"]
    if domain == "signal":  # one channel of 40 samples, for 1-D convolutions
        x, x_test = x[:, None], x_test[:, None]
    return make_dataset(
        "mnist1d",
        domain,
        10,
        ((x[train], raw["y"][train]), (x[val], raw["y"][val]), (x_test, raw["y_test"])),
    )


# --- scikit-learn digits ---------------------------------------------------------------

DIGITS_SPLIT = (0.2, 0.2)  # val, test fractions of each class
DIGITS_SPLIT_SEED = 0


def load_digits(domain: str, data_dir: Path | None, cache_dir: Path) -> Dataset:
    """scikit-learn's 8x8 digits in [0, 1]: 1079 train / 359 val / 359 test, stratified."""
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    x = np.asarray(bunch.images, dtype=np.float32) / 16.0  # pixel counts run 0..16
    y = np.asarray(bunch.target, dtype=np.int64)
    x = x.reshape(len(x), 64) if domain == "vector" else x[:, None]
    parts = split_indices(y, DIGITS_SPLIT, DIGITS_SPLIT_SEED)
    return make_dataset("digits", domain, 10, tuple((x[i], y[i]) for i in parts))


# --- procedural shapes -----------------------------------------------------------------

SHAPES_SIZES = (4000, 1000, 1000)
SHAPES_SEEDS = (0, 1, 2)  # one stream per split: splits share no image
SHAPES_SEG_SEEDS = (10, 11, 12)


def _generate_splits(seg: bool) -> Arrays:
    """Generate train / val / test of the shape classification or segmentation task.

    Images are stored as uint8 (quantised to 1/255, as real photos are): the cache is a
    quarter of the float32 size and loads faster, and a fresh generation goes through
    the same quantisation, so it equals a cached load exactly.
    """
    make = _shapes.make_shapes_seg if seg else _shapes.make_shapes
    seeds = SHAPES_SEG_SEEDS if seg else SHAPES_SEEDS
    out: Arrays = {}
    for split, n, seed in zip(("train", "val", "test"), SHAPES_SIZES, seeds, strict=True):
        x, y = make(n, seed)
        out[f"x_{split}"] = np.round(x * 255.0).astype(np.uint8)
        out[f"y_{split}"] = y.astype(np.uint8)  # at most 8 classes
    return out


def _load_shapes(name: str, seg: bool, domain: str, cache_dir: Path) -> Dataset:
    path = cache_dir / f"{name}_v{_shapes.SHAPES_VERSION}.npz"
    arrays = cached_arrays(path, SPLIT_KEYS, lambda: _generate_splits(seg))
    classes = len(_shapes.SEG_CLASSES) + 1 if seg else len(_shapes.SHAPE_CLASSES)
    splits = tuple(
        (arrays[f"x_{s}"].astype(np.float32) / np.float32(255.0), arrays[f"y_{s}"])
        for s in ("train", "val", "test")
    )
    return make_dataset(name, domain, classes, splits)


def load_shapes(domain: str, data_dir: Path | None, cache_dir: Path) -> Dataset:
    """Shape classification, image (3, 32, 32), 8 classes: 4000 / 1000 / 1000."""
    return _load_shapes("shapes", False, domain, cache_dir)


def load_shapes_seg(domain: str, data_dir: Path | None, cache_dir: Path) -> Dataset:
    """Shape segmentation, (3, 32, 32) -> (32, 32), background + 5 kinds: 4000 / 1000 / 1000."""
    return _load_shapes("shapes_seg", True, domain, cache_dir)


# --- sequences: pydoc_lm and mqar ------------------------------------------------------


def _sequence_splits(arrays: Arrays) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    return tuple((arrays[f"x_{s}"], arrays[f"y_{s}"]) for s in ("train", "val", "test"))


def load_pydoc_lm(domain: str, data_dir: Path | None, cache_dir: Path) -> Dataset:
    """Characters of CPython's pydoc topics, sequence (128,) -> next character (128,),
    vocabulary 97, task language_model; windows split by position (90% / 5% / 5%).

    The cache file is named by the recipe's version and a hash of the text, so Pythons
    whose documentation differs never share one.
    """
    text = _text.pydoc_text()
    path = cache_dir / f"pydoc_lm_v{_text.PYDOC_VERSION}_{_text.text_digest(text)}.npz"
    arrays = cached_arrays(path, SPLIT_KEYS, lambda: _text.make_pydoc_lm(text))
    return make_dataset(
        "pydoc_lm", domain, _text.PYDOC_VOCAB, _sequence_splits(arrays), task="language_model"
    )


def load_mqar(domain: str, data_dir: Path | None, cache_dir: Path) -> Dataset:
    """Multi-query associative recall, sequence (64,) -> value per query (64,), vocabulary
    64, task token_classification (the 16 prefix positions are not scored): 8000 / 1000 /
    1000."""
    path = cache_dir / f"mqar_v{_text.MQAR_VERSION}.npz"
    arrays = cached_arrays(path, SPLIT_KEYS, lambda: _text.generate_mqar())
    return make_dataset(
        "mqar", domain, _text.MQAR_VOCAB, _sequence_splits(arrays), task="token_classification"
    )
