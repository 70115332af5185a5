"""Searches evaluated in NAS-Bench-201's tables: every sampler, reruns, export, the CLI."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from nas_skip.evaluators._nb201 import Table
from nas_skip.searching import SAMPLERS, SearchConfig, SearchError, search
from nas_skip.searching._export import export_trial
from nas_skip.spaces import _nb201 as nb201

optuna.logging.set_verbosity(optuna.logging.WARNING)


def tabular(tmp_path: Path, **kw: object) -> SearchConfig:
    base: dict[str, object] = {
        "space": "nb201",
        "evaluator": "nb201-cifar100",
        "storage": f"sqlite:///{tmp_path / 'study.db'}",
        "artifacts": str(tmp_path / "artifacts"),
        "seed": 0,
        "trials": 12,
    }
    return SearchConfig(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_searches_the_table_end_to_end(tmp_path: Path, sampler: str) -> None:
    result = search(tabular(tmp_path, sampler=sampler, population=4, tournament=2),
                    progress=False)  # fmt: skip
    table = Table("cifar100")
    done = result.study.get_trials(states=(TrialState.COMPLETE,))
    assert result.finished == 12 and len(done) == 12 and result.failed == 0
    for t in done:
        cell = nb201.parse_arch(t.user_attrs["nb201_arch"])
        if "duplicate_of" not in t.user_attrs:
            assert t.values[0] in table.entry(cell).val_accuracy
    if sampler == "local-search":  # never a genotype the study already holds
        assert result.duplicates == 0


def test_a_rerun_with_another_evaluator_is_refused(tmp_path: Path) -> None:
    first = search(tabular(tmp_path, trials=3), progress=False)
    with pytest.raises(SearchError, match=r"made with evaluator='nb201-cifar100', not 'train'"):
        search(tabular(tmp_path, trials=4, evaluator="train", dataset="cifar100",
                       study=first.study_name), progress=False)  # fmt: skip
    assert len(first.study.get_trials()) == 3  # nothing stored was touched


def test_a_tabular_trial_exports_its_code_without_weights(tmp_path: Path) -> None:
    result = search(tabular(tmp_path, trials=3), progress=False)
    done = export_trial(result.storage_url, result.study_name, tmp_path / "out")
    assert not done.weights and not (tmp_path / "out" / "weights.pt").exists()
    assert {p.name for p in done.files} == {"model.py", "genotype.json", "metrics.json"}
    assert "class Net" in (tmp_path / "out" / "model.py").read_text()


def test_the_report_of_a_tabular_study(tmp_path: Path) -> None:
    import pandas as pd

    from nas_skip.report import write_report

    result = search(tabular(tmp_path, trials=6), progress=False)
    write_report(result.storage_url, result.study_name, tmp_path / "report")
    rows = pd.read_csv(tmp_path / "report" / "trials.csv")
    assert len(rows) == 6 and rows["attr:nb201_arch"].str.startswith("|").all()
    assert (tmp_path / "report" / "report.html").stat().st_size > 10_000
