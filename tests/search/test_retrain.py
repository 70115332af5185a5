"""``retrain``: a real tiny search in SQLite, its best trial trained again under two seeds;
what the study stores, the exported best seed, the note, the report, and every refusal."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

import optuna
import pandas as pd
import pytest
import torch
from helpers import import_source, write_space
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial
from optuna_dashboard._note import get_note_from_system_attrs

from nas_skip.data import load_dataset
from nas_skip.report import write_report
from nas_skip.searching import SearchConfig, SearchError, search, top_trials
from nas_skip.searching._retrain import Retrained, retrain, retrain_key, retrained

optuna.logging.set_verbosity(optuna.logging.WARNING)
torch.set_num_threads(1)


@dataclass(frozen=True)
class Done:
    folder: Path
    storage: str
    study: str
    before: str  # the report page before any retraining
    result: Retrained


@pytest.fixture(scope="module")
def done(tmp_path_factory: pytest.TempPathFactory) -> Done:
    folder = tmp_path_factory.mktemp("retrain")
    write_space(folder)
    storage = f"sqlite:///{folder / 'runs.db'}"
    config = SearchConfig(space=str(folder / "tiny.yaml"), trials=3, epochs=1, seed=0,
                          storage=storage, artifacts=str(folder / "artifacts"),
                          study="s")  # fmt: skip
    search(config, progress=False)
    before = write_report(storage, "s", folder / "before").html.read_text(encoding="utf-8")
    result = retrain(storage, "s", epochs=2, seeds=2, out=folder / "out", progress=False)
    return Done(folder, storage, "s", before, result)


def study_of(done: Done) -> optuna.Study:
    return optuna.load_study(study_name=done.study, storage=done.storage)


def test_the_best_trial_is_retrained_and_stored_on_the_study(done: Done) -> None:
    study = study_of(done)
    best = top_trials(study, 1)[0]
    r = done.result.record
    assert done.result.trial.number == best.number
    assert study.user_attrs[retrain_key(best.number)] == r == retrained(study)[best.number]
    assert r["epochs"] == 2 and r["seeds"] == [0, 1] and r["metric"] == "accuracy"
    assert len(r["val"]) == len(r["test"]) == 2
    assert all(0.0 <= v <= 1.0 for v in r["val"] + r["test"])
    assert r["search_value"] == best.values[0] and r["search_epochs"] == 1
    assert r["hparams"]["lr"] == 0.05 and r["hparams"]["batch_size"] == 256


def test_mean_and_std_are_those_of_the_seeds(done: Done) -> None:
    r = done.result.record
    for split in ("val", "test"):
        assert r[f"{split}_mean"] == pytest.approx(statistics.fmean(r[split]))
        assert r[f"{split}_std"] == pytest.approx(statistics.stdev(r[split]))  # n - 1
    assert r["best_seed"] == max(r["seeds"], key=lambda s: (r["val"][s], -s))


def test_the_best_seed_is_exported_and_reproduces_its_score(done: Done) -> None:
    out = done.folder / "out"
    assert {p.name for p in done.result.files} == {
        "model.py", "weights.pt", "genotype.json", "metrics.json"}  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["retrain"] == done.result.record and metrics["retrained"] is True
    net = import_source((out / "model.py").read_text(), done.folder).Net()
    net.load_state_dict(torch.load(out / "weights.pt", weights_only=True))
    data = load_dataset("digits", "vector")
    with torch.no_grad():
        accuracy = (net.eval()(data.x_val).argmax(1) == data.y_val).double().mean().item()
    r = done.result.record
    assert accuracy == pytest.approx(r["val"][r["best_seed"]], abs=1e-12)


def test_the_dashboard_note_gets_a_retrained_section(done: Done) -> None:
    study = study_of(done)
    trial = study.trials[done.result.trial.number]
    attrs = study._storage.get_study_system_attrs(study._study_id)
    body = get_note_from_system_attrs(attrs, trial._trial_id)["body"]
    assert body.startswith(f"### Trial {trial.number}: `{trial.user_attrs['hash']}`")
    assert "#### Retrained: 2 epochs, 2 seeds" in body
    r = done.result.record
    assert f"| validation | {r['val_mean']:.4f} | {r['val_std']:.4f} |" in body


def test_the_report_shows_the_confirmed_table(done: Done, tmp_path: Path) -> None:
    assert 'id="confirmed-note"' in done.before and "No trial retrained yet" in done.before
    files = write_report(done.storage, done.study, tmp_path)
    page = files.html.read_text(encoding="utf-8")
    r, number = done.result.record, done.result.trial.number
    row = page.split(f'<tr id="confirmed-trial-{number}">')[1].split("</tr>")[0]
    assert f"<td>{number}</td>" in row
    assert f"<td>{r['val_mean']:.4f} ± {r['val_std']:.4f}</td>" in row
    assert f"<td>{r['test_mean']:.4f} ± {r['test_std']:.4f}</td>" in row
    assert row.endswith("<td>2</td><td>2</td>")  # epochs, seeds
    frame = pd.read_csv(files.csv).set_index("number")
    assert frame.loc[number, "retrain_val_mean"] == pytest.approx(r["val_mean"])
    assert frame.loc[number, "retrain_seeds"] == 2
    others = frame.drop(index=number)
    assert others["retrain_val_mean"].isna().all()


def test_retraining_again_replaces_the_result_and_is_reproducible(done: Done) -> None:
    number = done.result.trial.number
    again = retrain(done.storage, done.study, trial=number, epochs=2, seeds=1,
                    out=done.folder / "again", progress=False)  # fmt: skip
    r = again.record
    assert r["seeds"] == [0] and r["val_std"] == 0.0 and r["test_std"] == 0.0
    assert r["val"][0] == done.result.record["val"][0]  # same seed, same run (CPU)
    assert retrained(study_of(done))[number] == r
    study = study_of(done)
    study.set_user_attr(retrain_key(number), done.result.record)  # as the other tests expect


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"seeds": 0}, "--seeds: must be at least 1, got 0"),
        ({"epochs": 0}, "--epochs: must be at least 1, got 0"),
        ({"threads": 0}, "--threads: must be at least 1, got 0"),
        ({"trial": 7}, "--trial 7: the study has trials 0 to 2"),
    ],
)
def test_bad_arguments_are_refused(done: Done, kwargs: dict[str, int], words: str) -> None:
    with pytest.raises(SearchError, match=words):
        retrain(done.storage, done.study, progress=False, **kwargs)  # type: ignore[arg-type]


def test_a_missing_study_or_an_unfinished_trial_is_refused(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'x.db'}"
    study = optuna.create_study(study_name="x", storage=storage, direction="maximize")
    study.add_trial(create_trial(state=TrialState.FAIL))
    with pytest.raises(SearchError, match="--study nope: no such study"):
        retrain(storage, "nope", progress=False)
    with pytest.raises(SearchError, match="--trial 0: it is FAIL, not COMPLETE"):
        retrain(storage, "x", trial=0, progress=False)
    with pytest.raises(SearchError, match="--study x: no complete trial to retrain yet"):
        retrain(storage, "x", progress=False)
    study.add_trial(create_trial(value=0.5, params={"a": 1},
                                 distributions={"a": CategoricalDistribution([1])},
                                 user_attrs={"genotype": "{}"}))  # fmt: skip
    with pytest.raises(SearchError, match="--study x: not a nas-skip search"):
        retrain(storage, "x", progress=False)


def test_a_tabular_trial_without_its_data_is_refused(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'nb.db'}"
    config = SearchConfig(space="nb201", evaluator="nb201-cifar10", trials=2, seed=0,
                          storage=storage, artifacts=str(tmp_path / "a"), study="nb")  # fmt: skip
    search(config, progress=False)
    with pytest.raises(SearchError) as info:
        retrain(storage, "nb", progress=False)
    message = str(info.value)
    assert message.startswith("--study nb: its trials were looked up in a table (nb201-cifar10)")
    assert "needs the cifar10 data" in message and "--data-dir" in message
    assert "\n" not in message
    assert not any(k.startswith("retrain:") for k in optuna.load_study(
        study_name="nb", storage=storage).user_attrs)  # fmt: skip
