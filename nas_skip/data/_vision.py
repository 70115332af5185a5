"""CIFAR-10, CIFAR-100, MNIST and Fashion-MNIST read through torchvision from a local folder.

Nothing is downloaded: the files must already sit under ``data_dir`` in torchvision's
own layout (what ``download=True`` leaves there). The folder is checked before
torchvision is imported, so a missing file is reported the same way with or without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nas_skip.data._base import Dataset
from nas_skip.data._common import DatasetError, make_dataset


@dataclass(frozen=True)
class VisionSource:
    """Where torchvision keeps one dataset under its root, and how it is split."""

    tv_class: str  # the torchvision.datasets class
    folder: str  # relative to data_dir
    files: tuple[str, ...]  # what torchvision reads from that folder
    val_size: int  # the last val_size training images become the validation split
    classes: int = 10


_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

VISION_SOURCES = {
    "cifar10": VisionSource(
        "CIFAR10",
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta"),
        5000,
    ),
    "cifar100": VisionSource("CIFAR100", "cifar-100-python", ("train", "test", "meta"), 5000, 100),
    "mnist": VisionSource("MNIST", "MNIST/raw", _MNIST_FILES, 10000),
    "fashion_mnist": VisionSource("FashionMNIST", "FashionMNIST/raw", _MNIST_FILES, 10000),
}


def _check_files(name: str, source: VisionSource, data_dir: Path | None) -> Path:
    """The dataset root, once every file torchvision needs is known to be there."""
    expected = f"{source.folder}/{{{','.join(source.files)}}}"
    if data_dir is None:
        raise DatasetError(
            f"dataset {name!r} is read from a local data_dir (--data-dir) holding {expected}; "
            "none was given, and nothing is downloaded"
        )
    root = Path(data_dir).expanduser()
    missing = [f for f in source.files if not (root / source.folder / f).is_file()]
    if missing:
        raise DatasetError(
            f"dataset {name!r}: {root / source.folder} lacks {', '.join(missing)} "
            f"(expected {expected} under {root}, as torchvision lays them out); "
            "nothing is downloaded"
        )
    return root


def _read(name: str, source: VisionSource, root: Path) -> tuple[np.ndarray, ...]:
    """``(x_train, y_train, x_test, y_test)`` as uint8 (N, H, W[, C]) and int64 arrays."""
    try:
        import torchvision.datasets as tvd
    except ImportError as exc:
        raise DatasetError(
            f"dataset {name!r} needs torchvision (pip install 'nas-skip[vision]')"
        ) from exc
    cls = getattr(tvd, source.tv_class)
    out: list[np.ndarray] = []
    for train in (True, False):
        try:
            ds = cls(root=str(root), train=train, download=False)
        except RuntimeError as exc:  # torchvision's "not found or corrupted"
            raise DatasetError(
                f"dataset {name!r}: torchvision cannot read {root / source.folder} ({exc}); "
                "nothing is downloaded"
            ) from exc
        # CIFAR10 keeps numpy data and list targets, MNIST tensors; np.asarray takes both
        out += [np.asarray(ds.data), np.asarray(ds.targets, dtype=np.int64)]
    return tuple(out)


def load_vision(name: str, domain: str, data_dir: Path | None) -> Dataset:
    """Load one of :data:`VISION_SOURCES` as [0, 1] float images or flat vectors.

    Args:
        name: a key of :data:`VISION_SOURCES`.
        domain: "image" gives (C, H, W); "vector" gives (C * H * W,).
        data_dir: the torchvision root holding the files.

    Returns:
        The dataset; the last ``val_size`` training images form the validation split.

    Raises:
        DatasetError: no data_dir, missing or unreadable files, or no torchvision.
    """
    source = VISION_SOURCES[name]
    root = _check_files(name, source, data_dir)
    x_train, y_train, x_test, y_test = _read(name, source, root)

    def prepare(x: np.ndarray) -> np.ndarray:
        # uint8 (N, H, W) or (N, H, W, C) -> float32 (N, C, H, W) in [0, 1]
        x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
        x = x.astype(np.float32) / 255.0
        return x.reshape(len(x), -1) if domain == "vector" else x

    x_train, x_test = prepare(x_train), prepare(x_test)
    cut = len(x_train) - source.val_size
    if cut <= 0:
        raise DatasetError(
            f"dataset {name!r}: {root / source.folder} has {len(x_train)} training images, "
            f"too few to hold out {source.val_size} for validation"
        )
    return make_dataset(
        name,
        domain,
        source.classes,
        (
            (x_train[:cut], y_train[:cut]),
            (x_train[cut:], y_train[cut:]),
            (x_test, y_test),
        ),
    )
