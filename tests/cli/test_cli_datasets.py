"""``nas-skip datasets``, and searches on an .npz, a .csv table and an image folder, in a
subprocess: what the search says it inferred, and one-line errors for bad files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from helpers import CLI_SPACE, nas_skip_cli
from PIL import Image

#: a 1-2 layer CNN space: image searches in a few seconds
IMAGE_SPACE = """name: cnn
domain: image
dataset: digits
family: chain
skeleton: {depth: {low: 1, high: 2}, width: [4, 8], ops: [conv3x3_bn_relu], hop_window: 1,
           kinds: [none, add]}
train: {lr: 0.05, batch_size: 64}
"""


@pytest.fixture
def spaces(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "cli.yaml").write_text(CLI_SPACE)
    (tmp_path / "cnn.yaml").write_text(IMAGE_SPACE)
    return tmp_path / "cli.yaml", tmp_path / "cnn.yaml"


def search(tmp_path: Path, space: Path, *args: object) -> tuple[int, str, str]:
    done = nas_skip_cli("search", "--space", space, "--trials", "2", "--epochs", "1",
                        "--seed", "0", *args, cwd=tmp_path)  # fmt: skip
    return done.returncode, done.stdout, done.stderr


def test_datasets_lists_the_registry_and_the_file_forms(tmp_path: Path) -> None:
    done = nas_skip_cli("datasets", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    words = ("mnist1d", "shapes_seg", "3400/600/1000", "(1, 40)", "PATH.npz",
             "PATH.csv, PATH.parquet", "--target COLUMN", "--image-size N", "seed 0")  # fmt: skip
    for word in words:
        assert word in done.stdout, word


def write_npz(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "vec.npz", x_train=rng.normal(size=(200, 64)).astype(np.float32),
             y_train=np.arange(200) % 4)  # fmt: skip


def write_image_folder(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        folder = tmp_path / "pics" / "train" / label
        folder.mkdir(parents=True)
        for i in range(6):
            pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(pixels, "RGB").save(folder / f"{i}.png")


@pytest.mark.parametrize(
    ("write", "space", "args", "inferred", "study"),
    [
        (write_npz, 0, ("--dataset", "vec.npz"),
         "dataset {tmp}/vec.npz: domain vector, input (64,), 4 classes, 160/20/20 "
         "train/val/test; val and test carved from train (10% each, seed 0)", "cli-vec"),
        (write_image_folder, 1, ("--dataset", "pics", "--image-size", "8"),
         "dataset {tmp}/pics#size=8: domain image, input (3, 8, 8), 2 classes, "
         "8/2/2 train/val/test; val and test carved from train (10% each, seed 0)", "cnn-pics"),
    ],
    ids=["npz", "image-folder"],
)  # fmt: skip
def test_search_a_dataset_file(
    tmp_path: Path,
    spaces: tuple[Path, Path],
    write: Callable[[Path], None],
    space: int,
    args: tuple[str, ...],
    inferred: str,
    study: str,
) -> None:
    write(tmp_path)
    rc, out, err = search(tmp_path, spaces[space], *args)
    assert rc == 0, err
    assert inferred.format(tmp=tmp_path) in out
    assert "2 finished" in out and f"study '{study}'" in out


def test_search_a_csv_then_a_rerun_without_its_target_is_refused(
    tmp_path: Path, spaces: tuple[Path, Path]
) -> None:
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame
    frame["kind"] = frame["target"].map({0: "barolo", 1: "grignolino", 2: "barbera"})
    frame.drop(columns="target").to_csv(tmp_path / "wine.csv", index=False)
    rc, out, err = search(tmp_path, spaces[0], "--dataset", "wine.csv", "--target", "kind")
    assert rc == 0, err
    assert (
        f"dataset {tmp_path / 'wine.csv'}#target=kind: domain vector, input (13,), 3 classes, "
        "142/18/18 train/val/test; val and test carved from the table (10% each, seed 0)"
    ) in out
    assert "2 finished" in out and "study 'cli-wine'" in out
    rc, out, err = search(tmp_path, spaces[0], "--dataset", "wine.csv")  # no --target
    assert rc == 2 and err.startswith("error: --study cli-wine: ") and "#target=kind" in err
    assert len(err.strip().splitlines()) == 1


@pytest.fixture
def bad_files(tmp_path: Path) -> Path:
    """Dataset files that a search refuses, and a vector .npz for the CNN space."""
    np.savez(tmp_path / "nolabels.npz", x_train=np.zeros((8, 3)))
    (tmp_path / "nan.csv").write_text("a,y\n1,0\n,1\n2,0\n3,1\n")
    np.savez(tmp_path / "vec.npz", x_train=np.zeros((40, 3)), y_train=np.arange(40) % 2)
    (tmp_path / "pics" / "train" / "cat").mkdir(parents=True)
    (tmp_path / "pics" / "train" / "dog").mkdir(parents=True)
    return tmp_path


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--dataset", "nolabels.npz"), "nolabels.npz: no array 'y_train'"),
        (("--dataset", "nan.csv"), "nan.csv: column 'a' has empty, NaN or infinite cells"),
        (("--dataset", "pics"), "pics/train/cat: an empty class folder"),
        (("--dataset", "gone.csv"), "gone.csv not found"),
        (("--dataset", "vec.npz", "--target", "y"), "applies to .csv / .parquet tables"),
        (("--target", "y"), "--target and --image-size need --dataset"),
    ],
)
def test_bad_files_are_one_line(
    bad_files: Path, spaces: tuple[Path, Path], args: tuple[str, ...], words: str
) -> None:
    rc, out, err = search(bad_files, spaces[0], *args)
    assert rc == 2 and err.startswith("error: ") and words in err, (args, err)
    assert len(err.strip().splitlines()) == 1, err


def test_a_domain_mismatch_is_one_line(bad_files: Path, spaces: tuple[Path, Path]) -> None:
    rc, out, err = search(bad_files, spaces[1], "--dataset", "vec.npz")
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    vec = bad_files / "vec.npz"
    assert f"dataset '{vec}' offers vector data but space 'cnn' needs image" in err


def test_train_on_a_table_with_a_target(tmp_path: Path) -> None:
    import pandas as pd

    rng = np.random.default_rng(0)
    columns = {"label": np.arange(300) % 10} | {f"f{i}": rng.normal(size=300) for i in range(40)}
    pd.DataFrame(columns).to_csv(tmp_path / "t.csv", index=False)
    genotype = Path(__file__).parents[2] / "examples" / "genotypes" / "rezero_mlp.json"
    done = nas_skip_cli("train", genotype, "--dataset", "t.csv", "--target", "label",
                        "--epochs", "1", "--out", "out", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"dataset {tmp_path / 't.csv'}#target=label: domain vector, input (40,)" in done.stdout
    assert (tmp_path / "out" / "weights.pt").exists()
