"""The study report: trial table (CSV, Parquet) and the self-contained page, on real
searches of a tiny space (trials of a fraction of a second) in a real SQLite storage."""

from __future__ import annotations

import base64
import io
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import optuna
import pandas as pd
import pytest
from plotly.offline import get_plotlyjs

from nas_skip import Genotype
from nas_skip.cli import (
    _report,  # noqa: F401  (registers `report` however cli/__init__ reads)
    main,
)
from nas_skip.genotype import topology
from nas_skip.report import ReportFiles, write_report
from nas_skip.report._page import drawing
from nas_skip.report._table import _parquet_safe
from nas_skip.searching import SearchConfig, SearchError, search
from nas_skip.searching._artifacts import ArtifactFolders

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = """
name: tiny
description: a tiny MLP space for report tests
domain: vector
dataset: digits
family: chain
skeleton:
  depth: {low: 1, high: 3}
  width: [8, 16]
  ops: [linear_relu]
  hop_window: 1
  kinds: [none, add, concat, gated]
train:
  lr: 0.05
  batch_size: 256
"""
PLOTS = ("plot-best-so-far", "plot-accuracy-params", "plot-skip-hops", "plot-importances")
REMOTE = re.compile(
    r"<(?:script|link|img|iframe|source)\b[^>]*\b(?:src|href)=[\"']?(?:https?:)?//"
)


@dataclass(frozen=True)
class Made:
    storage: str
    study: str
    files: ReportFiles
    html: str
    artifacts: Path


def _run(folder: Path, study: str, objectives: tuple[str, ...], trials: int) -> Made:
    space = folder / "tiny.yaml"
    space.write_text(SPACE)
    storage = f"sqlite:///{folder / 'runs.db'}"
    config = SearchConfig(
        space=str(space),
        trials=trials,
        epochs=1,
        storage=storage,
        artifacts=str(folder / "artifacts"),
        study=study,
        objectives=objectives,
        seed=0,
    )
    search(config, progress=False)
    files = write_report(storage, study, folder / "report", folder / "artifacts")
    html = files.html.read_text(encoding="utf-8")
    return Made(storage, study, files, html, folder / "artifacts")


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> Made:
    return _run(tmp_path_factory.mktemp("single"), "single", ("accuracy",), 6)


@pytest.fixture(scope="module")
def multi(tmp_path_factory: pytest.TempPathFactory) -> Made:
    return _run(tmp_path_factory.mktemp("multi"), "multi", ("accuracy", "params"), 5)


def _page_only(html: str) -> str:
    """The page without the inlined plotly.js, whose source names URLs it never fetches
    here (map tiles)."""
    return html.replace(get_plotlyjs(), "")


def test_table_has_a_row_per_trial_with_topology(single: Made) -> None:
    study = optuna.load_study(study_name=single.study, storage=single.storage)
    for frame in (pd.read_csv(single.files.csv), pd.read_parquet(single.files.parquet)):
        assert len(frame) == len(study.trials) == single.files.trials
        assert list(frame["number"]) == [t.number for t in study.trials]
        for column in (
            "state",
            "value:accuracy",
            "param:depth",
            "attr:hash",
            "depth",
            "nodes",
            "skips_add",
            "skips_concat",
            "skips_gated",
            "longest_skip",
            "params",
            "flops",
        ):
            assert column in frame.columns, column
        assert "attr:genotype" not in frame.columns
    frame = pd.read_parquet(single.files.parquet)
    first = study.trials[0]
    graph = topology(optuna_genotype(first))
    assert frame.loc[0, "nodes"] == graph["nodes"]
    assert frame.loc[0, "params"] == first.user_attrs["params"]
    assert frame.loc[0, "flops"] == first.user_attrs["flops"]
    # depth and skips in the space's layers: the depth each trial chose, hops within the
    # hop window (1), not levels of the graph, whose merge nodes count too
    for column in ("attr:depth", "attr:skips", "attr:longest_skip"):
        assert column not in frame.columns  # once, as the derived columns
    assert list(frame["depth"]) == [t.params["depth"] for t in study.trials]
    assert frame["longest_skip"].max() == 1
    skips = frame[[c for c in frame.columns if c.startswith("skips_")]].sum(axis=1)
    assert list(skips) == [sum(map(len, t.user_attrs["skips"].values())) for t in study.trials]


def optuna_genotype(trial: optuna.trial.FrozenTrial) -> Genotype:
    return Genotype.from_json(trial.user_attrs["genotype"])


def test_parquet_round_trips(single: Made) -> None:
    frame = pd.read_parquet(single.files.parquet)
    again = single.files.parquet.with_name("again.parquet")
    frame.to_parquet(again, index=False)
    pd.testing.assert_frame_equal(pd.read_parquet(again), frame)


def test_mixed_cells_become_text_for_arrow() -> None:
    frame = pd.DataFrame({"a": [1, "x", None], "b": [[1, 2], {"k": 1}, None]})
    frame = _parquet_safe(frame)
    assert list(frame["a"][:2]) == ["1", "x"] and pd.isna(frame["a"][2])  # missing stays missing
    assert list(frame["b"][:2]) == ["[1, 2]", '{"k": 1}'] and pd.isna(frame["b"][2])
    frame.to_parquet(io.BytesIO())


def test_page_is_self_contained(single: Made) -> None:
    html = single.html
    assert html.count(get_plotlyjs()) == 1  # once, not once per figure
    page = _page_only(html)
    assert not REMOTE.search(page)
    assert "<link" not in page and "@import" not in page and "url(http" not in page
    assert "window.__report_ready = true" in page


def test_page_has_each_plot_and_captions(single: Made) -> None:
    page = _page_only(single.html)
    for pid in PLOTS:  # a figure, or the sentence that says why there is none (fANOVA)
        assert f'id="{pid}"' in page or f'id="{pid}-note"' in page, pid
    assert 'id="plot-pareto"' not in page  # one objective: no front
    assert page.count('class="caption"') == len(PLOTS) + 1  # + the architectures
    assert f">{single.study}<" in page
    assert re.search(r'data-state="COMPLETE">complete \d+<', page)


def test_page_draws_the_top_five(single: Made) -> None:
    page = _page_only(single.html)
    cards = re.findall(r'<figure class="arch" id="arch-trial-\d+">(.*?)</figure>', page, re.S)
    study = optuna.load_study(study_name=single.study, storage=single.storage)
    originals = [
        t
        for t in study.trials
        if t.state.name == "COMPLETE" and "duplicate_of" not in t.user_attrs
    ]
    assert len(cards) == min(5, len(originals))
    for card in cards:  # each drawing an SVG image, never inlined
        assert "<svg" not in card
        (data,) = re.findall(r'<img src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', card)
        assert b"<svg" in base64.b64decode(data)
    ids = Counter(re.findall(r'\bid="([^"]+)"', page))
    assert [i for i, n in ids.items() if n > 1] == []


def test_multi_objective_gets_a_pareto_plot(multi: Made) -> None:
    page = _page_only(multi.html)
    assert 'id="plot-pareto"' in page
    frame = pd.read_parquet(multi.files.parquet)
    assert {"value:accuracy", "value:params"} <= set(frame.columns)


def test_missing_study_is_a_one_line_error(single: Made, tmp_path: Path) -> None:
    with pytest.raises(SearchError, match=r"--study nope: no such study") as info:
        write_report(single.storage, "nope", tmp_path)
    assert "\n" not in str(info.value)


def test_a_young_study_gets_sentences_not_a_crash(single: Made, tmp_path: Path) -> None:
    # two complete trials with one shared, fixed parameter: fANOVA has nothing to fit
    source = optuna.load_study(study_name=single.study, storage=single.storage)
    done = [t for t in source.trials if t.state.name == "COMPLETE"][:2]
    storage = f"sqlite:///{tmp_path / 'young.db'}"
    young = optuna.create_study(study_name="young", storage=storage, direction="maximize")
    for t in done:
        young.add_trial(
            optuna.trial.create_trial(
                params={"width": 8},
                distributions={"width": optuna.distributions.CategoricalDistribution([8, 16])},
                values=t.values,
                user_attrs={"genotype": t.user_attrs["genotype"]},
            )
        )
    files = write_report(storage, "young", tmp_path / "out")
    page = _page_only(files.html.read_text(encoding="utf-8"))
    assert 'id="plot-importances-note"' in page and "Too few complete trials" in page
    assert page.count('src="data:image/svg+xml;base64,') == 2  # drawn from the genotypes


def test_drawing_falls_back_to_the_genotype(single: Made, tmp_path: Path) -> None:
    study = optuna.load_study(study_name=single.study, storage=single.storage)
    trial = next(t for t in study.trials if "genotype" in t.user_attrs)
    stored = drawing(study, trial, ArtifactFolders(single.artifacts))
    assert stored == (single.artifacts / trial.user_attrs["topology_artifact"]).read_bytes()
    assert drawing(study, trial, ArtifactFolders(tmp_path / "empty")) == stored  # same bytes


def test_cli_prints_the_three_paths(
    single: Made, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(
            [
                "report",
                "--study",
                single.study,
                "--storage",
                single.storage,
                "--out",
                str(tmp_path),
            ]
        )
    assert info.value.code == 0
    names = [Path(line).name for line in capsys.readouterr().out.split()]
    assert names == ["trials.csv", "trials.parquet", "report.html"]


def test_cli_missing_study_is_one_error_line(
    single: Made, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["report", "--study", "nope", "--storage", single.storage, "--out", str(tmp_path)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --study nope: no such study") and err.count("\n") == 1


def _copy_study(source: Made, storage: str, name: str, n: int, drop: tuple[str, ...] = (),
                **user_attrs: object) -> optuna.Study:  # fmt: skip
    """A study of ``n`` complete trials cycling through ``source``'s, with spread values and
    without the user attributes ``drop`` (fast: nothing trains)."""
    old = optuna.load_study(study_name=source.study, storage=source.storage)
    done = [t for t in old.trials if t.state.name == "COMPLETE"]
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    for key, value in {**old.user_attrs, **user_attrs}.items():
        study.set_user_attr(key, value)
    for i in range(n):
        t = done[i % len(done)]
        attrs = {k: v for k, v in t.user_attrs.items() if k not in ("duplicate_of", *drop)}
        study.add_trial(
            optuna.trial.create_trial(params=t.params, distributions=t.distributions,
                                      values=[t.values[0] + 0.01 * (i % 7)], user_attrs=attrs)
        )  # fmt: skip
    return study


def test_too_few_trials_get_sentences_for_the_top_and_fanova(single: Made) -> None:
    page = _page_only(single.html)  # 6 trials
    notes = dict(re.findall(r'id="(plot-[a-z-]+)-note">([^<]*)<', page))
    assert "needs at least 20" in notes["plot-skip-hops"] and '"name":"top' not in page
    assert 'id="plot-skip-hops"' in page  # all trials are still shown
    assert "fANOVA needs at least 20" in notes["plot-importances"]


def test_enough_trials_compare_the_top_and_fanova_stays_quiet(
    single: Made, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    storage = f"sqlite:///{tmp_path / 'many.db'}"
    _copy_study(single, storage, "many", 24)
    capfd.readouterr()
    files = write_report(storage, "many", tmp_path / "out")
    assert capfd.readouterr().err == ""  # fANOVA's warnings stay out of the console
    page = _page_only(files.html.read_text(encoding="utf-8"))
    assert 'id="plot-skip-hops-note"' not in page and 'id="plot-importances-note"' not in page
    assert '"name":"top 3"' in page  # ceil(10% of 24)


def test_fanova_needs_two_parameters_that_vary(single: Made, tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'one.db'}"
    old = optuna.load_study(study_name=single.study, storage=single.storage)
    t = next(t for t in old.trials if t.state.name == "COMPLETE")
    study = optuna.create_study(study_name="one", storage=storage, direction="maximize")
    width = optuna.distributions.CategoricalDistribution([8, 16])
    for i in range(24):
        study.add_trial(
            optuna.trial.create_trial(params={"width": [8, 16][i % 2]}, values=[0.01 * i],
                                      distributions={"width": width}, user_attrs=t.user_attrs)
        )  # fmt: skip
    page = _page_only(write_report(storage, "one", tmp_path / "o").html.read_text())
    assert "only width varies: fANOVA needs at least two to compare" in page


def test_a_study_from_before_structure_attributes_asks_its_space(
    single: Made, tmp_path: Path
) -> None:
    storage = f"sqlite:///{tmp_path / 'old.db'}"
    study = _copy_study(single, storage, "old", 3, drop=("depth", "skips", "longest_skip"))
    frame = write_report(storage, "old", tmp_path / "o").csv
    assert list(pd.read_csv(frame)["depth"]) == [t.params["depth"] for t in study.trials]


def test_segmentation_reads_miou(single: Made, tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'seg.db'}"
    _copy_study(single, storage, "seg", 3, dataset="shapes_seg")
    files = write_report(storage, "seg", tmp_path / "o")
    assert "value:mIoU" in pd.read_csv(files.csv).columns
    page = _page_only(files.html.read_text(encoding="utf-8"))
    assert "mIoU vs parameters" in page and "Best mIoU so far" in page
    assert "Accuracy vs parameters" not in page and "value:accuracy" not in page
