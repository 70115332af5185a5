"""The public Python API: search your own arrays, take the best trial and its trained
network, from a script or notebook, on both backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import torch
from helpers import CLI_SPACE

import nas_skip

optuna.logging.set_verbosity(optuna.logging.WARNING)


def blobs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three Gaussian blobs in 6 dimensions: learnable in one epoch."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centres = np.eye(3, 6) * 4.0
    return (centres[y] + rng.normal(size=(n, 6))).astype(np.float32), y


@pytest.fixture
def data() -> nas_skip.Dataset:
    (x, y), (xv, yv) = blobs(240, 0), blobs(60, 1)
    return nas_skip.Dataset.from_arrays(x, y, x_val=xv, y_val=yv, name="blobs")


def _search(tmp_path: Path, dataset: Any, **kw: Any) -> optuna.Study:
    space = tmp_path / "cli.yaml"
    space.write_text(CLI_SPACE)
    options: dict[str, Any] = {"trials": 3, "epochs": 2, "seed": 0, "progress": False,
                               "storage": f"sqlite:///{tmp_path / 's.db'}",
                               "artifacts": str(tmp_path / "artifacts")}  # fmt: skip
    return nas_skip.search(space, dataset, **{**options, **kw})


def test_search_arrays_then_load_the_best_trained_network(
    tmp_path: Path, data: nas_skip.Dataset
) -> None:
    study = _search(tmp_path, data, keep=3, epochs=6)
    assert isinstance(study, optuna.Study) and study.study_name.startswith("cli-blobs-")
    best = nas_skip.best(study)
    model = nas_skip.load_model(study, best, artifacts=tmp_path / "artifacts")
    assert isinstance(model, torch.nn.Module) and not model.training
    xv, yv = data.arrays["x_val"], data.arrays["y_val"]
    with torch.no_grad():
        accuracy = (model(torch.from_numpy(xv)).argmax(1).numpy() == yv).mean()
    # the network that comes back is the one the search measured
    assert accuracy == pytest.approx(best.user_attrs["val_accuracy"], abs=1e-6)
    assert accuracy > 0.6  # and it learned the blobs (chance: 1/3)
    saved = list((tmp_path / "datasets").glob("blobs-*.npz"))
    assert len(saved) == 1  # the arrays, stored once by content


def test_the_same_arrays_continue_the_study_with_worker_processes(
    tmp_path: Path, data: nas_skip.Dataset
) -> None:
    _search(tmp_path, data)
    same = nas_skip.Dataset.from_arrays(*(data.arrays[k] for k in ("x_train", "y_train")),
                                        x_val=data.arrays["x_val"], y_val=data.arrays["y_val"],
                                        name="blobs")  # fmt: skip
    study = _search(tmp_path, same, trials=6, workers=2)  # spawned workers load it by name
    finished = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(finished) >= 6 and len(optuna.get_all_study_names(study._storage)) == 1
    assert len({t.user_attrs["worker"] for t in study.trials[3:]}) == 2


def test_from_torch_reads_a_map_style_dataset_in_batches(data: nas_skip.Dataset,
                                                         tmp_path: Path) -> None:  # fmt: skip
    from torch.utils.data import TensorDataset

    a = data.arrays
    train = TensorDataset(torch.from_numpy(a["x_train"]), torch.from_numpy(a["y_train"]))
    val = TensorDataset(torch.from_numpy(a["x_val"]), torch.from_numpy(a["y_val"]))
    made = nas_skip.Dataset.from_torch(train, val, name="blobs", batch_size=7)
    assert made.save(tmp_path) == data.save(tmp_path)  # the same content, the same file


def test_bad_calls_are_one_line_errors(tmp_path: Path, data: nas_skip.Dataset) -> None:
    x, y = blobs(10, 0)
    with pytest.raises(nas_skip.NasSkipError, match="x_val and y_val go together"):
        nas_skip.Dataset.from_arrays(x, y, x_val=x)
    with pytest.raises(nas_skip.NasSkipError, match="Dataset name"):
        nas_skip.Dataset.from_arrays(x, y, name="../etc")
    with pytest.raises(nas_skip.NasSkipError, match="unknown option 'trails'"):
        _search(tmp_path, data, trails=3)
    with pytest.raises(nas_skip.NasSkipError, match="--seed"):
        _search(tmp_path, data, seed=-1)
    study = optuna.create_study()
    with pytest.raises(nas_skip.NasSkipError, match="no complete trial"):
        nas_skip.best(study)


def test_a_notebook_user_imports_nothing_heavy_until_searching() -> None:
    import subprocess
    import sys

    code = (
        "import sys, nas_skip; heavy = {'torch', 'optuna', 'ray'} & set(sys.modules); "
        "assert not heavy, heavy; nas_skip.Dataset; assert 'optuna' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
