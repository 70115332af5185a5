"""One conformance suite that every search backend runs: local and Ray (a real local Ray)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import optuna_dashboard
import pytest
import torch
from conftest import write_space
from helpers import import_source
from optuna.trial import TrialState

from nas_skip.data import load_dataset
from nas_skip.searching import SearchConfig, search, top_trials
from nas_skip.searching._artifacts import STORE_MARK
from nas_skip.searching._export import export_trial
from nas_skip.searching._weights import kept_weights, removed_weights

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """A local Ray on loopback only (FIELD-NOTES: the variable must precede the import)."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(params=["local", pytest.param("ray", marks=pytest.mark.slow)])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")
    return str(request.param)


def run(tmp_path: Path, backend: str, space: Path, **kw: Any) -> Any:
    config = SearchConfig(
        space=str(space),
        backend=backend,
        storage=kw.pop("storage", f"sqlite:///{tmp_path / 'study.db'}"),
        artifacts=str(tmp_path / "artifacts"),
        epochs=kw.pop("epochs", 2),
        seed=kw.pop("seed", 0),
        **kw,
    )
    return search(config, progress=False)


def test_trials_land_in_storage_with_their_attributes(
    tmp_path: Path, backend: str, tiny_space: Path
) -> None:
    result = run(tmp_path, backend, tiny_space, trials=4, epochs=3, pruning=True)
    trials = result.study.get_trials()
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    assert result.finished == 4 and len(done) + result.pruned == 4
    for t in done:
        a = t.user_attrs
        assert {"genotype", "hash", "params", "flops", "val_accuracy", "worker"} <= set(a)
        assert a["hash"].startswith("v2:") and 0.0 <= t.values[0] <= 1.0
        assert any(k.startswith("edge:") for k in t.params)
        assert "train:lr" not in t.params  # a constant in this space: not a parameter
        if backend == "ray":
            assert "ray_trial_id" in a
        if "duplicate_of" not in a:
            assert sorted(t.intermediate_values) == [1, 2, 3]
            assert a["train_seconds"] > 0
    assert result.study.user_attrs["dataset"] == "digits"
    for t in trials:  # every trial shows its architecture in optuna-dashboard
        drawing = tmp_path / "artifacts" / t.user_attrs["topology_artifact"]
        assert drawing.read_text().startswith("<?xml") and "<svg" in drawing.read_text()
        note = optuna_dashboard.get_note(optuna.trial.Trial(result.study, t._trial_id))
        assert t.user_attrs["hash"] in note and "skips by kind" in note
        if "duplicate_of" in t.user_attrs:
            assert f"duplicate of trial {t.user_attrs['duplicate_of']}" in note
        elif t.state == TrialState.COMPLETE:
            assert f"validation {t.values[0]:.4f}" in note


def test_trials_is_a_total_so_reruns_continue(
    tmp_path: Path, backend: str, tiny_space: Path
) -> None:
    first = run(tmp_path, backend, tiny_space, trials=2, study="c")
    assert first.finished == 2
    again = run(tmp_path, backend, tiny_space, trials=2, study="c")
    assert len(again.study.get_trials()) == len(first.study.get_trials())  # nothing to do
    more = run(tmp_path, backend, tiny_space, trials=4, study="c")
    assert more.finished == 4


def test_duplicates_reuse_a_finished_trial(
    tmp_path: Path, backend: str, repeating_space: Path
) -> None:
    result = run(tmp_path, backend, repeating_space, trials=6, sampler="random", pruning=False)
    trials = [t for t in result.study.get_trials() if t.state == TrialState.COMPLETE]
    dups = [t for t in trials if "duplicate_of" in t.user_attrs]
    assert result.duplicates == len(dups) >= 2  # 2 genotypes, 6 trials
    for t in dups:
        original = result.study.trials[t.user_attrs["duplicate_of"]]
        assert original.user_attrs["hash"] == t.user_attrs["hash"]
        assert original.values == t.values and t.user_attrs["train_seconds"] == 0.0
        assert "duplicate_of" not in original.user_attrs


def test_a_failing_trial_is_recorded_and_the_search_goes_on(tmp_path: Path) -> None:
    # two layers 2**20 wide need 4 TiB of weights: the trials that draw that width fail
    # when the network is built, the others run (on Ray: test_ray.py's test of this name,
    # which also reads what Tune prints and keeps; a Ray worker restarts per failure)
    space = write_space(tmp_path, "flaky", depth="2", width=f"[8, {2**20}]")
    result = run(tmp_path, "local", space, trials=4, sampler="random")
    failed = [t for t in result.study.get_trials() if t.state == TrialState.FAIL]
    assert result.finished == 4 and failed
    for t in failed:
        assert t.params["width"] == 2**20
        assert "can't allocate memory" in t.user_attrs["fail_reason"]


def test_several_objectives_make_a_pareto_front(
    tmp_path: Path, backend: str, tiny_space: Path
) -> None:
    result = run(tmp_path, backend, tiny_space, trials=5, objectives=("accuracy", "params"))
    study = result.study
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert study.metric_names == ["accuracy", "params"]  # not "Objective 0" in the dashboard
    front = top_trials(study, 50)
    assert front and all(len(t.values) == 2 for t in front)
    assert {t.number for t in front} <= {t.number for t in study.best_trials}
    assert front[0].values[0] == max(t.values[0] for t in front)  # the most accurate first


def test_keep_leaves_exactly_the_best_k_weights(
    tmp_path: Path, backend: str, tiny_space: Path
) -> None:
    result = run(tmp_path, backend, tiny_space, trials=6, keep=2, sampler="random",
                 pruning=False)  # fmt: skip
    study = result.study
    removed = removed_weights(study)
    kept = {t.number for t in study.trials if kept_weights(t, removed) is not None}
    assert kept == {t.number for t in top_trials(study, 2)}
    files = [p for p in (tmp_path / "artifacts").iterdir()
             if p.name != STORE_MARK and b"<svg" not in p.read_bytes()]  # fmt: skip
    assert sorted(p.name for p in files) == sorted(study.trials[n].user_attrs["weights_artifact"]
                                                   for n in kept)  # fmt: skip


def test_export_of_the_best_reproduces_its_validation_accuracy(
    tmp_path: Path, backend: str, tiny_space: Path
) -> None:
    result = run(tmp_path, backend, tiny_space, trials=3, pruning=False)
    out = tmp_path / "best"
    artifacts = tmp_path / "artifacts"  # the search's --artifacts
    done = export_trial(result.storage_url, result.study_name, out, artifacts=artifacts)
    assert done.trial.number == top_trials(result.study, 1)[0].number
    module = import_source((out / "model.py").read_text(), tmp_path)
    net = module.Net().eval()
    net.load_state_dict(torch.load(out / "weights.pt", weights_only=True))
    data = load_dataset("digits", "vector")
    with torch.no_grad():
        accuracy = (net(data.x_val).argmax(1) == data.y_val).float().mean().item()
    assert abs(accuracy - done.trial.values[0]) < 1e-6


def test_a_tabular_search_stores_table_entries_of_its_cells(tmp_path: Path, backend: str) -> None:
    from nas_skip.evaluators._nb201 import Table
    from nas_skip.spaces import _nb201 as nb201

    result = run(
        tmp_path, backend, Path("nb201"), trials=12, evaluator="nb201-cifar10", epochs=None
    )
    table = Table("cifar10")
    study = result.study
    assert study.user_attrs["evaluator"] == "nb201-cifar10" and result.finished == 12
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        a = t.user_attrs
        cell = nb201.parse_arch(a["nb201_arch"])
        assert cell == nb201.cell_from_params(t.params, nb201.NB201_OPS)  # as chosen
        assert "weights_artifact" not in a  # a table lookup trains nothing
        if "duplicate_of" in a:  # an isomorphic cell's value, reused
            original = study.trials[a["duplicate_of"]]
            assert original.user_attrs["hash"] == a["hash"] and original.values == t.values
        else:
            assert t.values[0] in table.entry(cell).val_accuracy
            assert a["train_seconds"] == table.entry(cell).train_seconds
        note = optuna_dashboard.get_note(optuna.trial.Trial(study, t._trial_id))
        assert a["nb201_arch"] in note
