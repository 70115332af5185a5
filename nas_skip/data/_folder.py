"""Image folders in torchvision's ImageFolder layout: ``train/CLASS/*.png``, optional
``val/`` and ``test/``, read with Pillow.

The classes are train's sorted subfolder names; val and test hold the same classes (or
some of them). Images are converted to RGB, or kept grey when every image is, resized to
``size`` x ``size``, scaled to [0, 1] and normalised per channel with train's statistics.
A missing val / test split is carved from train (:func:`nas_skip.data._files.carve`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from nas_skip.data._common import DatasetError
from nas_skip.data._files import (
    FileRef,
    SplitArrays,
    carve,
    carve_note,
    carved_sizes,
    standardise,
    too_few,
)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
_GREY = ("1", "L")  # Pillow modes read as one channel
Listing = dict[str, list[tuple[Path, int]]]  # split -> (file, class index)


def _pillow() -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise DatasetError("reading image folders needs Pillow (pip install pillow)") from None
    return Image


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)  # fmt: skip


def _class_folders(split_dir: Path) -> list[Path]:
    found = sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not found:
        raise DatasetError(f"{split_dir}: no class folders (want {split_dir.name}/CLASS/*.png)")
    return found


def list_folder(ref: FileRef) -> tuple[list[str], Listing]:
    """The classes and, per split present, the image files with their class index.

    Raises:
        DatasetError: no train/ folder, no class folders, an empty class folder, or a
            val / test class that train lacks.
    """
    train = ref.path / "train"
    if not train.is_dir():
        raise DatasetError(f"{ref.path}: no train/ folder (want train/CLASS/*.png, "
                           "optional val/ and test/)")  # fmt: skip
    classes = [p.name for p in _class_folders(train)]
    if len(classes) < 2:
        raise DatasetError(f"{train}: one class folder; want 2 or more")
    listing: Listing = {}
    for split in ("train", "val", "test"):
        split_dir = ref.path / split
        if not split_dir.is_dir():
            continue
        listing[split] = []
        for folder in _class_folders(split_dir):
            if folder.name not in classes:
                raise DatasetError(f"{folder}: class {folder.name!r} is not in train/ "
                                   f"(classes: {', '.join(classes)})")  # fmt: skip
            files = _images(folder)
            if not files:
                raise DatasetError(f"{folder}: an empty class folder (no "
                                   f"{', '.join(IMAGE_SUFFIXES)} files)")  # fmt: skip
            listing[split] += [(f, classes.index(folder.name)) for f in files]
    return classes, listing


def _grey(listing: Listing) -> bool:
    """Whether every image is grey (read from the headers only)."""
    image = _pillow()
    grey = True
    for files in listing.values():
        for f, _ in files:
            try:
                with image.open(f) as im:
                    grey = grey and im.mode in _GREY
            except (OSError, ValueError, image.DecompressionBombError) as exc:
                raise DatasetError(f"{f}: not an image Pillow can read ({exc})") from None
    return grey


def folder_facts(ref: FileRef) -> tuple[tuple[int, int, int], int, int, str]:
    """Sizes, classes and channels of an image folder, from its listing and image headers.

    Returns:
        (train, val, test) sizes, the number of classes, the channels (1 or 3) and the
        carving note.
    """
    classes, listing = list_folder(ref)
    y = np.array([c for _, c in listing["train"]])
    missing = [s for s in ("val", "test") if s not in listing]
    sizes = list(carved_sizes(y, missing))
    for i, split in ((1, "val"), (2, "test")):
        if split in missing and sizes[i] == 0:
            raise too_few(ref.path / "train", len(y), split)
        if split not in missing:
            sizes[i] = len(listing[split])
    tr, va, te = sizes
    note = carve_note(missing)
    return (tr, va, te), len(classes), 1 if _grey(listing) else 3, note


def read_folder(ref: FileRef) -> tuple[SplitArrays, int, int, str]:
    """The images of a folder as float32 (N, C, size, size) arrays, normalised per channel.

    Returns:
        The three splits, the number of classes, the channels and the carving note.

    Raises:
        DatasetError: a bad layout (see :func:`list_folder`) or an unreadable image.
    """
    image = _pillow()
    classes, listing = list_folder(ref)
    mode = "L" if _grey(listing) else "RGB"
    size = ref.size or 32
    splits: SplitArrays = {}
    for split, files in listing.items():
        pixels = []
        for f, _ in files:
            try:
                with image.open(f) as im:
                    small = im.convert(mode).resize((size, size), image.Resampling.BILINEAR)
                    pixels.append(np.asarray(small, dtype=np.float32) / 255.0)
            except (OSError, ValueError, image.DecompressionBombError) as exc:
                raise DatasetError(f"{f}: not an image Pillow can read ({exc})") from None
        x = np.stack(pixels)
        x = x[:, None] if mode == "L" else x.transpose(0, 3, 1, 2)  # (N, C, H, W)
        splits[split] = (x, np.array([c for _, c in files], dtype=np.int64))
    splits, note = carve(ref.path / "train", splits)
    return standardise(splits, (0, 2, 3)), len(classes), 1 if mode == "L" else 3, note
