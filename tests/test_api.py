"""The public Python API: search your own arrays, take the best trial and its trained
network, from a script or notebook, on both backends."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import torch
from helpers import blobs, search_arrays

import nas_skip

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_search_arrays_then_load_the_best_trained_network(
    tmp_path: Path, data: nas_skip.Dataset
) -> None:
    study = search_arrays(tmp_path, data, keep=3, epochs=6)
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


def test_a_oneshot_search_of_arrays_gives_a_trained_network(
    tmp_path: Path, data: nas_skip.Dataset
) -> None:
    """``strategy="oneshot"``: the supernet trains on the arrays, its network is the study's
    one trial, and load_model returns it trained."""
    study = search_arrays(tmp_path, data, strategy="oneshot", epochs=3,
                          fix={"depth": 2, "width": 16})  # fmt: skip
    best = nas_skip.best(study)
    assert best.user_attrs["oneshot"] == 1 and len(study.trials) == 1
    assert study.user_attrs["oneshot:1"]["derived"].keys() <= best.params.keys()
    model = nas_skip.load_model(study, best, artifacts=tmp_path / "artifacts")
    assert isinstance(model, torch.nn.Module)


def test_the_same_arrays_continue_the_study_with_worker_processes(
    tmp_path: Path, data: nas_skip.Dataset
) -> None:
    search_arrays(tmp_path, data, epochs=2)
    same = nas_skip.Dataset.from_arrays(*(data.arrays[k] for k in ("x_train", "y_train")),
                                        x_val=data.arrays["x_val"], y_val=data.arrays["y_val"],
                                        name="blobs")  # fmt: skip
    # spawned workers load it by name
    study = search_arrays(tmp_path, same, trials=6, epochs=2, workers=2)
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
        search_arrays(tmp_path, data, epochs=2, trails=3)
    with pytest.raises(nas_skip.NasSkipError, match="--seed"):
        search_arrays(tmp_path, data, epochs=2, seed=-1)
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
