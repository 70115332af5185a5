"""The dataset registry and ``load_dataset``: adding a dataset is one entry in DATASETS."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from nas_skip.data import loaders
from nas_skip.data._base import DATA_DOMAINS, Dataset
from nas_skip.data._common import DatasetError, resolve_cache_dir
from nas_skip.data._vision import load_vision

#: ``(domain, data_dir, cache_dir) -> Dataset``; the domain is already validated.
Loader = Callable[[str, Path | None, Path], Dataset]


@dataclass(frozen=True, eq=False)
class DatasetInfo:
    """What a dataset offers, known without loading it."""

    name: str
    description: str  # one line
    domains: tuple[str, ...]  # supported DATA_DOMAINS; the first is the default
    input_shapes: dict[str, tuple[int, ...]]  # per domain
    num_classes: int  # background included for segmentation
    sizes: tuple[int, int, int]  # train, val, test
    needs_data_dir: bool  # read from local files rather than generated or shipped
    loader: Loader = field(repr=False)

    @property
    def default_domain(self) -> str:
        """The domain used when none is asked for."""
        return self.domains[0]


def _vision_loader(name: str) -> Loader:
    return lambda domain, data_dir, cache_dir: load_vision(name, domain, data_dir)


def _no_reader(domain: str, data_dir: Path | None, cache_dir: Path) -> Dataset:
    raise DatasetError(
        "dataset 'imagenet16_120' has no reader in nas-skip (its files are pickles, which "
        "nas-skip never loads); search it through NAS-Bench-201's table: "
        "--space nb201 --evaluator nb201-imagenet16"
    )


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            "mnist1d",
            "MNIST-1D: 40-sample 1D signals of 10 digit templates, generated offline",
            ("vector", "signal"),
            {"vector": (40,), "signal": (1, 40)},
            10,
            (3400, 600, 1000),
            False,
            loaders.load_mnist1d,
        ),
        DatasetInfo(
            "digits",
            "scikit-learn 8x8 handwritten digits; saturates quickly, a smoke test",
            ("image", "vector"),
            {"image": (1, 8, 8), "vector": (64,)},
            10,
            (1079, 359, 359),
            False,
            loaders.load_digits,
        ),
        DatasetInfo(
            "shapes",
            "procedural 32x32 shapes (8 kinds) on cluttered noisy backgrounds",
            ("image",),
            {"image": (3, 32, 32)},
            8,
            (4000, 1000, 1000),
            False,
            loaders.load_shapes,
        ),
        DatasetInfo(
            "shapes_seg",
            "procedural 32x32 scenes of 1-3 overlapping shapes, per-pixel labels (5 kinds)",
            ("segmentation",),
            {"segmentation": (3, 32, 32)},
            6,
            (4000, 1000, 1000),
            False,
            loaders.load_shapes_seg,
        ),
        DatasetInfo(
            "cifar10",
            "CIFAR-10 32x32 colour images from a local data_dir (torchvision)",
            ("image",),
            {"image": (3, 32, 32)},
            10,
            (45000, 5000, 10000),
            True,
            _vision_loader("cifar10"),
        ),
        DatasetInfo(
            "cifar100",
            "CIFAR-100 32x32 colour images from a local data_dir (torchvision)",
            ("image",),
            {"image": (3, 32, 32)},
            100,
            (45000, 5000, 10000),
            True,
            _vision_loader("cifar100"),
        ),
        DatasetInfo(
            "imagenet16_120",
            "ImageNet16-120 (NAS-Bench-201's 16x16 ImageNet, 120 classes): its tables only",
            ("image",),
            {"image": (3, 16, 16)},
            120,
            (151700, 3000, 3000),
            True,
            _no_reader,
        ),
        DatasetInfo(
            "mnist",
            "MNIST 28x28 handwritten digits from a local data_dir (torchvision)",
            ("image", "vector"),
            {"image": (1, 28, 28), "vector": (784,)},
            10,
            (50000, 10000, 10000),
            True,
            _vision_loader("mnist"),
        ),
        DatasetInfo(
            "fashion_mnist",
            "Fashion-MNIST 28x28 clothing images from a local data_dir (torchvision)",
            ("image", "vector"),
            {"image": (1, 28, 28), "vector": (784,)},
            10,
            (50000, 10000, 10000),
            True,
            _vision_loader("fashion_mnist"),
        ),
    )
}
# every domain named above must be one the search spaces know
assert all(set(i.domains) <= set(DATA_DOMAINS) for i in DATASETS.values())


def list_datasets() -> list[str]:
    """The registered dataset names, sorted.

    Returns:
        Names accepted by :func:`load_dataset`.
    """
    return sorted(DATASETS)


def dataset_info(name: str) -> DatasetInfo:
    """The registry entry of ``name`` ("Fashion-MNIST" is read as "fashion_mnist").

    Raises:
        DatasetError: unknown name; the message lists the datasets.
    """
    info = DATASETS.get(name.strip().lower().replace("-", "_"))
    if info is None:
        raise DatasetError(
            f"unknown dataset {name!r}; known datasets: {', '.join(list_datasets())}"
        )
    return info


def load_dataset(
    name: str,
    domain: str | None = None,
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
) -> Dataset:
    """Load a registered dataset into memory, split into train / val / test.

    Nothing is downloaded. Generated datasets are cached as .npz files in the cache
    folder and rebuilt from their fixed seeds when the file is missing.

    Args:
        name: a key of :data:`DATASETS` ("fashion-mnist" is read as "fashion_mnist").
        domain: one of the dataset's domains; None for its default.
        data_dir: the folder holding the files of cifar10 / mnist / fashion_mnist.
        cache_dir: where generated datasets are cached; None for ``$NAS_SKIP_CACHE``
            or ``~/.cache/nas-skip``.

    Returns:
        The dataset as float32 inputs and int64 labels.

    Raises:
        DatasetError: unknown name, unsupported domain, missing files or package, or an
            unwritable cache folder.
    """
    info = dataset_info(name)
    chosen = info.default_domain if domain is None else domain
    if chosen not in info.domains:
        raise DatasetError(
            f"dataset {info.name!r} does not support domain {chosen!r}; "
            f"supported: {', '.join(info.domains)}"
        )
    return info.loader(
        chosen,
        None if data_dir is None else Path(data_dir).expanduser(),
        resolve_cache_dir(cache_dir),
    )
