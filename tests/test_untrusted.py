"""A study is untrusted input (issue 11, item 5): ``export``, ``report``, ``retrain`` and
the dashboard read artifacts only in the user's artifact folders and only by artifact id,
show SVG drawings as inert images, refuse (export, retrain) or skip with a warning
(report) a malformed trial, and create no storage for a URL that names none.

The studies are crafted directly in real SQLite storages: nothing trains.
"""

from __future__ import annotations

import base64
import io
import json
import re
import sqlite3
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
from helpers import chain, nas_skip_cli
from optuna.artifacts import FileSystemArtifactStore, upload_artifact
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial
from plotly.offline import get_plotlyjs

from nas_skip import Genotype, build
from nas_skip.cli import main
from nas_skip.dashboard import serving, unserved
from nas_skip.errors import SkippedTrialWarning
from nas_skip.report import write_report
from nas_skip.searching import SearchError, retrain
from nas_skip.searching._artifacts import ArtifactFolders
from nas_skip.searching._export import export_trial

optuna.logging.set_verbosity(optuna.logging.WARNING)

DOC = chain([3], {"id": "a", "op": "linear_relu", "features": 4},
            {"id": "head", "op": "linear_head", "classes": 2})  # fmt: skip
GENOTYPE = json.dumps(DOC)
HOSTILE_SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10" '
    b"onload=\"alert('pwned-onload')\"><script>alert('pwned-script')</script>"
    b'<foreignObject><iframe xmlns="http://www.w3.org/1999/xhtml" src="javascript:1"/>'
    b'</foreignObject><a href="javascript:alert(1)"><text>planted</text></a></svg>'
)


def make_study(tmp_path: Path, trials: list[dict[str, Any]], name: str = "hostile",
               **study_attrs: Any) -> str:  # fmt: skip
    """A study of complete trials with ``trials``' user attributes (trial i: value i, so
    the last is the best) and ``study_attrs``; returns the storage URL."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name=name, storage=url, direction="maximize")
    for key, value in study_attrs.items():
        study.set_user_attr(key, value)
    width = CategoricalDistribution([8, 16])
    for i, attrs in enumerate(trials):
        study.add_trial(create_trial(params={"w": 8}, distributions={"w": width},
                                     value=float(i), user_attrs=attrs))  # fmt: skip
    return url


def weights_file(folder: Path, doc: dict[str, Any] = DOC) -> str:
    """Real weights of ``doc``'s network, saved as an artifact in ``folder``; the id."""
    folder.mkdir(parents=True, exist_ok=True)
    artifact = str(uuid.uuid4())
    torch.save(build(Genotype.from_json(doc)).state_dict(), folder / artifact)
    return artifact


def images(page: str) -> list[bytes]:
    """The SVG documents the page shows as images."""
    found = re.findall(r'src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', page)
    return [base64.b64decode(data) for data in found]


# --- export: artifacts ------------------------------------------------------------------
def test_export_reads_weights_only_in_the_users_folder(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"  # the study says its artifacts are here
    artifact = weights_file(elsewhere)
    url = make_study(tmp_path, [{"genotype": GENOTYPE, "weights_artifact": artifact}],
                     artifacts=str(elsewhere))  # fmt: skip
    out = tmp_path / "out"
    with pytest.raises(SearchError) as info:
        export_trial(url, "hostile", out, artifacts=tmp_path / "mine")
    message = str(info.value)
    assert message.startswith(f"--trial 0: its kept weights (artifact {artifact}) are not in")
    assert str(elsewhere) in message and "--artifacts" in message and "\n" not in message
    assert not out.exists()
    done = export_trial(url, "hostile", out, artifacts=elsewhere)  # the user names it
    assert done.weights and (out / "weights.pt").is_file()


@pytest.mark.parametrize(
    "bad",
    [
        "passwd",
        "../../etc/passwd",
        "/etc/passwd",
        "../mine/x",
        "ABCDEF01-0000-4000-8000-000000000000",
        "5a4d47b7-4faa-4248-a902-b52778596a1e/",  # a UUID with a slash: a folder
        "../mine/b80e1824-fe95-4bbd-8cf8-324adfaafa0b",  # a UUID in another folder
    ],  # fmt: skip
)
def test_hostile_artifact_ids_are_never_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    monkeypatch.chdir(tmp_path)  # runs/artifacts: the folder read
    mine = tmp_path / "runs" / "artifacts"
    mine.mkdir(parents=True)
    (mine / "passwd").write_text("planted-secret")
    (mine / "x").write_text("planted-secret")
    attrs = {"genotype": GENOTYPE, "weights_artifact": bad, "topology_artifact": bad}
    url = make_study(tmp_path, [attrs], artifacts="/etc")
    with pytest.raises(SearchError, match=r"^--trial 0: its weights were not kept"):
        export_trial(url, "hostile", tmp_path / "out")
    files = write_report(url, "hostile", tmp_path / "report")  # drawn from the genotype
    page = files.html.read_text(encoding="utf-8")
    assert "planted-secret" not in page
    assert [b"planted-secret" in svg for svg in images(page)] == [False]


def test_weights_that_do_not_load_or_fit_are_one_line_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "runs" / "artifacts"
    garbage = str(uuid.uuid4())
    mine.mkdir(parents=True)
    (mine / garbage).write_bytes(b"not a torch file")
    other = weights_file(mine, chain([5], {"id": "b", "op": "linear", "features": 7}))
    url = make_study(tmp_path, [{"genotype": GENOTYPE, "weights_artifact": garbage},
                                {"genotype": GENOTYPE, "weights_artifact": other}],
                     artifacts=str(mine))  # fmt: skip
    with pytest.raises(SearchError, match=rf"--trial 0: its weights \(artifact {garbage}\) do "
                       "not load"):  # fmt: skip
        export_trial(url, "hostile", tmp_path / "out", 0)
    with pytest.raises(SearchError, match=r"--trial 1: its weights .* do not fit its genotype"):
        export_trial(url, "hostile", tmp_path / "out", 1)
    assert not (tmp_path / "out").exists()


# --- export and retrain: malformed trials --------------------------------------------------
SCHEMA_2 = json.dumps({**DOC, "schema": 2})


@pytest.mark.parametrize(
    ("trials", "number", "match"),
    [
        ([{}], 0, r"--trial 0: it has no genotype \(not a nas-skip trial\)"),
        ([{"genotype": SCHEMA_2}], 0, r"--trial 0: its genotype attribute is not a genotype "
         r"this nas-skip reads \(schema: must be 1, got 2"),  # fmt: skip
        ([{"genotype": "{"}], 0, r"--trial 0: its genotype attribute .*not valid JSON"),
        ([{"genotype": GENOTYPE, "duplicate_of": "x"}], 0,
         r"--trial 0: its duplicate_of attribute 'x' names no other trial \(trials: 0 to 0\)"),
        ([{"genotype": GENOTYPE}, {"genotype": GENOTYPE, "duplicate_of": 99}], 1,
         r"--trial 1: its duplicate_of attribute 99 names no other trial"),
        ([{"genotype": GENOTYPE}, {"genotype": GENOTYPE, "duplicate_of": -1}], 1,
         r"--trial 1: its duplicate_of attribute -1 names no other trial"),
        ([{"genotype": GENOTYPE}, {"genotype": GENOTYPE, "duplicate_of": True}], 1,
         r"--trial 1: its duplicate_of attribute True names no other trial"),
        ([{"genotype": GENOTYPE, "duplicate_of": 0}], 0, r"--trial 0: its duplicate_of"),
        ([{"genotype": GENOTYPE, "duplicate_of": 1}, {"genotype": GENOTYPE, "duplicate_of": 0}],
         1, r"--trial 1: its duplicate_of attribute names trial 0, itself a duplicate"),
    ],
)  # fmt: skip
def test_export_refuses_a_malformed_trial_naming_it(
    tmp_path: Path, trials: list[dict[str, Any]], number: int, match: str
) -> None:
    url = make_study(tmp_path, trials)
    out = tmp_path / "out"
    with pytest.raises(SearchError, match=match) as info:
        export_trial(url, "hostile", out, number)
    assert "\n" not in str(info.value) and "cannot be exported" in str(info.value)
    assert not out.exists()


def test_retrain_refuses_a_malformed_trial_before_training(tmp_path: Path) -> None:
    url = make_study(tmp_path, [{"genotype": SCHEMA_2}], space="deep_mlp", dataset="mnist1d")
    with pytest.raises(SearchError, match=r"--trial 0: its genotype attribute .*retrained$"):
        retrain(url, "hostile", 0, epochs=1, seeds=1, progress=False, out=tmp_path / "o")
    assert not (tmp_path / "o").exists()


# --- report ------------------------------------------------------------------------------
def test_report_shows_an_artifact_svg_as_an_inert_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # runs/artifacts: the default folder, the search's
    folder = tmp_path / "runs" / "artifacts"
    folder.mkdir(parents=True)
    artifact = str(uuid.uuid4())
    (folder / artifact).write_bytes(HOSTILE_SVG)
    url = make_study(tmp_path, [{"genotype": GENOTYPE, "topology_artifact": artifact}],
                     artifacts=str(folder))  # fmt: skip
    page = write_report(url, "hostile", tmp_path / "report").html.read_text(encoding="utf-8")
    page = page.replace(get_plotlyjs(), "")  # plotly.js's own source names onload
    assert "pwned" not in page and "onload" not in page and "javascript:" not in page
    assert "planted" not in page and "<svg" not in page
    assert images(page) == [HOSTILE_SVG]  # shown, as an image: no script runs in one


def test_report_never_reads_the_folder_a_study_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # runs/artifacts (absent): the folder read
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    artifact = str(uuid.uuid4())
    (elsewhere / artifact).write_bytes(HOSTILE_SVG)
    (elsewhere / "passwd").write_text("planted-secret")
    trials = [{"genotype": GENOTYPE, "topology_artifact": artifact},
              {"genotype": GENOTYPE, "topology_artifact": "passwd"}]  # fmt: skip
    url = make_study(tmp_path, trials, artifacts=str(elsewhere))
    page = write_report(url, "hostile", tmp_path / "report").html.read_text(encoding="utf-8")
    drawn = images(page)
    assert len(drawn) == 2 and all(b"planted" not in d for d in drawn)
    assert all(b"<svg" in d for d in drawn)  # drawn again from the genotypes


def malformed_trials() -> list[dict[str, Any]]:
    return [
        {"genotype": GENOTYPE},  # 0: fine
        {},  # 1: complete without a genotype
        {"genotype": SCHEMA_2},  # 2: another schema
        {"genotype": GENOTYPE, "duplicate_of": "x"},  # 3
        {"genotype": GENOTYPE, "duplicate_of": 99},  # 4
        {"genotype": GENOTYPE, "duplicate_of": 5},  # 5: itself
        {"genotype": GENOTYPE, "duplicate_of": 3},  # 6: a duplicate's duplicate
        {"genotype": GENOTYPE, "duplicate_of": 0},  # 7: a fine duplicate
        {"genotype": GENOTYPE},  # 8: fine, the best
    ]


def test_report_skips_malformed_trials_with_one_warning_each(tmp_path: Path) -> None:
    url = make_study(tmp_path, malformed_trials())
    study = optuna.load_study(study_name="hostile", storage=url)
    study.add_trial(create_trial(state=TrialState.PRUNED))  # 9: no sample: not malformed
    with pytest.warns(SkippedTrialWarning) as seen:
        files = write_report(url, "hostile", tmp_path / "report", tmp_path)
    messages = [str(w.message) for w in seen if w.category is SkippedTrialWarning]
    assert files.skipped == (1, 2, 3, 4, 5, 6)
    assert [int(m.split()[2]) for m in messages] == [1, 2, 3, 4, 5, 6]
    assert all(m.startswith("report: trial ") and "\n" not in m for m in messages)
    assert "it has no genotype" in messages[0] and "schema: must be 1" in messages[1]
    assert "duplicate_of attribute 'x'" in messages[2] and "itself a duplicate" in messages[5]
    rows = (tmp_path / "report" / "trials.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == [0, 7, 8, 9] and files.trials == 4
    page = files.html.read_text(encoding="utf-8")
    assert re.findall(r'id="arch-trial-(\d+)"', page) == ["8", "0"]  # duplicates stand aside


def test_report_warnings_are_bounded(tmp_path: Path) -> None:
    url = make_study(tmp_path, [{"genotype": SCHEMA_2}] * 14 + [{"genotype": GENOTYPE}])
    with pytest.warns(SkippedTrialWarning) as seen:
        files = write_report(url, "hostile", tmp_path / "report", tmp_path)
    messages = [str(w.message) for w in seen if w.category is SkippedTrialWarning]
    assert len(messages) == 11 and messages[-1] == "report: 4 more malformed trials skipped"
    assert len(files.skipped) == 14 and files.trials == 1


def test_cli_report_warns_one_line_per_skipped_trial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = make_study(tmp_path, malformed_trials())
    args = ["report", "--study", "hostile", "--storage", url, "--out", str(tmp_path / "r")]
    with pytest.raises(SystemExit) as info:
        main([*args, "--artifacts", str(tmp_path)])
    assert info.value.code == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 6 and all(line.startswith("warning: report: trial ") for line in err)


# --- storages that do not exist ----------------------------------------------------------
@pytest.mark.parametrize("scheme", ["sqlite:///", "journal:"])
def test_reading_a_missing_storage_creates_nothing(tmp_path: Path, scheme: str) -> None:
    path = tmp_path / "sub" / ("none.db" if scheme == "sqlite:///" else "none.log")
    url = f"{scheme}{path}"
    for read in (
        lambda: export_trial(url, "nope", tmp_path / "out"),
        lambda: write_report(url, "nope", tmp_path / "out"),
        lambda: retrain(url, "nope", progress=False),
    ):
        with pytest.raises(SearchError, match=rf"^--storage {re.escape(url)}: no such file"):
            read()
    with pytest.raises(SearchError, match="no such file"), serving(url, port=0):
        pass
    assert not (tmp_path / "sub").exists() and not (tmp_path / "out").exists()


def test_a_sqlite_file_that_is_no_optuna_storage_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (body TEXT)")
    db.close()
    with pytest.raises(SearchError, match=r"not an Optuna storage \(it has no studies table\)"):
        export_trial(f"sqlite:///{path}", "nope", tmp_path / "out")
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    db.close()
    assert tables == ["notes"]


def test_cli_export_of_a_hostile_study_is_one_error_line(tmp_path: Path) -> None:
    attrs = {"genotype": SCHEMA_2, "weights_artifact": "passwd"}
    url = make_study(tmp_path, [attrs, {"genotype": GENOTYPE, "weights_artifact": "passwd"}],
                     artifacts="/etc")  # fmt: skip
    out = tmp_path / "out"
    for args in (["--trial", "0"], ["--trial", "1"]):
        done = nas_skip_cli("export", "--study", "hostile", "--storage", url, *args,
                            "--out", out, cwd=tmp_path)  # fmt: skip
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.startswith("error: --trial ") and done.stderr.count("\n") == 1
    assert not out.exists()
    done = nas_skip_cli("export", "--study", "nope", "--storage", f"sqlite:///{tmp_path}/n.db",
                        "--out", out, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2 and done.stderr.startswith("error: --storage ")
    assert not (tmp_path / "n.db").exists() and not (tmp_path / "runs").exists()


# --- the dashboard -----------------------------------------------------------------------
def _trial_artifact(url: str, name: str, folder: Path, body: bytes, **attrs: Any) -> str:
    """A study ``name`` with one trial that uploaded ``body`` to ``folder``; the URL path
    of the artifact on the dashboard."""
    study = optuna.create_study(study_name=name, storage=url)
    for key, value in attrs.items():
        study.set_user_attr(key, value)
    trial = study.ask()
    folder.mkdir(parents=True, exist_ok=True)
    source = folder.parent / f"{name}.svg"
    source.write_bytes(body)
    artifact = upload_artifact(artifact_store=FileSystemArtifactStore(folder),
                               file_path=str(source), study_or_trial=trial)  # fmt: skip
    study.tell(trial, 1.0)
    return f"artifacts/{study._study_id}/{trial._trial_id}/{artifact}"


def _status(address: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(address, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def test_the_dashboard_serves_every_studys_artifacts_from_the_users_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'dash.db'}"
    elsewhere, default = tmp_path / "elsewhere", tmp_path / "runs" / "artifacts"
    # the first study records another folder (or /etc): it must not decide what is served
    first = _trial_artifact(url, "first", elsewhere, b"<svg>first</svg>",
                            artifacts=str(elsewhere))  # fmt: skip
    second = _trial_artifact(url, "second", default, b"<svg>second</svg>",
                             artifacts=str(default))  # fmt: skip
    with serving(url, "127.0.0.1", 0) as base:  # runs/artifacts: the search's default
        assert _status(base + second) == (200, b"<svg>second</svg>")
        assert _status(base + first)[0] != 200  # the study's say-so serves nothing
    with serving(url, "127.0.0.1", 0, [default, elsewhere]) as base:  # the user names both
        assert _status(base + first) == (200, b"<svg>first</svg>")
        assert _status(base + second) == (200, b"<svg>second</svg>")
    storage = optuna.storages.RDBStorage(url)
    (line,) = unserved(storage, ArtifactFolders())
    assert line.startswith("study 'first' records its artifacts in") and str(elsewhere) in line
    assert unserved(storage, ArtifactFolders([default, elsewhere])) == []


def test_artifact_folders_take_artifact_ids_only(tmp_path: Path) -> None:
    store = ArtifactFolders(tmp_path / "store")
    (tmp_path / "secret").write_text("x")
    for bad in ("../secret", str(tmp_path / "secret"), "secret", ""):
        with pytest.raises(ArtifactNotFound):
            store.open_reader(bad)
        with pytest.raises(ArtifactNotFound):
            store.remove(bad)
        with pytest.raises(ValueError, match="not an artifact id"):
            store.write(bad, io.BytesIO(b"y"))
        assert store.read(bad, 100) is None
    assert (tmp_path / "secret").read_text() == "x"
    assert store.read(None, 100) is None and store.read(7, 100) is None


def test_report_leaves_out_retrain_results_of_another_shape(tmp_path: Path) -> None:
    good = {"val_mean": 0.5, "val_std": 0.0, "test_mean": 0.4, "test_std": 0.0,
            "search_value": 0.3, "epochs": 2, "seeds": [0], "metric": "accuracy"}  # fmt: skip
    url = make_study(tmp_path, [{"genotype": GENOTYPE}, {"genotype": GENOTYPE}],
                     **{"retrain:0": {**good, "val_mean": "<b>x</b>"}, "retrain:1": good,
                        "retrain:²": good, "retrain:2": {**good, "seeds": None}})  # fmt: skip
    files = write_report(url, "hostile", tmp_path / "report", tmp_path)
    page = files.html.read_text(encoding="utf-8")
    assert re.findall(r'id="confirmed-trial-(\d+)"', page) == ["1"]
    rows = (tmp_path / "report" / "trials.csv").read_text().splitlines()
    assert rows[2].split(",")[0] == "1" and "0.5" in rows[2] and "0.5" not in rows[1]
