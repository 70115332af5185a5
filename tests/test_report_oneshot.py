"""The report's "One-shot runs" section: real one-shot searches of a tiny space, and
hostile records that must give notes, never a crash."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pytest
from helpers import write_space
from optuna.distributions import CategoricalDistribution

from nas_skip.report import write_report
from nas_skip.report._oneshot import MAX_EPOCHS, MAX_SHOWN, skip_strength, winner
from nas_skip.searching import SearchConfig, search
from nas_skip.searching._artifacts import ArtifactFolders
from nas_skip.searching._oneshot import oneshot_runs

optuna.logging.set_verbosity(optuna.logging.WARNING)

#: a one-node genotype: a trial the report reads (one without a genotype is skipped)
GENOTYPE = json.dumps({"schema": 1, "input": {"shape": [3]}, "output": "a",
                       "nodes": [{"id": "a", "op": "linear", "features": 2}],
                       "edges": [{"src": "input", "dst": "a"}]})  # fmt: skip
FIGURES = re.compile(r'<script type="application/json" id="report-figures">(.*?)</script>', re.S)


@dataclass(frozen=True)
class Made:
    storage: str
    study: str
    html: str
    figures: dict[str, Any]
    artifacts: Path


def _page(storage: str, study: str, out: Path, artifacts: Path) -> tuple[str, dict[str, Any]]:
    files = write_report(storage, study, out, artifacts)
    html = files.html.read_text(encoding="utf-8")
    found = FIGURES.search(html)
    assert found is not None
    return html, json.loads(found.group(1))


def _trial(value: float, **attrs: object) -> optuna.trial.FrozenTrial:
    return optuna.trial.create_trial(
        params={"w": 8},
        distributions={"w": CategoricalDistribution([8, 16])},
        value=value,
        user_attrs={"genotype": GENOTYPE, **attrs},
    )


def _row(html: str, k: int, key: str) -> str:
    table = re.search(rf'<table class="oneshot" id="oneshot-table-{k}">(.*?)</table>', html)
    assert table is not None, k
    cell = re.search(rf'<tr data-key="{key}"><th>[^<]*</th><td>([^<]*)</td>', table.group(1))
    assert cell is not None, key
    return cell.group(1)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Made:
    """Two one-shot runs on one study (sigmoid, then softmax), run 1's trial retrained."""
    folder = tmp_path_factory.mktemp("oneshot")
    write_space(folder)
    storage = f"sqlite:///{folder / 'study.db'}"
    base: dict[str, Any] = {
        "space": str(folder / "tiny.yaml"),
        "storage": storage,
        "artifacts": str(folder / "artifacts"),
        "epochs": 2,
        "seed": 0,
        "strategy": "oneshot",
        "fix": {"depth": 2, "width": 8},
    }
    first = search(SearchConfig(**base, relaxation="sigmoid", max_skips=1), progress=False)
    search(SearchConfig(**base, relaxation="softmax"), progress=False)
    study = first.study
    study.set_user_attr("retrain:0", {
        "val_mean": 0.8125, "val_std": 0.0125, "test_mean": 0.8, "test_std": 0.01,
        "search_value": 0.5, "epochs": 3, "seeds": [0, 1, 2],
    })  # fmt: skip
    html, figures = _page(storage, first.study_name, folder / "report", folder / "artifacts")
    return Made(storage, first.study_name, html, figures, folder / "artifacts")


def test_each_run_gets_its_weights_and_skips_figures(made: Made) -> None:
    assert 'id="section-oneshot"' in made.html and "One-shot runs" in made.html
    study = optuna.load_study(study_name=made.study, storage=made.storage)
    runs = dict(oneshot_runs(study))
    assert sorted(runs) == [1, 2]
    for k, record in runs.items():
        raw = ArtifactFolders(made.artifacts).read(record["weights_artifact"], 10**7)
        doc = json.loads(raw or b"{}")
        edges = [c for c in doc["choices"] if c["role"] == "edge"]
        weights = made.figures[f"plot-oneshot-{k}-weights"]
        assert len(weights["data"]) == len(edges) >= 1  # one line per candidate edge
        for line in weights["data"]:
            assert line["x"] == [1, 2] and len(line["y"]) == 2  # one point per epoch
            assert all(0.0 <= y <= 1.0 for y in line["y"])
            assert "wins" in line["text"][-1]
        dashed = weights["layout"].get("shapes", [])
        assert len(dashed) == (1 if k == 1 else 0)  # none's 0.5, under sigmoid only
        skips = made.figures[f"plot-oneshot-{k}-skips"]
        assert [t["name"] for t in skips["data"]] == ["skips kept", "supernet validation accuracy"]
        assert list(skips["data"][0]["y"]) == record["skips"]
        assert list(skips["data"][1]["y"]) == record["val_accuracy"]
        assert skips["data"][1]["yaxis"] == "y2"
        assert f'id="plot-oneshot-{k}-weights"' in made.html
        assert f'id="plot-oneshot-{k}-skips"' in made.html
        assert f"plot-oneshot-{k}-ops" not in made.figures  # a chain space relaxes no op
    assert "collapse signature of DARTS" in made.html
    assert made.html.index('id="oneshot-run-2"') < made.html.index('id="oneshot-run-1"')


def test_the_table_sets_the_supernet_against_its_derived_trial(made: Made) -> None:
    study = optuna.load_study(study_name=made.study, storage=made.storage)
    by_run = {t.user_attrs["oneshot"]: t for t in study.get_trials()}
    runs = dict(oneshot_runs(study))
    for k, relaxation in ((1, "sigmoid"), (2, "softmax")):
        trial = by_run[k]
        assert _row(made.html, k, "relaxation") == relaxation
        assert _row(made.html, k, "epochs") == "2"
        assert _row(made.html, k, "trial") == str(trial.number)
        assert _row(made.html, k, "state") == trial.state.name
        assert _row(made.html, k, "skips_kept") == str(runs[k]["skips_kept"])
        assert _row(made.html, k, "supernet_val") == f"{runs[k]['val_accuracy'][-1]:.4f}"
        assert _row(made.html, k, "seconds").endswith(" s")
        if trial.values:
            assert _row(made.html, k, "search_value") == f"{trial.values[0]:.4f}"
    assert by_run[1].number == 0
    assert _row(made.html, 1, "retrained") == "0.8125 ± 0.0125"
    assert 'id="oneshot-table-2"' in made.html and "retrained" not in made.html.split(
        'id="oneshot-table-2"')[1].split("</table>")[0]  # fmt: skip
    assert "oneshot-1-notes" not in made.html and "oneshot-2-notes" not in made.html


def test_a_missing_artifact_is_a_note_in_place_of_the_weights(made: Made, tmp_path: Path) -> None:
    html, figures = _page(made.storage, made.study, tmp_path / "report", tmp_path / "nowhere")
    for k in (1, 2):
        assert f"plot-oneshot-{k}-weights" not in figures
        assert f'id="plot-oneshot-{k}-weights-note"' in html
        assert f"plot-oneshot-{k}-skips" in figures  # from the study attribute
        assert _row(html, k, "relaxation") in ("sigmoid", "softmax")
    assert "pass --artifacts" in html


def test_a_study_without_oneshot_runs_has_no_section(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(study_name="plain", storage=storage, direction="maximize")
    study.add_trial(_trial(0.5))
    html, figures = _page(storage, "plain", tmp_path / "report", tmp_path / "artifacts")
    assert "section-oneshot" not in html
    assert not [pid for pid in figures if pid.startswith("plot-oneshot")]


def test_hostile_records_give_notes_not_a_crash(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    folder = tmp_path / "artifacts"
    folder.mkdir()
    study = optuna.create_study(study_name="hostile", storage=storage, direction="maximize")
    study.add_trial(_trial(0.5, oneshot=2))
    for claim in ("1", True, [1], 10**30):  # no run's trial
        study.add_trial(_trial(0.1, oneshot=claim))
    # an artifact that is not JSON, one with a hostile shape
    garbage, shaped = str(uuid.uuid4()), str(uuid.uuid4())
    (folder / garbage).write_bytes(b"\x00\xff[[[[" * 100)
    script = "<script>alert(1)</script>" * 10
    (folder / shaped).write_text(json.dumps({
        "choices": [
            {"name": "edge:a", "values": ["none", "add"], "role": "edge"},
            {"name": script, "values": ["none", "add", "concat"], "role": "edge"},
            {"name": "edge:a", "values": ["none"], "role": "edge"},  # a duplicate
            {"name": "bad", "values": "none", "role": "edge"},
            {"name": "op:l1", "values": ["relu", script], "role": "op"},
            {"name": "x", "values": [], "role": "weird"},
            "not a choice",
        ],
        "epochs": [
            {"epoch": 1, "weights": {"edge:a": [0.2, 0.8], script: [0.1, 0.6, 0.3],
                                     "op:l1": [0.3, 0.7]}},
            {"epoch": 1, "weights": {}},  # not after the last: left out
            {"epoch": "2", "weights": {}},
            {"epoch": 3, "weights": {"edge:a": [float("nan"), 0.5], script: [1, 2],
                                     "op:l1": [0.1, 0.9]}},
            None,
        ],
    }))  # fmt: skip
    records: dict[int, object] = {
        1: {
            "settings": "not a dict",
            "val_accuracy": "0.9",
            "skips": [float("nan"), {"a": 1}, 3],
            "seconds": float("inf"),
            "skips_kept": -1,
            "weights_artifact": "../../etc/passwd",
        },
        2: {
            "settings": {"relaxation": "gumbel", "epochs": True},
            "val_accuracy": [0.5] * 3,
            "skips": list(range(10**6)),
            "weights_artifact": garbage,
            "choices": "many",
        },
        3: {
            "settings": {"relaxation": "sigmoid", "epochs": 3},
            "val_accuracy": [0.1, None, 0.3],
            "skips": [1, 2, 3],
            "weights_artifact": shaped,
            "skips_kept": 2,
            "seconds": 300,
        },
        4: {},
        5: {"weights_artifact": str(uuid.uuid4()), "val_accuracy": [1e308, -1e308]},
        6: {"settings": {"relaxation": "softmax"}, "weights_artifact": {"a": 1}},
    }
    for k, record in records.items():
        study.set_user_attr(f"oneshot:{k}", record)
    study.set_user_attr("oneshot:7", "not a record")

    html, figures = _page(storage, "hostile", tmp_path / "report", folder)
    assert 'id="section-oneshot"' in html
    assert 'id="oneshot-more-note"' in html  # 6 records: the most recent 5 shown
    assert MAX_SHOWN == 5 and "oneshot-run-1" not in html
    assert all(f'id="oneshot-run-{k}"' in html for k in (2, 3, 4, 5, 6))
    # run 2: a list of a million skips is cut; an unreadable artifact is a note
    skips = figures["plot-oneshot-2-skips"]["data"][0]["y"]
    assert len(skips) == MAX_EPOCHS
    assert "1,000,000 entries" in html and "the weights artifact is not JSON" in html
    assert 'id="plot-oneshot-2-weights-note"' in html
    assert _row(html, 2, "relaxation") == "unknown" and _row(html, 2, "trial") == "0"
    assert _row(html, 2, "epochs") == "3"  # a bool is no epoch count: the list's length
    # run 3: what is well formed is drawn, the rest noted; names are escaped
    weights = figures["plot-oneshot-3-weights"]["data"]
    assert len(weights) == 2 and all(line["x"] == [1, 3] for line in weights)
    assert weights[0]["y"] == [0.8, None]  # NaN: a gap
    assert weights[1]["y"] == [0.6, None]  # two weights for three values: a gap
    ops = figures["plot-oneshot-3-ops"]["data"][0]
    assert ops["z"] == [[0.1, 0.9]]
    assert "<script>alert" not in html and "&lt;script&gt;alert" in html
    assert "malformed choices left out" in html and "malformed epochs left out" in html
    assert _row(html, 3, "seconds") == "300 s (5.0 min)"
    assert _row(html, 3, "supernet_val") == "0.3000" and _row(html, 3, "trial") == "not found"
    # runs 4-6: nothing readable, an id that is in no folder, an artifact that is no id
    assert 'id="plot-oneshot-4-weights-note"' in html and "records no weights artifact" in html
    assert "plot-oneshot-4-skips" not in figures and 'id="plot-oneshot-4-skips-note"' in html
    assert "is not in" in html and "is not an artifact id" in html
    assert figures["plot-oneshot-5-skips"]["data"][1]["y"] == [1e308, -1e308]
    for k in (2, 3, 4, 5, 6):
        assert f'id="oneshot-{k}-notes"' in html or k == 6
    assert "not a list (str)" not in html  # run 1 is not among the shown


def test_a_run_of_malformed_types_is_noted(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(study_name="bad", storage=storage, direction="maximize")
    study.set_user_attr("oneshot:1", {
        "settings": "x", "val_accuracy": "0.9", "skips": [float("nan"), {"a": 1}, 3],
        "seconds": float("nan"), "skips_kept": "2", "weights_artifact": "../../etc/passwd",
    })  # fmt: skip
    html, figures = _page(storage, "bad", tmp_path / "report", tmp_path / "artifacts")
    assert 'id="oneshot-1-notes"' in html
    assert "val_accuracy: not a list (str)" in html
    assert "skips: 2 of 3 entries are not valid" in html
    assert "&#x27;../../etc/passwd&#x27; is not an artifact id" in html
    assert figures["plot-oneshot-1-skips"]["data"][0]["y"] == [None, None, 3]
    assert _row(html, 1, "seconds") == "n/a" and _row(html, 1, "skips_kept") == "n/a"
    assert _row(html, 1, "relaxation") == "unknown"


def test_skip_strength_and_winner() -> None:
    values = ("none", "add", "concat")
    assert skip_strength(values, [0.5, 0.3, 0.2], "softmax") == pytest.approx(0.5)
    assert skip_strength(("add", "concat"), [0.3, 0.7], "softmax") == 0.7
    assert skip_strength(values, [0.9, 0.3, 0.4], "sigmoid") == 0.4  # none is no skip
    assert winner(values, [0.9, 0.3, 0.4], "sigmoid") == "none"  # 0.5 beats both gates
    assert winner(values, [0.1, 0.3, 0.6], "softmax") == "concat"
