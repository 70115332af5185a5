"""File datasets: an .npz, a .csv / .parquet table and an image folder load with the right
domain, shapes, classes and splits; every bad file is a one-line error naming the file."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from nas_skip.data import DatasetError, dataset_info, dataset_name, load_dataset
from nas_skip.searching import SearchConfig, SearchError
from nas_skip.spaces import SpaceError, load_space

RNG = np.random.default_rng(0)


def write_npz(path: Path, n: int = 100, row: tuple[int, ...] = (6,), classes: int = 3,
              **arrays: np.ndarray) -> Path:  # fmt: skip
    """An .npz of ``n`` training rows shaped ``row``; ``arrays`` add or replace arrays."""
    base = {
        "x_train": RNG.normal(size=(n, *row)).astype(np.float32),
        "y_train": np.arange(n) % classes,
    }
    np.savez(path, **{**base, **arrays})
    return path


def write_wine(path: Path) -> Path:
    """scikit-learn's wine table (178 rows, 13 features) with text labels, last column."""
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "barolo", 1: "grignolino", 2: "barbera"})
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    return path


def write_folder(root: Path, per_class: int = 6, mode: str = "RGB",
                 splits: tuple[str, ...] = ("train",)) -> Path:  # fmt: skip
    """An ImageFolder tree of 2 classes x ``per_class`` 8x8 PNGs per split."""
    for split in splits:
        for label in ("cat", "dog"):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(per_class):
                shape = (8, 8, 3) if mode == "RGB" else (8, 8)
                pixels = RNG.integers(0, 256, shape, dtype=np.uint8)
                Image.fromarray(pixels, mode).save(folder / f"{i}.png")
    return root


def one_line_error(work: Callable[[], object], *words: str) -> str:
    with pytest.raises(DatasetError) as caught:
        work()
    message = str(caught.value)
    assert "\n" not in message, message
    for word in words:
        assert word in message, message
    return message


# --- forms that load ---------------------------------------------------------------------------
def test_npz_vectors_carve_val_and_test(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "vec.npz", n=200, classes=4)  # 50 per class
    name = dataset_name(str(path))
    info = dataset_info(name)
    assert (info.domains, info.input_shapes, info.num_classes) == (
        ("vector",), {"vector": (6,)}, 4
    )  # fmt: skip
    assert info.sizes == (160, 20, 20) and sum(info.sizes) == 200
    assert info.notes == "val and test carved from train (10% each, seed 0)"
    assert info.summary() == (
        f"dataset {path}: domain vector, input (6,), 4 classes, 160/20/20 train/val/test; "
        "val and test carved from train (10% each, seed 0)"
    )
    data = load_dataset(name)
    assert data.x_train.shape == (160, 6) and data.x_train.dtype == torch.float32
    assert data.y_val.dtype == torch.int64 and len(data.x_test) == 20
    again = load_dataset(name)
    assert torch.equal(data.x_val, again.x_val)  # the carving is seeded


def test_npz_with_its_own_splits(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "own.npz", n=50, x_val=np.zeros((7, 6)), y_val=np.zeros(7),
                     x_test=np.ones((9, 6)), y_test=np.full(9, 4.0))  # fmt: skip
    info = dataset_info(str(path))
    assert info.sizes == (50, 7, 9) and info.notes == "" and info.num_classes == 5


def test_npz_signals_are_also_one_channel_images(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "sig.npz", row=(2, 12))
    info = dataset_info(str(path))
    assert info.domains == ("signal", "image")
    assert info.input_shapes == {"signal": (2, 12), "image": (1, 2, 12)}
    assert load_dataset(str(path)).x_train.shape[1:] == (2, 12)
    assert load_dataset(str(path), "image").x_train.shape[1:] == (1, 2, 12)


def test_npz_channels_last_images_become_channels_first(tmp_path: Path) -> None:
    x = RNG.normal(size=(40, 8, 8, 3)).astype(np.float32)
    held = {"x_val": x[:4], "y_val": np.arange(4) % 2, "x_test": x[:4], "y_test": np.arange(4) % 2}
    path = write_npz(tmp_path / "img.npz", x_train=x, y_train=np.arange(40) % 2, **held)
    info = dataset_info(str(path))
    assert info.input_shapes == {"image": (3, 8, 8)}
    data = load_dataset(str(path))
    assert np.array_equal(data.x_train.numpy(), x.transpose(0, 3, 1, 2))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_table_with_text_labels(tmp_path: Path, suffix: str) -> None:
    path = write_wine(tmp_path / f"wine{suffix}")
    name = dataset_name(str(path))
    info = dataset_info(name)
    assert info.input_shapes == {"vector": (13,)} and info.num_classes == 3
    assert info.sizes == (142, 18, 18)
    assert info.notes == "val and test carved from the table (10% each, seed 0)"
    data = load_dataset(name)
    assert data.x_train.shape == (142, 13)
    # standardised with the train split's statistics
    assert torch.allclose(data.x_train.mean(0), torch.zeros(13), atol=1e-4)
    assert torch.allclose(data.x_train.std(0, unbiased=False), torch.ones(13), atol=1e-3)
    assert sorted(set(data.y_train.tolist())) == [0, 1, 2]


def test_table_target_column_travels_in_the_name(tmp_path: Path) -> None:
    frame = pd.DataFrame({"label": [1, 2] * 20, "a": RNG.normal(size=40), "b": range(40)})
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    name = dataset_name(str(path), target="label")
    assert name == f"{path}#target=label"
    info = dataset_info(name)
    assert info.input_shapes == {"vector": (2,)} and info.num_classes == 2
    assert load_dataset(name).num_classes == 2


def test_image_folder_rgb_and_grey(tmp_path: Path) -> None:
    rgb = write_folder(tmp_path / "rgb", splits=("train", "val"))
    name = dataset_name(str(rgb), image_size=16)
    assert name == f"{rgb}#size=16"
    info = dataset_info(name)
    assert info.input_shapes == {"image": (3, 16, 16)} and info.num_classes == 2
    assert info.sizes == (10, 12, 2) and info.notes == "test carved from train (10%, seed 0)"
    data = load_dataset(name)
    assert data.x_train.shape == (10, 3, 16, 16) and data.x_val.shape == (12, 3, 16, 16)
    per_channel = data.x_train.mean(dim=(0, 2, 3))
    assert torch.allclose(per_channel, torch.zeros(3), atol=1e-4)
    grey = write_folder(tmp_path / "grey", mode="L", per_class=10)
    info = dataset_info(str(grey))
    assert info.name == f"{grey}#size=32" and info.input_shapes == {"image": (1, 32, 32)}
    assert load_dataset(str(grey)).x_test.shape == (2, 1, 32, 32)


def test_names_are_absolute_and_info_is_cached_until_the_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_npz(tmp_path / "c.npz")
    monkeypatch.chdir(tmp_path)
    assert dataset_name("c.npz") == str(tmp_path / "c.npz")
    assert dataset_name("Fashion-MNIST") == "fashion_mnist"
    first = dataset_info("c.npz")
    assert dataset_info(str(tmp_path / "c.npz")) is first
    write_npz(tmp_path / "c.npz", classes=4)
    os.utime(tmp_path / "c.npz", ns=(1, 1))  # a different modification time, surely
    assert dataset_info("c.npz").num_classes == 4


def test_search_config_and_study_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_wine(tmp_path / "wine.csv")
    monkeypatch.chdir(tmp_path)
    config = SearchConfig(space="deep_mlp", dataset="wine.csv")
    assert config.dataset == str(tmp_path / "wine.csv")
    assert config.with_(trials=3).dataset == config.dataset  # idempotent
    assert config.study_name("deep_mlp", f"{config.dataset}#target=x") == "deep_mlp-wine"
    assert SearchConfig(space="deep_mlp", dataset="digits").dataset == "digits"
    with pytest.raises(SearchError, match=r"^--dataset: dataset file .*nope.npz not found$"):
        SearchConfig(space="deep_mlp", dataset="nope.npz")


def test_a_space_of_another_domain_is_refused(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "pics")
    with pytest.raises(SpaceError) as caught:
        load_space("deep_mlp", dataset=dataset_name(str(folder)))
    message = str(caught.value)
    assert f"dataset '{folder}#size=32' offers image data" in message
    assert "space 'deep_mlp' needs vector data" in message and "\n" not in message
    space = load_space("deep_mlp", dataset=str(write_wine(tmp_path / "wine.csv")))
    assert (space.input_shape, space.num_classes) == ((13,), 3)


# --- bad files -----------------------------------------------------------------------------------
BAD_NPZ: list[tuple[dict[str, np.ndarray], str]] = [
    ({"x_train": np.zeros((4, 2))}, "no array 'y_train'"),
    ({"x_train": np.zeros((4, 2)), "y_train": np.arange(4) % 2, "x_val": np.zeros((2, 2))},
     "has x_val without y_val"),
    ({"x_train": np.zeros((4, 2)), "y_train": np.array([0, 1, 0.5, 1])},
     "y_train holds 0.5, not a class index"),
    ({"x_train": np.zeros((4, 2)), "y_train": np.array([0, 1, -1, 1])}, "y_train holds -1"),
    ({"x_train": np.zeros((4, 2)), "y_train": np.array(["a", "b", "a", "b"])},
     "y_train has dtype <U1; want integer class labels"),
    ({"x_train": np.array([[0, 1], [np.nan, 1], [0, 1], [1, 1]]), "y_train": np.arange(4) % 2},
     "x_train holds NaN or infinite values"),
    ({"x_train": np.zeros((4, 2)), "y_train": np.arange(3) % 2},
     "x_train has 4 rows but y_train has 3"),
    ({"x_train": np.zeros((0, 2)), "y_train": np.zeros(0, dtype=int)}, "x_train is empty"),
    ({"x_train": np.zeros((4, 2)), "y_train": np.zeros((4, 1), dtype=int)},
     "y_train has shape (4, 1); want (N,) class labels"),
    ({"x_train": np.zeros(4), "y_train": np.arange(4) % 2}, "x_train has shape (4,)"),
    ({"x_train": np.zeros((4, 2)), "y_train": np.zeros(4, dtype=int)}, "one class"),
    ({"x_train": np.zeros((4, 2)), "y_train": np.arange(4) % 2, "x_val": np.zeros((2, 3)),
      "y_val": np.zeros(2, dtype=int)}, "x_val rows are (3,) but x_train rows are (2,)"),
    ({"x_train": np.array(["a", "b"]), "y_train": np.arange(2)}, "x_train has dtype <U1"),
    ({"x_train": np.zeros((2, 2)), "y_train": np.arange(2)}, "too few to carve a val split"),
]  # fmt: skip


@pytest.mark.parametrize(("arrays", "words"), BAD_NPZ)
def test_bad_npz_is_one_line(tmp_path: Path, arrays: dict[str, np.ndarray], words: str) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    one_line_error(lambda: dataset_info(str(path)), str(path), words)


def test_ragged_and_foreign_npz_files(tmp_path: Path) -> None:
    ragged = tmp_path / "ragged.npz"
    rows = np.empty(2, dtype=object)
    rows[0], rows[1] = [1.0, 2.0], [3.0]
    np.savez(ragged, x_train=rows, y_train=np.arange(2))
    one_line_error(lambda: dataset_info(str(ragged)), str(ragged), "without unpickling")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip")
    one_line_error(lambda: dataset_info(str(garbage)), str(garbage), "not an .npz archive")
    single = tmp_path / "single.npz"
    with single.open("wb") as fh:
        np.save(fh, np.zeros(3))
    one_line_error(lambda: dataset_info(str(single)), str(single), "not an .npz archive")


BAD_TABLES: list[tuple[str, str | None, str]] = [
    ("a,b,y\n1,x,0\n2,y,1\n", None, "feature column 'b' is not numeric"),
    ("a,b,y\n1,,0\n2,3,1\n", None, "column 'b' has empty, NaN or infinite cells"),
    ("a,y\n1,0\n2,\n", None, "target column 'y' has empty cells"),
    ("a,y\n1,0.5\n2,1\n", None, "target column 'y' holds 0.5, not a class label"),
    ("a,y\n1,0\n2,0\n", None, "target column 'y' holds one class"),
    ("y\n0\n1\n", None, "1 column(s); want features and a target"),
    ("a,y\n", None, "the table has no rows"),
    ("a,y\n1,0\n2,1\n", "label", "no column 'label' (columns: a, y)"),
    ('a,y\n1,"0\n', None, "cannot read the table"),
]


@pytest.mark.parametrize(("text", "target", "words"), BAD_TABLES)
def test_bad_table_is_one_line(tmp_path: Path, text: str, target: str | None,
                               words: str) -> None:  # fmt: skip
    path = tmp_path / "bad.csv"
    path.write_text(text)
    one_line_error(lambda: dataset_info(dataset_name(str(path), target=target)), str(path), words)


def test_unreadable_parquet(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"PAR1 but not really")
    one_line_error(lambda: dataset_info(str(path)), str(path), "cannot read the table")


def test_bad_image_folders_are_one_line(tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    one_line_error(lambda: dataset_info(str(bare)), str(bare), "no train/ folder")
    (bare / "train").mkdir()
    one_line_error(lambda: dataset_info(str(bare)), "train: no class folders")
    empty = write_folder(tmp_path / "empty")
    (empty / "train" / "eel").mkdir()
    one_line_error(lambda: dataset_info(str(empty)), str(empty / "train" / "eel"),
                   "an empty class folder")  # fmt: skip
    stray = write_folder(tmp_path / "stray", splits=("train", "val"))
    (stray / "val" / "cat").rename(stray / "val" / "cow")
    one_line_error(lambda: dataset_info(str(stray)), "class 'cow' is not in train/")
    lonely = write_folder(tmp_path / "lonely")
    for f in (lonely / "train" / "dog").iterdir():
        f.unlink()
    (lonely / "train" / "dog").rmdir()
    one_line_error(lambda: dataset_info(str(lonely)), "one class folder; want 2 or more")
    broken = write_folder(tmp_path / "broken")
    (broken / "train" / "cat" / "0.png").write_bytes(b"not a png")
    one_line_error(lambda: dataset_info(str(broken)), "0.png: not an image Pillow can read")
    small = write_folder(tmp_path / "small", per_class=2)
    one_line_error(lambda: dataset_info(str(small)), "too few to carve a val split")


def test_bad_names_are_one_line(tmp_path: Path) -> None:
    npz = write_npz(tmp_path / "a.npz")
    csv = write_wine(tmp_path / "w.csv")
    folder = write_folder(tmp_path / "pics")
    (tmp_path / "notes.txt").write_text("hi")
    one_line_error(lambda: dataset_name(str(tmp_path / "gone.npz")), "gone.npz not found")
    one_line_error(lambda: dataset_name(str(tmp_path / "notes.txt")),
                   "not an .npz, .csv, .parquet or an image folder")  # fmt: skip
    one_line_error(lambda: dataset_name(str(npz), target="y"), "applies to .csv / .parquet")
    one_line_error(lambda: dataset_name(str(csv), image_size=8), "applies to image folders")
    one_line_error(lambda: dataset_name(str(folder), image_size=0), "must be in [1, 1024]")
    one_line_error(lambda: dataset_name(f"{csv}#target=a", target="b"), "disagree")
    one_line_error(lambda: dataset_name("digits", target="y"), "'digits' is built in")
    one_line_error(lambda: dataset_name("imagenet"), "unknown dataset 'imagenet'")
