"""``nas-skip dashboard`` on big studies: the study detail built from kept trial JSON is
optuna-dashboard's own, stays current as trials and notes change, within its budget, and
is gzipped for clients that accept it; one slow client does not hold up the others."""

from __future__ import annotations

import gzip
import json
import socket
import time
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import optuna
import optuna_dashboard
import pytest
from optuna.artifacts import FileSystemArtifactStore, upload_artifact
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState
from optuna_dashboard._serializer import serialize_frozen_trial
from optuna_dashboard.preferential._study import _SYSTEM_ATTR_PREFERENTIAL_STUDY

from nas_skip import dashboard
from nas_skip.dashboard import (
    StudyDetails,
    _accepts_gzip,
    _ParamJSON,
    _prepare,
    serving,
    study_details,
)
from nas_skip.searching._reading import open_existing

optuna.logging.set_verbosity(optuna.logging.WARNING)
App = Callable[..., Iterable[bytes]]


def call(app: App, path: str, query: str = "", method: str = "GET",
         encoding: str | None = None) -> tuple[str, dict[str, str], bytes]:  # fmt: skip
    """(status, headers, body) of one request to a WSGI app."""
    environ: dict[str, Any] = {"PATH_INFO": path, "QUERY_STRING": query,
                               "REQUEST_METHOD": method}  # fmt: skip
    if encoding is not None:
        environ["HTTP_ACCEPT_ENCODING"] = encoding
    setup_testing_defaults(environ)
    got: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc: Any = None) -> Any:
        got["status"], got["headers"] = status, dict(headers)

    body = b"".join(app(environ, start_response))
    return got["status"], got["headers"], body


def normal(body: bytes) -> Any:
    """A study detail's JSON; the choices of its search-space summary (which
    optuna-dashboard builds from a set) sorted."""
    data = json.loads(body)
    for key in ("intersection_search_space", "union_search_space"):
        for param in data[key]:
            param["distribution"].get("choices", []).sort(key=json.dumps)
    return data


def theirs(url: str, study_id: int, query: str = "after=0") -> Any:
    """optuna-dashboard's own detail, from a fresh app (its caches empty), less what
    nas-skip leaves out: the distribution of each trial's every parameter (the page reads
    distributions from the search-space summary only)."""
    status, _, body = call(optuna_dashboard.wsgi(open_existing(url)),
                           f"/api/studies/{study_id}", query)  # fmt: skip
    assert status.startswith("200"), body
    data = normal(body)
    for trial in data["trials"] + data["best_trials"]:
        for param in trial["params"]:
            assert "distribution" in param  # the library's has it: dropped, not missing
            del param["distribution"]
    return data


def ours(url: str) -> tuple[App, StudyDetails]:
    storage = open_existing(url)
    details = StudyDetails(storage)
    return study_details(optuna_dashboard.wsgi(storage), details), details


def detail(app: App, study_id: int, query: str = "after=0") -> Any:
    status, headers, body = call(app, f"/api/studies/{study_id}", query)
    assert status.startswith("200") and headers["Content-Type"] == "application/json"
    assert int(headers["Content-Length"]) == len(body)
    return normal(body)


def objective(trial: optuna.Trial) -> float:
    """A conditional space as nas-skip's are: edges exist at some depths only."""
    depth = trial.suggest_int("depth", 1, 4)
    for j in range(1, depth):
        trial.suggest_categorical(f"edge:l{j - 1}->l{j}", ["none", "add", "concat"])
    lr = trial.suggest_float("train:lr", 1e-3, 1e-1, log=True)
    trial.set_user_attr("hash", f"h{trial.number}")
    trial.set_user_attr("nodes", depth + 2)
    trial.set_user_attr("genotype", {"nodes": list(range(depth)), "big": "x" * 2000})
    for step in range(3):
        trial.report(lr * step, step)
    if trial.number % 5 == 4:
        raise optuna.TrialPruned()
    return depth * lr


@pytest.fixture
def study(tmp_path: Path) -> tuple[str, optuna.Study]:
    """A study with what the page shows: conditional parameters, notes (the study's and
    its trials'), artifacts of both kinds, intermediate values, a pruned, a failed, a
    running and a waiting trial, fixed parameters."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    s = optuna.create_study(study_name="s", storage=url, direction="maximize")
    s.optimize(objective, n_trials=12)
    store = FileSystemArtifactStore(str(tmp_path))
    (tmp_path / "topology.svg").write_text("<svg/>")
    live = s.ask()
    live.suggest_int("depth", 1, 4)
    optuna_dashboard.save_note(live, "# running\nits note")
    upload_artifact(artifact_store=store, file_path=str(tmp_path / "topology.svg"),
                    study_or_trial=live)  # fmt: skip
    s.tell(live, 0.5)
    s.enqueue_trial({"depth": 2})
    s.ask()  # running, the enqueued trial still waiting
    s.add_trial(optuna.trial.create_trial(state=TrialState.FAIL))
    s.enqueue_trial({"depth": 3, "train:lr": 0.01})
    optuna_dashboard.save_note(s, "the study's note")
    meta = json.dumps({"artifact_id": "a1", "filename": "x.png"})  # as the dashboard's upload
    key = f"dashboard:artifacts:{s.trials[0]._trial_id}:a1"
    s._storage.set_study_system_attr(s._study_id, key, meta)
    return url, s


def test_the_detail_is_optuna_dashboards(study: tuple[str, optuna.Study]) -> None:
    url, s = study
    app, details = ours(url)
    for _ in range(2):  # built, then from what was kept
        for query in ("after=0", "after=5", "after=14", "after=99", ""):
            assert detail(app, s._study_id, query) == theirs(url, s._study_id, query), query
    # the search-space summary merged each distinct set of distributions once (one per
    # depth, and the running trial's), not once per trial, and still equals the library's
    shown = [t for t in s.trials if t.state != TrialState.FAIL]
    sets = {frozenset((n, repr(d)) for n, d in t.distributions.items()) for t in shown}
    assert details._memos[s._study_id].extra.merged == len(sets) < len(shown)
    got = detail(app, s._study_id)
    params = [p for t in got["trials"] + got["best_trials"] for p in t["params"]]
    assert len(params) > 40 and not any("distribution" in p for p in params)
    assert got["union_search_space"] and all(p["distribution"] for p in got["union_search_space"])
    assert got["trials"][12]["note"]["body"] == "# running\nits note"
    assert got["trials"][12]["artifacts"] and got["trials"][0]["artifacts"]
    assert got["note"]["body"] == "the study's note"
    assert [t["state"] for t in got["trials"]][12:] == ["Complete", "Running", "Fail", "Waiting"]


def test_parameters_of_every_kind_are_the_librarys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kept parameter JSON is told apart by type: 1, True and 1.0 are equal keys in a dict,
    but differ in the library's JSON (their index, their text, their type); past its bound
    it is made, not kept."""
    url = f"sqlite:///{tmp_path / 'kinds.db'}"
    s = optuna.create_study(storage=url)
    mixed = CategoricalDistribution([1, True, 1.0, "1", None, 0, False, 2.5])
    kinds = {"c": mixed, "i": IntDistribution(-4, 8, step=3),
             "l": IntDistribution(1, 64, log=True), "f": FloatDistribution(1e-4, 1.0, log=True),
             "s": FloatDistribution(0, 1, step=0.25)}  # fmt: skip
    for n, choice in enumerate(mixed.choices * 2):
        params = {"c": choice, "i": -4 + 3 * (n % 5), "l": 2 ** (n % 7), "f": 10 ** -(n % 4),
                  "s": 0.25 * (n % 5)}  # fmt: skip
        s.add_trial(optuna.trial.create_trial(params=params, distributions=kinds, value=n))
    app, _ = ours(url)
    for _ in range(2):  # built, then from what was kept
        assert detail(app, s._study_id) == theirs(url, s._study_id)
    # a stored study reads True back as 1 (the index of the first equal choice); trials
    # in memory keep it
    made = _ParamJSON()
    for choice in mixed.choices * 2:
        trial = optuna.trial.create_trial(params={"c": choice}, distributions={"c": mixed},
                                          value=0)  # fmt: skip
        library = serialize_frozen_trial(0, trial, {})["params"]
        for param in library:
            del param["distribution"]
        assert json.loads(made.of(trial)) == library
    assert len(made._kept) == 8
    monkeypatch.setattr(dashboard, "PARAMS_KEPT", 3)
    bounded = _ParamJSON()
    for choice in mixed.choices:
        trial = optuna.trial.create_trial(params={"c": choice, "i": 2}, value=0,
                                          distributions={"c": mixed, "i": kinds["i"]})  # fmt: skip
        library = serialize_frozen_trial(0, trial, {})["params"]
        assert json.loads(bounded.of(trial)) == [
            {k: v for k, v in param.items() if k != "distribution"} for param in library
        ]
    assert len(bounded._kept) == 3


def test_a_multi_objective_study_shows_its_pareto_front(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'mo.db'}"
    s = optuna.create_study(storage=url, directions=["maximize", "minimize"])
    s.optimize(lambda t: (t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)), n_trials=20)
    app, _ = ours(url)
    got = detail(app, s._study_id)
    assert got == theirs(url, s._study_id) and got["best_trials"]


def test_what_it_does_not_answer_goes_to_optuna_dashboard(
    study: tuple[str, optuna.Study],
) -> None:
    url, s = study
    app, _ = ours(url)
    plain = optuna_dashboard.wsgi(open_existing(url))
    for path, query in ((f"/api/studies/{s._study_id}", "after=-1"), ("/api/studies/999", "")):
        assert call(app, path, query) == call(plain, path, query)
    assert call(app, path, query)[0].startswith("404")
    # a preferential study (as optuna_dashboard.preferential.create_study marks one)
    pref_id = optuna.create_study(storage=url, study_name="pref")._study_id
    s._storage.set_study_system_attr(pref_id, _SYSTEM_ATTR_PREFERENTIAL_STUDY, True)
    assert call(app, f"/api/studies/{pref_id}")[2] == call(plain, f"/api/studies/{pref_id}")[2]


def test_the_kept_detail_follows_the_study(study: tuple[str, optuna.Study]) -> None:
    url, s = study
    app, details = ours(url)
    before = detail(app, s._study_id)
    kept = details.kept
    assert kept > 0  # the finished trials'
    s.optimize(objective, n_trials=2)  # the waiting trial, then a new one
    running = s.trials[13]
    s.tell(running.number, 0.25)  # a running trial finishes
    new = {"new": FloatDistribution(0, 2)}  # a parameter none had
    s.add_trial(optuna.trial.create_trial(params={"new": 1.0}, distributions=new, value=1.0))
    done = s.trials[0]
    optuna_dashboard.save_note(optuna.Trial(s, done._trial_id), "rewritten")
    after = detail(app, s._study_id)
    assert after == theirs(url, s._study_id)
    assert len(after["trials"]) == len(before["trials"]) + 2
    assert "new" in [p["name"] for p in after["union_search_space"]]
    assert before["trials"][15]["state"] == "Waiting" != after["trials"][15]["state"]
    assert after["trials"][0]["note"]["body"] == "rewritten"
    assert after["trials"][13]["state"] == "Complete"
    assert details.kept > kept
    # the poll the page makes: only the trials from the first running one
    assert detail(app, s._study_id, f"after={len(after['trials'])}")["trials"] == []
    # every trial finished: the gzipped answer is kept while nothing changes
    zipped = details.body(s._study_id, 0, gzipped=True)
    assert zipped is not None and details.body(s._study_id, 0, gzipped=True) is zipped
    assert normal(gzip.decompress(zipped)) == after
    optuna_dashboard.save_note(optuna.Trial(s, done._trial_id), "again")
    again = details.body(s._study_id, 0, gzipped=True)
    assert again is not None and normal(gzip.decompress(again)) == theirs(url, s._study_id)
    s.optimize(objective, n_trials=1)
    grown = details.body(s._study_id, 0, gzipped=True)
    assert grown is not None and normal(gzip.decompress(grown)) == theirs(url, s._study_id)
    assert len(json.loads(gzip.decompress(grown))["trials"]) == len(after["trials"]) + 1


def test_the_kept_json_stays_within_its_budget(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'two.db'}"
    a = optuna.create_study(storage=url, study_name="a", direction="maximize")
    a.optimize(objective, n_trials=30)
    b = optuna.create_study(storage=url, study_name="b", direction="maximize")
    b.optimize(objective, n_trials=30)
    storage = open_existing(url)
    unbounded = StudyDetails(storage)
    full = unbounded.body(a._study_id, 0)
    assert full is not None and unbounded.kept > 30 * 2000
    budget = unbounded.kept * 2 // 3  # less than one study's trials
    details = StudyDetails(storage, budget)
    app = study_details(optuna_dashboard.wsgi(storage), details)
    for s in (a, b, a):
        assert detail(app, s._study_id) == theirs(url, s._study_id)
        assert 0.5 * budget < details.kept <= budget  # the other study's dropped
    call(app, f"/api/studies/{a._study_id}", method="DELETE")
    assert details.kept == 0


def test_the_study_opened_first_is_built_ahead(study: tuple[str, optuna.Study]) -> None:
    url, s = study
    newer = optuna.create_study(study_name="newer", storage=url)
    newer.optimize(objective, n_trials=3)
    for name, expected in ((None, newer), ("s", s)):  # the newest unless named
        details = StudyDetails(open_existing(url))
        _prepare(details, open_existing(url), name)
        assert list(details._memos) == [expected._study_id] and details.kept > 0
        gzipped = details._gzipped
        assert gzipped is not None or name == "s"  # s has running trials: not kept
    details = StudyDetails(open_existing(url))
    _prepare(details, open_existing(url), "no such study")  # the CLI says so, not this
    assert details.kept == 0


@pytest.mark.parametrize(
    ("header", "accepts"),
    [("gzip, deflate, br", True), ("br;q=1.0, gzip;q=0.8", True), ("GZIP", True),
     ("*", True), ("gzip;q=0", False), ("deflate, br", False), ("", False),
     ("gzip;q=x", False), ("*, gzip;q=0", False), ("identity;q=0, *;q=0.1", True)],
)  # fmt: skip
def test_accept_encoding(header: str, accepts: bool) -> None:
    assert _accepts_gzip(header) is accepts


def test_the_detail_is_gzipped_for_clients_that_accept_it(
    study: tuple[str, optuna.Study],
) -> None:
    url, s = study
    app = ours(url)[0]
    path = f"/api/studies/{s._study_id}"
    _, plain_headers, plain = call(app, path)
    status, headers, wire = call(app, path, encoding="gzip, deflate, br")
    assert status.startswith("200") and "Content-Encoding" not in plain_headers
    assert headers["Content-Encoding"] == "gzip" and headers["Vary"] == "Accept-Encoding"
    assert int(headers["Content-Length"]) == len(wire) < len(plain) / 5
    assert gzip.decompress(wire) == plain
    assert call(app, path, encoding="gzip;q=0")[2] == plain
    # other answers pass as optuna-dashboard makes them (its script comes gzipped)
    plain_app = optuna_dashboard.wsgi(open_existing(url))
    for other in ("/api/meta", "/api/studies", "/dashboard", "/static/bundle.js"):
        assert call(app, other, encoding="gzip") == call(plain_app, other, encoding="gzip")


def test_one_stalled_client_holds_up_neither_the_others_nor_the_stop(
    study: tuple[str, optuna.Study],
) -> None:
    url, s = study
    with serving(url, "127.0.0.1", 0, []) as base:
        port = int(base.rsplit(":", 1)[1].strip("/"))
        stalled = socket.create_connection(("127.0.0.1", port))
        stalled.sendall(b"GET /api/studies HTTP/1.1\r\n")  # and never the rest
        request = urllib.request.Request(f"{base}api/studies/{s._study_id}",
                                         headers={"Accept-Encoding": "gzip"})  # fmt: skip
        with urllib.request.urlopen(request, timeout=20) as response:
            assert response.headers["Content-Encoding"] == "gzip"
            got = normal(gzip.decompress(response.read()))
        stopping = time.monotonic()
    stopped = time.monotonic() - stopping
    stalled.close()
    assert got == theirs(url, s._study_id) and stopped < 5
