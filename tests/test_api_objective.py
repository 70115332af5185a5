"""``nas_skip.search(objective=fn)``: a user's own training and score, as one more
evaluator: pruning, kept weights, dedup and the study's records work as for ``train``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from helpers import BARRIER_ENV, CLI_SPACE, score_once_two_started, search_arrays

import nas_skip

optuna.logging.set_verbosity(optuna.logging.WARNING)


def fit_adam(model: torch.nn.Module, data: Any, hparams: dict[str, Any], report: Any) -> float:
    """A user's own recipe: Adam and a label-smoothed loss; validation accuracy."""
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    accuracy = 0.0
    for epoch in range(1, 4):
        model.train()
        for i in range(0, len(data.x_train), 64):
            loss = F.cross_entropy(model(data.x_train[i : i + 64]), data.y_train[i : i + 64],
                                   label_smoothing=0.1)  # fmt: skip
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            accuracy = (model(data.x_val).argmax(1) == data.y_val).float().mean().item()
        report(epoch, accuracy)
    return accuracy


def val_loss(model: torch.nn.Module, data: Any, hparams: dict[str, Any], report: Any) -> float:
    """Minimised: the untrained network's validation loss (no training at all)."""
    with torch.no_grad():
        return float(F.cross_entropy(model(data.x_val), data.y_val))


def broken(model: torch.nn.Module, data: Any, hparams: dict[str, Any], report: Any) -> float:
    raise ValueError("my loss is broken\nsecond line")


def wrong_type(model: torch.nn.Module, data: Any, hparams: dict[str, Any], report: Any) -> str:
    return "high"


def test_a_user_objective_trains_scores_and_keeps_its_model(
    tmp_path: Path, data: nas_skip.Dataset
) -> None:
    study = search_arrays(tmp_path, data, objective=fit_adam, keep=2, study="obj")
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE]
    assert study.metric_names == ["objective"]
    assert study.user_attrs["objective_fn"] == f"{__name__}.fit_adam"
    done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(done) >= 3 and all(t.values[0] == t.user_attrs["objective"] for t in done)
    assert all(sorted(t.intermediate_values) == [1, 2, 3] for t in done)  # report() fed them
    best = nas_skip.best(study)
    model = nas_skip.load_model(study, best, artifacts=tmp_path / "artifacts")
    xv, yv = (torch.from_numpy(data.arrays[k]) for k in ("x_val", "y_val"))
    with torch.no_grad():
        accuracy = (model(xv).argmax(1) == yv).float().mean().item()
    assert accuracy == pytest.approx(best.values[0], abs=1e-6) and accuracy > 0.6
    from nas_skip.searching._export import export_metrics

    metrics = export_metrics(study, best, retrained=False)  # metrics.json of an export
    assert metrics["metric"] == f"{__name__}.fit_adam"
    assert metrics["values"] == {"objective": best.values[0]}
    with pytest.raises(nas_skip.NasSkipError, match="scored by the objective"):
        search_arrays(tmp_path, data, objective=val_loss, directions=["minimize"], study="obj")


def test_minimised_with_worker_processes(
    tmp_path: Path, data: nas_skip.Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    # each worker's first trial waits for the other's: both workers score trials, however
    # long a spawned process takes to import torch
    (tmp_path / "barrier").mkdir()
    monkeypatch.setenv(BARRIER_ENV, str(tmp_path / "barrier"))
    study = search_arrays(tmp_path, data, objective=score_once_two_started,
                          directions=["minimize"], trials=4, workers=2)  # fmt: skip
    assert study.directions == [optuna.study.StudyDirection.MINIMIZE]
    assert study.study_name.startswith("cli-blobs-")
    assert study.study_name.endswith("-score_once_two_started")
    done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(done) >= 4 and len({t.user_attrs["worker"] for t in done}) == 2
    assert nas_skip.best(study).values[0] == min(t.values[0] for t in done)


def test_a_function_defined_in_a_script_reaches_spawned_workers(tmp_path: Path) -> None:
    """A notebook's or script's ``__main__`` function travels by value (cloudpickle)."""
    (tmp_path / "cli.yaml").write_text(CLI_SPACE)
    script = (
        "import numpy as np, nas_skip\n"
        "def score(model, data, hparams, report):\n"
        "    return float(len(data.x_train)) + hparams['lr']\n"
        "rng = np.random.default_rng(0)\n"
        "x, y = rng.normal(size=(90, 4)).astype('float32'), rng.integers(0, 3, 90)\n"
        "study = nas_skip.search('cli.yaml', nas_skip.Dataset.from_arrays(x, y), trials=2,\n"
        "    workers=2, objective=score, storage='sqlite:///s.db', progress=False, seed=0)\n"
        "print(sorted(t.values[0] for t in study.trials))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("[72.05")  # 72 carved train rows + lr 0.05


def test_a_failing_objective_stores_its_one_line_reason(
    tmp_path: Path, data: nas_skip.Dataset, capfd: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(nas_skip.NasSkipError, match="failed in a row"):
        search_arrays(tmp_path, data, objective=broken, trials=1, study="broken")
    failed = optuna.load_study(study_name="broken", storage=f"sqlite:///{tmp_path / 's.db'}")
    reasons = {t.user_attrs["fail_reason"] for t in failed.trials}
    assert reasons == {"ValueError: my loss is broken"}
    assert "Traceback" not in capfd.readouterr().err
    with pytest.raises(nas_skip.NasSkipError, match="failed in a row"):
        search_arrays(tmp_path, data, objective=wrong_type, trials=1, study="wrong")
    wrong = optuna.load_study(study_name="wrong", storage=f"sqlite:///{tmp_path / 's.db'}")
    assert (
        wrong.trials[0]
        .user_attrs["fail_reason"]
        .startswith("TypeError: the objective returned str high; it must return 1 number(s)")
    )


def test_objective_options_are_checked(tmp_path: Path, data: nas_skip.Dataset) -> None:
    with pytest.raises(nas_skip.NasSkipError, match="objective must be a function"):
        search_arrays(tmp_path, data, objective=3)
    with pytest.raises(nas_skip.NasSkipError, match="directions= goes with objective="):
        search_arrays(tmp_path, data, directions=["minimize"])
    with pytest.raises(nas_skip.NasSkipError, match="--directions: each must be maximize"):
        search_arrays(tmp_path, data, objective=val_loss, directions=["down"])
    with pytest.raises(nas_skip.NasSkipError, match="objective needs the function"):
        search_arrays(tmp_path, data, evaluator="objective")
