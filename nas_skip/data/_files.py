"""Datasets from the user's files: an .npz of arrays or a .csv / .parquet table.

A file dataset is named by its absolute path, with the one option its form takes after a
``#``: ``/data/wine.csv#target=class`` (the label column of a table), ``/data/pets#size=32``
(the side image folders are resized to, see :mod:`nas_skip.data._folder`). The name is the
whole recipe, so a worker process re-loads the same data from it and a study that records
it refuses a rerun on other data. Nothing read from a file is ever unpickled.
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nas_skip.data._common import DatasetError, split_indices

TABLE_SUFFIXES = (".csv", ".parquet")
FILE_SUFFIXES = (".npz", *TABLE_SUFFIXES)
#: what a missing val / test split takes from train, and the seed of that split
CARVE_FRACTION = 0.1
CARVE_SEED = 0
DEFAULT_IMAGE_SIZE = 32
_OPTION = re.compile(r"(target|size)=(.*)", re.DOTALL)
SplitArrays = dict[str, tuple[np.ndarray, np.ndarray]]  # split -> (x, y)


@dataclass(frozen=True)
class FileRef:
    """A file dataset: the path, its form and its option."""

    path: Path  # absolute
    kind: str  # "npz", "table" or "folder"
    target: str | None = None  # tables: the label column; None: the last
    size: int | None = None  # folders: images are resized to size x size

    @property
    def name(self) -> str:
        """The dataset's name: the absolute path, then ``#target=`` or ``#size=``."""
        if self.size is not None:
            return f"{self.path}#size={self.size}"
        return f"{self.path}#target={self.target}" if self.target is not None else str(self.path)


@dataclass(frozen=True)
class FileFacts:
    """What :class:`~nas_skip.data.DatasetInfo` says of a file dataset."""

    description: str
    input_shapes: dict[str, tuple[int, ...]]  # per domain, the first the default
    num_classes: int
    sizes: tuple[int, int, int]
    notes: str  # how the splits were made


def looks_like_file(name: str) -> bool:
    """Whether ``name`` (not a registered dataset) is meant as a path."""
    base = _split_option(name)[0]
    if not base.strip():
        return False
    return "/" in base or os.sep in base or Path(base).suffix.lower() in FILE_SUFFIXES \
        or Path(base).expanduser().is_dir()  # fmt: skip


def short_name(name: str) -> str:
    """A file dataset's name as study names show it (the file's stem: ``wine``); any other
    name unchanged."""
    base = _split_option(name)[0]
    if not Path(base).is_absolute():
        return name
    return re.sub(r"[^\w.\-]", "_", Path(base).stem) or "data"


def _split_option(name: str) -> tuple[str, str | None, str | None]:
    base, sep, tail = name.rpartition("#")
    match = _OPTION.fullmatch(tail) if sep else None
    if match is None:
        return name, None, None
    return base, match.group(1), match.group(2)


def file_ref(name: str, target: str | None = None, image_size: int | None = None) -> FileRef:
    """Parse and check a file dataset's name (a path, perhaps with ``#target=`` / ``#size=``).

    Args:
        name: the path, relative to the working folder or absolute.
        target: a table's label column (``--target``), if not in ``name``.
        image_size: an image folder's side (``--image-size``), if not in ``name``.

    Returns:
        The reference, its path made absolute.

    Raises:
        DatasetError: no such file, a form nas-skip does not read, or an option the form
            does not take (or two that disagree).
    """
    base, key, value = _split_option(name)
    path = Path(base).expanduser().absolute()
    if key == "target":
        if target is not None and target != value:
            raise DatasetError(f"dataset {path}: target {target!r} and {value!r} disagree")
        target = value
    elif key == "size":
        given = int(value) if value and value.isdigit() else -1
        if image_size is not None and image_size != given:
            raise DatasetError(f"dataset {path}: image size {image_size} and {value!r} disagree")
        image_size = given
    if not path.exists():
        raise DatasetError(f"dataset file {path} not found")
    if path.is_dir():
        kind = "folder"
    elif path.suffix.lower() in FILE_SUFFIXES:
        kind = "npz" if path.suffix.lower() == ".npz" else "table"
    else:
        raise DatasetError(
            f"dataset file {path}: not an .npz, .csv, .parquet or an image folder "
            "(nas-skip datasets lists the forms)"
        )
    if target is not None and kind != "table":
        raise DatasetError(f"dataset {path}: a target column applies to .csv / .parquet tables")
    if image_size is not None and kind != "folder":
        raise DatasetError(f"dataset {path}: an image size applies to image folders")
    if kind == "folder":
        image_size = DEFAULT_IMAGE_SIZE if image_size is None else image_size
        if not 1 <= image_size <= 1024:
            raise DatasetError(f"dataset {path}: the image size must be in [1, 1024]")
    return FileRef(path, kind, target, image_size)


def stamp(ref: FileRef) -> tuple[int, ...]:
    """Modification times that change when the data does (a folder's: its class folders')."""
    if ref.kind != "folder":
        st = ref.path.stat()
        return (st.st_mtime_ns, st.st_size)
    dirs = [ref.path, *(p for p in ref.path.iterdir() if p.is_dir())]
    dirs += [c for d in dirs[1:] for c in d.iterdir() if c.is_dir()]
    return tuple(d.stat().st_mtime_ns for d in dirs)


# --- splits and checks shared by the forms ---------------------------------------------------
def carve(path: Path, splits: SplitArrays, source: str = "train") -> tuple[SplitArrays, str]:
    """Carve the missing val / test splits from train, stratified and seeded.

    Returns:
        The three splits and a note saying what was carved ("" when nothing was).

    Raises:
        DatasetError: train is too small to give a carved split one sample.
    """
    missing = [s for s in ("val", "test") if s not in splits]
    if not missing:
        return splits, ""
    x, y = splits["train"]
    fractions = tuple(CARVE_FRACTION if s in missing else 0.0 for s in ("val", "test"))
    tr, va, te = split_indices(y, (fractions[0], fractions[1]), CARVE_SEED)
    out = dict(splits)
    out["train"] = (x[tr], y[tr])
    for split, idx in (("val", va), ("test", te)):
        if split in missing:
            if len(idx) == 0:
                raise too_few(path, len(y), split, source)
            out[split] = (x[idx], y[idx])
    return out, carve_note(missing, source)


def carve_note(missing: list[str], source: str = "train") -> str:
    """What :func:`carve` says it did: ``val and test carved from train (10% each, seed 0)``."""
    if not missing:
        return ""
    each = " each" if len(missing) == 2 else ""
    return (f"{' and '.join(missing)} carved from {source} "
            f"({CARVE_FRACTION:.0%}{each}, seed {CARVE_SEED})")  # fmt: skip


def too_few(path: Path, n: int, split: str, source: str = "train") -> DatasetError:
    """The error for a split :func:`carve` cannot take a sample from ``n`` for."""
    return DatasetError(f"{path}: {n} {source} samples are too few to carve a {split} split "
                        f"({CARVE_FRACTION:.0%} of each class) from")  # fmt: skip


def carved_sizes(y: np.ndarray, missing: list[str]) -> tuple[int, int, int]:
    """Train / val / test sizes :func:`carve` gives from labels ``y`` (0 for a split not
    carved)."""
    fractions = [CARVE_FRACTION if s in missing else 0.0 for s in ("val", "test")]
    tr, va, te = split_indices(y, (fractions[0], fractions[1]), CARVE_SEED)
    return len(tr), len(va), len(te)


def standardise(splits: SplitArrays, axes: tuple[int, ...]) -> SplitArrays:
    """Scale every split with train's mean and standard deviation over ``axes`` (std 0 -> 1)."""
    xtr = splits["train"][0]
    mean = xtr.mean(axis=axes, keepdims=True)
    std = xtr.std(axis=axes, keepdims=True)
    std[std == 0] = 1.0
    return {s: (((x - mean) / std).astype(np.float32), y) for s, (x, y) in splits.items()}


# --- .npz ------------------------------------------------------------------------------------
_NPZ_SPLITS = ("train", "val", "test")


def read_npz(ref: FileRef) -> tuple[SplitArrays, dict[str, tuple[int, ...]], int, str]:
    """The checked arrays of an .npz dataset.

    Returns:
        The three splits as loaded (missing ones carved from train), the input shape per
        domain (the first the default), the number of classes and the carving note.

    Raises:
        DatasetError: a missing array, an unreadable file or object arrays, shapes that do
            not match, labels that are not class indices, NaN or infinite inputs.
    """
    path = ref.path
    splits: SplitArrays = {}
    if not zipfile.is_zipfile(path):  # np.load would try other formats (a pickle too)
        raise DatasetError(f"{path}: not an .npz archive (numpy.savez writes one)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            assert isinstance(npz, np.lib.npyio.NpzFile)  # a zip file is read as one
            for split in _NPZ_SPLITS:
                xk, yk = f"x_{split}", f"y_{split}"
                has = (xk in npz.files, yk in npz.files)
                if split == "train" and not all(has):
                    raise DatasetError(
                        f"{path}: no array {xk if not has[0] else yk!r} (an .npz dataset needs "
                        "x_train and y_train; x_val, y_val, x_test, y_test are optional)"
                    )
                if has[0] != has[1]:
                    raise DatasetError(f"{path}: has {xk if has[0] else yk} without "
                                       f"{yk if has[0] else xk}")  # fmt: skip
                if all(has):
                    splits[split] = (npz[xk], npz[yk])
    except ValueError as exc:  # object arrays: np.load refuses them without pickle
        raise DatasetError(
            f"{path}: holds an array nas-skip cannot read without unpickling (ragged rows or "
            f"objects?); save numeric arrays ({str(exc).splitlines()[0]})"
        ) from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"{path}: not a readable .npz archive ({exc})") from None
    for split, (x, y) in splits.items():
        _check_arrays(path, split, x, y, splits["train"][0].shape[1:])
    num_classes = max(int(y.max()) for _, y in splits.values()) + 1
    if num_classes < 2:
        raise DatasetError(f"{path}: the labels hold one class; want 2 or more")
    xtr = splits["train"][0]
    shape = tuple(int(d) for d in xtr.shape[1:])
    if xtr.ndim == 2:
        shapes = {"vector": shape}
    elif xtr.ndim == 3:  # (N, C, L) signals; also read as 1-channel (N, H, W) images
        shapes = {"signal": shape, "image": (1, *shape)}
    else:
        if shape[2] in (1, 3) and shape[0] not in (1, 3):  # (N, H, W, C) -> (N, C, H, W)
            splits = {s: (x.transpose(0, 3, 1, 2), y) for s, (x, y) in splits.items()}
            shape = (shape[2], shape[0], shape[1])
        shapes = {"image": shape}
    splits = {s: (x.astype(np.float32), y.astype(np.int64)) for s, (x, y) in splits.items()}
    splits, note = carve(path, splits)
    return splits, shapes, num_classes, note


def _check_arrays(path: Path, split: str, x: np.ndarray, y: np.ndarray,
                  row: tuple[int, ...]) -> None:  # fmt: skip
    xk, yk = f"x_{split}", f"y_{split}"
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise DatasetError(f"{path}: {xk} has dtype {x.dtype}, not real numbers")
    if not 2 <= x.ndim <= 4:
        raise DatasetError(f"{path}: {xk} has shape {x.shape}; want (N, F) vectors, (N, C, L) "
                           "signals or (N, C, H, W) / (N, H, W, C) images")  # fmt: skip
    if x.shape[1:] != row:
        raise DatasetError(f"{path}: {xk} rows are {x.shape[1:]} but x_train rows are {row}")
    if y.ndim != 1:
        raise DatasetError(f"{path}: {yk} has shape {y.shape}; want (N,) class labels")
    if len(x) != len(y):
        raise DatasetError(f"{path}: {xk} has {len(x)} rows but {yk} has {len(y)}")
    if len(x) == 0:
        raise DatasetError(f"{path}: {xk} is empty")
    if not np.isfinite(x).all():
        raise DatasetError(f"{path}: {xk} holds NaN or infinite values")
    check_labels(path, yk, y)


def check_labels(path: Path, what: str, y: np.ndarray) -> None:
    """Refuse labels that are not class indices 0..K-1 (integral floats are accepted).

    Raises:
        DatasetError: naming ``path``, ``what`` and a bad value.
    """
    if np.issubdtype(y.dtype, np.integer):
        bad = y[y < 0]
    elif np.issubdtype(y.dtype, np.floating):
        bad = y[~np.isfinite(y) | (y != np.round(y)) | (y < 0)]
    else:
        raise DatasetError(f"{path}: {what} has dtype {y.dtype}; want integer class labels")
    if len(bad):
        raise DatasetError(
            f"{path}: {what} holds {bad[0].item()!r}, not a class index; want integers 0..K-1"
        )


# --- .csv / .parquet -------------------------------------------------------------------------
def read_table(ref: FileRef) -> tuple[SplitArrays, int, str, str]:
    """The checked, standardised rows of a table, split stratified and seeded.

    Returns:
        The three splits (features standardised with train's statistics), the number of
        classes, the target column and the carving note.

    Raises:
        DatasetError: pandas / pyarrow missing, an unreadable table, no such target
            column, a feature that is not numeric, empty or NaN cells, no rows.
    """
    path = ref.path
    try:
        import pandas as pd  # type: ignore[import-untyped]
    except ImportError:
        raise DatasetError(f"reading {path} needs pandas (pip install pandas)") from None
    if path.suffix.lower() == ".parquet":
        try:
            import pyarrow  # type: ignore[import-untyped]  # noqa: F401
        except ImportError:
            raise DatasetError(f"reading {path} needs pyarrow (pip install pyarrow)") from None
    try:
        frame = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path)
    except (OSError, ValueError) as exc:  # pandas' parser errors are ValueErrors
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DatasetError(f"{path}: cannot read the table ({first})") from None
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    if len(columns) < 2:
        raise DatasetError(f"{path}: {len(columns)} column(s); want features and a target")
    target = columns[-1] if ref.target is None else ref.target
    if target not in columns:
        shown = ", ".join(columns[:20]) + (", ..." if len(columns) > 20 else "")
        raise DatasetError(f"{path}: no column {target!r} (columns: {shown})")
    if len(frame) == 0:
        raise DatasetError(f"{path}: the table has no rows")
    labels = frame[target]
    if labels.isna().any():
        raise DatasetError(f"{path}: target column {target!r} has empty cells")
    if pd.api.types.is_numeric_dtype(labels) and not pd.api.types.is_bool_dtype(labels):
        values = labels.to_numpy()
        bad = values[values != np.round(values)]  # mapped to indices, so negatives are fine
        if len(bad):
            raise DatasetError(f"{path}: target column {target!r} holds {bad[0].item()!r}, not a "
                               "class label; want integers or text")  # fmt: skip
    else:  # text labels: classes in sorted order
        values = labels.astype(str).to_numpy()
    classes, y = np.unique(values, return_inverse=True)
    if len(classes) < 2:
        raise DatasetError(f"{path}: target column {target!r} holds one class; want 2 or more")
    features = [c for c in columns if c != target]
    for column in features:
        values = frame[column]
        if not pd.api.types.is_numeric_dtype(values):
            raise DatasetError(f"{path}: feature column {column!r} is not numeric "
                               f"({values.dtype}); encode it as numbers or drop it")  # fmt: skip
        if not np.isfinite(values.to_numpy(dtype=np.float64, na_value=np.nan)).all():
            raise DatasetError(f"{path}: column {column!r} has empty, NaN or infinite cells")
    x = frame[features].to_numpy(dtype=np.float64)
    splits, note = carve(path, {"train": (x, y.astype(np.int64))}, source="the table")
    return standardise(splits, (0,)), len(classes), target, note
