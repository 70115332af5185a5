"""``--strategy oneshot`` in a real search: recorded on the study, confirmed as a trial."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from helpers import search_config
from optuna.trial import TrialState

from nas_skip.searching import SearchConfig, SearchError, search
from nas_skip.searching._artifacts import ArtifactFolders
from nas_skip.searching._oneshot import oneshot_runs

optuna.logging.set_verbosity(optuna.logging.WARNING)


def oneshot(tmp_path: Path, space: Path, **kw: object) -> SearchConfig:
    """A one-shot search of ``space`` fixed at 2 layers of width 8."""
    return search_config(
        tmp_path, space, **{"strategy": "oneshot", "fix": {"depth": 2, "width": 8}, **kw}
    )


def test_a_oneshot_search_records_its_supernet_and_trains_the_derived_network(
    tmp_path: Path, tiny_space: Path
) -> None:
    result = search(oneshot(tmp_path, tiny_space, relaxation="sigmoid", max_skips=1),
                    progress=False)  # fmt: skip
    study = result.study
    runs = oneshot_runs(study)
    assert [k for k, _ in runs] == [1]
    record = runs[0][1]
    assert record["settings"]["relaxation"] == "sigmoid" and record["settings"]["max_skips"] == 1
    assert record["fixed"]["depth"] == 2 and record["fixed"]["width"] == 8
    assert len(record["val_accuracy"]) == 2 and len(record["skips"]) == 2
    assert record["seconds"] > 0 and record["skips_kept"] <= 1
    # the per-epoch weights are an artifact in the user's folder
    raw = ArtifactFolders(tmp_path / "artifacts").read(record["weights_artifact"], 10**7)
    weights = json.loads(raw or b"{}")
    assert [e["epoch"] for e in weights["epochs"]] == [1, 2]
    names = [c["name"] for c in weights["choices"]]
    assert set(names) == set(record["derived"]) and "edge:l0->l1" in names
    # the derived network ran as an ordinary trial, its choices those derived
    (trial,) = study.get_trials()
    assert trial.state == TrialState.COMPLETE and trial.user_attrs["oneshot"] == 1
    assert {k: trial.params[k] for k in record["derived"]} == record["derived"]
    assert trial.params["depth"] == 2 and "genotype" in trial.user_attrs
    assert "topology_artifact" in trial.user_attrs  # drawn like any trial
    assert result.finished == 1
    # a second run on the same study is run 2, its network the next trial
    again = search(oneshot(tmp_path, tiny_space), progress=False)
    assert [k for k, _ in oneshot_runs(again.study)] == [1, 2]
    last = again.study.get_trials()[-1]
    assert last.number == 1 and last.user_attrs["oneshot"] == 2
    assert last.state in (TrialState.COMPLETE, TrialState.PRUNED)


def test_a_trial_search_may_follow_on_the_same_study(tmp_path: Path, tiny_space: Path) -> None:
    search(oneshot(tmp_path, tiny_space), progress=False)
    more = search(oneshot(tmp_path, tiny_space, strategy="trials", trials=3), progress=False)
    assert more.finished == 3
    assert sum("oneshot" in t.user_attrs for t in more.study.get_trials()) == 1


def test_oneshot_refuses_what_it_cannot_do_before_touching_the_study(
    tmp_path: Path, tiny_space: Path
) -> None:
    table = r"--strategy: oneshot trains a supernet on the search's data; --evaluator nb201-c"
    with pytest.raises(SearchError, match=table):
        oneshot(tmp_path, tiny_space, evaluator="nb201-cifar10", epochs=None, fix={})
    with pytest.raises(SearchError, match=r"--relaxation: must be one of softmax, sigmoid"):
        oneshot(tmp_path, tiny_space, relaxation="gumbel")
    with pytest.raises(SearchError, match=r"--max-skips: must be 0 or more"):
        oneshot(tmp_path, tiny_space, max_skips=-1)
    with pytest.raises(SearchError, match=r"--strategy: must be one of trials, oneshot"):
        oneshot(tmp_path, tiny_space, strategy="darts")
    for lr in (0, -1, float("nan"), float("inf"), 2):
        with pytest.raises(SearchError, match=r"--arch-lr: must be in \(0, 1\]"):
            oneshot(tmp_path, tiny_space, arch_lr=lr)
    with pytest.raises(SearchError, match=r"--supernet-epochs: must be at least 1"):
        oneshot(tmp_path, tiny_space, supernet_epochs=0)
    with pytest.raises(SearchError, match=r"--strategy oneshot: --fix 'nope': space 'tiny' has "):
        search(oneshot(tmp_path, tiny_space, fix={"nope": 1}), progress=False)
    with pytest.raises(SearchError, match=r"--strategy oneshot: --fix depth: 7 is not an "
                                          r"integer in \[1, 2\]"):  # fmt: skip
        search(oneshot(tmp_path, tiny_space, fix={"depth": 7}), progress=False)
    assert not optuna.get_all_study_names(f"sqlite:///{tmp_path / 'study.db'}") or all(
        not optuna.load_study(study_name=n, storage=f"sqlite:///{tmp_path / 'study.db'}").trials
        for n in optuna.get_all_study_names(f"sqlite:///{tmp_path / 'study.db'}")
    )


def test_stored_oneshot_records_are_read_with_bounds(tmp_path: Path) -> None:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}")
    study.set_user_attr("oneshot:1", {"ok": 1})
    study.set_user_attr("oneshot:99999999999", {"huge": 1})
    study.set_user_attr("oneshot:-1", {"neg": 1})
    study.set_user_attr("oneshot:2", "not a record")
    study.set_user_attr("oneshot:x", {"x": 1})
    assert oneshot_runs(study) == [(1, {"ok": 1})]
