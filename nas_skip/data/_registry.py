"""The dataset registry and ``load_dataset``: adding a dataset is one entry in DATASETS."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from nas_skip.data import loaders, text
from nas_skip.data._base import DATA_DOMAINS, TASKS, Dataset
from nas_skip.data._common import DatasetError, make_dataset, resolve_cache_dir
from nas_skip.data._files import FileRef, file_ref, looks_like_file, read_npz, read_table, stamp
from nas_skip.data._folder import folder_facts, read_folder
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
    notes: str = ""  # how the splits were made, when people should know (file datasets)
    task: str = "classification"  # one of TASKS: what the labels mean and how it is scored

    @property
    def default_domain(self) -> str:
        """The domain used when none is asked for."""
        return self.domains[0]

    def summary(self) -> str:
        """One line: ``dataset NAME: domain vector, input (13,), 3 classes, 142/18/18
        train/val/test; val and test carved from ...``."""
        shapes = ", ".join(f"{d} {self.input_shapes[d]}" for d in self.domains)
        if len(self.domains) == 1:
            shapes = f"domain {self.domains[0]}, input {self.input_shapes[self.domains[0]]}"
        else:
            shapes = f"domains {shapes}"
        sizes = "/".join(str(n) for n in self.sizes)
        notes = f"; {self.notes}" if self.notes else ""
        sequence = self.domains == ("sequence",)  # the classes are the vocabulary
        classes = f"vocabulary {self.num_classes}" if sequence else f"{self.num_classes} classes"
        task = "" if self.task in ("classification", "segmentation") else f", task {self.task}"
        return (f"dataset {self.name}: {shapes}, {classes}{task}, "
                f"{sizes} train/val/test{notes}")  # fmt: skip


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
            task="segmentation",
        ),
        DatasetInfo(
            "pydoc_lm",
            "characters of CPython's pydoc topics (English prose and code), 128-character "
            "windows, split by position",
            ("sequence",),
            {"sequence": (text.PYDOC_LENGTH,)},
            text.PYDOC_VOCAB,
            text.pydoc_lm_sizes(),  # the text differs a little between Python versions
            False,
            loaders.load_pydoc_lm,
            f"text of Python {sys.version_info[0]}.{sys.version_info[1]}'s pydoc_data, "
            f"{text.pydoc_length()} characters, next-character targets",
            task="language_model",
        ),
        DatasetInfo(
            "mqar",
            "multi-query associative recall (Zoology): 8 key-value pairs, then 48 keys to "
            "answer with their values",
            ("sequence",),
            {"sequence": (text.MQAR_LENGTH,)},
            text.MQAR_VOCAB,
            text.MQAR_SIZES,
            False,
            loaders.load_mqar,
            "only the 48 queries are scored",
            task="token_classification",
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
# every domain and task named above must be one the search spaces and the trainer know
assert all(set(i.domains) <= set(DATA_DOMAINS) for i in DATASETS.values())
assert all(i.task in TASKS for i in DATASETS.values())


def list_datasets() -> list[str]:
    """The registered dataset names, sorted.

    Returns:
        Names accepted by :func:`load_dataset`.
    """
    return sorted(DATASETS)


#: datasets handed to this process already loaded, by the name a search records (a Ray
#: worker gets the search's dataset from Ray's object store: see :func:`provide`)
_PROVIDED: dict[str, DatasetInfo] = {}


def provide(name: str, data: Dataset) -> None:
    """Make ``name`` answer with ``data`` in this process: a Ray worker is handed the
    search's dataset through Ray's object store (put once by the driver), instead of
    reading files that its machine may not have."""
    sizes = (len(data.x_train), len(data.x_val), len(data.x_test))
    _PROVIDED[name] = DatasetInfo(
        name,
        f"{data.name}, as loaded by the search's driver",
        (data.domain,),
        {data.domain: tuple(data.input_shape)},
        data.num_classes,
        sizes,
        False,
        lambda domain, data_dir, cache_dir: data,
        task=data.task,
    )


def dataset_info(name: str) -> DatasetInfo:
    """The registry entry of ``name`` ("Fashion-MNIST" is read as "fashion_mnist"), or the
    description of a file dataset (a path, see :func:`dataset_name`), read once per path
    and modification time.

    Raises:
        DatasetError: unknown name (the message lists the datasets), or a bad file (naming
            the file and the problem).
    """
    info = _PROVIDED.get(name) or DATASETS.get(name.strip().lower().replace("-", "_"))
    if info is not None:
        return info
    if looks_like_file(name):
        ref = file_ref(name)
        return _file_info(ref, stamp(ref))
    raise DatasetError(
        f"unknown dataset {name!r}; known datasets: {', '.join(list_datasets())}; "
        "or a path to an .npz, .csv, .parquet or image folder"
    )


def dataset_name(name: str, target: str | None = None, image_size: int | None = None) -> str:
    """The name a search records for ``name``: a registered dataset's key, or a file
    dataset's absolute path with its option (``/data/wine.csv#target=class``,
    ``/data/pets#size=32``), so that every worker re-loads the same data by name.

    Args:
        name: a registered name, or a path to an .npz, a .csv / .parquet table or an
            ImageFolder-style folder.
        target: a table's label column (default: its last column).
        image_size: the side images of a folder are resized to (default 32).

    Raises:
        DatasetError: unknown name, no such file, or an option the form does not take.
    """
    key = name.strip().lower().replace("-", "_")
    if key in DATASETS:
        if target is not None or image_size is not None:
            raise DatasetError(f"dataset {key!r} is built in; a target column or image size "
                               "applies to a table or an image folder")  # fmt: skip
        return key
    if not looks_like_file(name):
        dataset_info(name)  # raises: unknown name
    return file_ref(name, target, image_size).name


@lru_cache(maxsize=16)
def _file_info(ref: FileRef, when: tuple[int, ...]) -> DatasetInfo:
    """A file dataset's :class:`DatasetInfo` (``when``: its :func:`stamp`, for the cache)."""
    if ref.kind == "npz":
        splits, shapes, num_classes, notes = read_npz(ref)
        sizes = tuple(len(splits[s][1]) for s in ("train", "val", "test"))
        what = ".npz arrays"
    elif ref.kind == "table":
        splits, num_classes, target, notes = read_table(ref)
        shapes = {"vector": (int(splits["train"][0].shape[1]),)}
        sizes = tuple(len(splits[s][1]) for s in ("train", "val", "test"))
        what = f"a table, target column {target!r}, features standardised"
    else:
        sizes, num_classes, channels, notes = folder_facts(ref)
        shapes = {"image": (channels, ref.size or 32, ref.size or 32)}
        what = "an image folder, normalised per channel"
    return DatasetInfo(
        ref.name,
        f"{what} from {ref.path}",
        tuple(shapes),
        shapes,
        num_classes,
        (sizes[0], sizes[1], sizes[2]),
        False,
        lambda domain, data_dir, cache_dir: _load_file(ref, domain),
        notes,
    )


def _load_file(ref: FileRef, domain: str) -> Dataset:
    if ref.kind == "npz":
        splits, _, num_classes, _ = read_npz(ref)
        if domain == "image" and splits["train"][0].ndim == 3:  # (N, H, W): one channel
            splits = {s: (x[:, None], y) for s, (x, y) in splits.items()}
    elif ref.kind == "table":
        splits, num_classes, _, _ = read_table(ref)
    else:
        splits, num_classes, _, _ = read_folder(ref)
    order = tuple(splits[s] for s in ("train", "val", "test"))
    return make_dataset(ref.name, domain, num_classes, order)


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
        name: a key of :data:`DATASETS` ("fashion-mnist" is read as "fashion_mnist"), or a
            file dataset's path (see :func:`dataset_name`).
        domain: one of the dataset's domains; None for its default.
        data_dir: the folder holding the files of cifar10 / mnist / fashion_mnist.
        cache_dir: where generated datasets are cached; None for ``$NAS_SKIP_CACHE``
            or ``~/.cache/nas-skip``.

    Returns:
        The dataset as float32 inputs and int64 labels.

    Raises:
        DatasetError: unknown name, unsupported domain, missing files or package, an
            unwritable cache folder, or a bad file dataset (naming the file and problem).
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
