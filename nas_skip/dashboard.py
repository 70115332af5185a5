"""``nas-skip dashboard``: optuna-dashboard on a search's storage and artifact store.

Bound to 127.0.0.1 unless told otherwise. The artifacts served are those of the folders
the user names (``--artifacts``, as given to the searches; else ``runs/artifacts``), for
every study of the storage, and only by artifact id (:mod:`nas_skip.searching._artifacts`);
the folder a study records is never served from its say-so, only named when it is not
among those served (:func:`unserved`). The
parameter importances optuna-dashboard computes (PED-ANOVA) warn on every request of a
young or conditional study; those warnings are kept out of the server's console.

A study of thousands of trials of a topology space (75-106 categorical parameters each)
makes optuna-dashboard's study detail (``/api/studies/<id>``) some 70 MB of JSON that takes
it 5-20 s to build (as the machine is loaded), on every page load. Here each finished
trial's JSON is built once and kept (finished trials never change; their notes are checked
each time), without the distribution the library repeats on each of its parameters (the
page reads distributions from the search-space summary only: 32 MB instead of 70), the
search-space summary is folded in incrementally, the detail is gzipped for clients that
accept it (2.7 MB), and requests are served on threads, so that one slow request
(importances) does not hold up the others (``scripts/bench_dashboard.py``).
"""

from __future__ import annotations

import copy
import functools
import gzip
import json
import re
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from nas_skip.errors import brief
from nas_skip.searching._artifacts import RECORDED, ArtifactFolders, shown_folder
from nas_skip.searching._config import DEFAULT_STORAGE, SearchError
from nas_skip.searching._reading import open_existing

WSGIApp = Callable[..., Iterable[bytes]]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # one line per request would bury the URL the user needs


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    """One thread per request: the page asks for the study and its importances at once,
    and on one thread the study waited for the importances (2-4 s at 2,000 trials)."""

    daemon_threads = True
    block_on_close = False  # a stop waits for no request: a stalled client would hold it


#: the dashboard's API routes that compute parameter importances
_IMPORTANCES = "/param_importances"
#: catch_warnings swaps process-wide state: one importance request at a time
_WARNINGS_LOCK = threading.Lock()


def quiet_importances(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """``app`` whose parameter-importance requests keep their warnings to themselves.

    optuna-dashboard asks Optuna's PED-ANOVA for importances on each such request, and
    Optuna warns ("Some regimes for parameter ... have less than 2 trials") every time on
    the conditional parameters of a space; the console would fill with them. They are
    caught around those requests (``warnings.catch_warnings``, one such request at a
    time), not filtered for the whole process.
    """

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not str(environ.get("PATH_INFO", "")).endswith(_IMPORTANCES):
            return app(environ, start_response)
        with _WARNINGS_LOCK, warnings.catch_warnings(record=True):  # recorded, then dropped
            return app(environ, start_response)

    return wrapped


#: 32 MB of study JSON at 2,000 trials: level 1 makes 2.7 MB in 0.07 s, level 6 1.5 MB in 0.15 s
_GZIP_LEVEL = 1


def _accepts_gzip(header: str) -> bool:
    """Whether an ``Accept-Encoding`` header allows gzip: named, or ``*``, with a weight
    above 0 (``gzip;q=0`` refuses it)."""
    weights: dict[str, float] = {}
    for item in header.split(","):
        name, *params = (part.strip().lower() for part in item.split(";"))
        weight = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    weight = float(param[2:])
                except ValueError:
                    weight = 0.0
        weights.setdefault(name, weight)
    return weights.get("gzip", weights.get("*", 0.0)) > 0


#: the study detail optuna-dashboard's page asks for (``?after=N``: trials from number N)
_DETAIL = re.compile(r"/api/studies/(\d+)/*")
#: bytes of trial JSON kept for all studies together: some 16,000 deep_mlp trials
DETAIL_BUDGET = 256 * 2**20
#: parameter JSON kept per study (about 100 bytes each): a deep_mlp study needs some 600
PARAMS_KEPT = 100_000


class _Memo:
    """What is kept of one study between requests."""

    def __init__(self, extra: Any) -> None:
        #: trial id -> (the finished trial, its note and artifact attributes, its JSON)
        self.trials: dict[int, tuple[FrozenTrial, dict[str, Any], bytes]] = {}
        self.extra = extra  # optuna-dashboard's search-space and attribute summary
        self.folded = 0  # trials before this index are finished and in ``extra``
        self.size = 0  # bytes of JSON in ``trials``
        self.params = _ParamJSON()


class _ParamJSON:
    """The JSON of a trial's parameters as optuna-dashboard's serializer writes them, less
    each one's ``distribution``.

    optuna-dashboard's page takes distributions from the study's search-space summary
    (``union_search_space``: its plots' axes, the trial table's filters) and never from a
    trial's parameters, where the library repeats them on every parameter of every trial:
    at 2,000 deep_mlp trials 38 of the study's 70 MB, most of the browser's 0.9 s to fetch
    and parse it, and most of the serializer's time. A categorical or integer parameter's
    JSON is kept by (name, distribution, value), at most :data:`PARAMS_KEPT` of them: a
    search's trials repeat a few hundred. As in the search-space summary, a distribution is
    known by its object's id (the storage hands out one object per distinct stored JSON)
    and kept while its id is a key.
    """

    def __init__(self) -> None:
        #: (name, distribution id, type, value) -> JSON; floats are not kept (all differ)
        self._kept: dict[tuple[str, int, type, Any], bytes] = {}
        #: the distributions whose ids are in the keys, so that the ids stay theirs
        self._distributions: dict[int, BaseDistribution] = {}

    def of(self, trial: FrozenTrial) -> bytes:
        """The JSON list of ``trial``'s parameters."""
        parts = []
        for name, value in trial.params.items():
            distribution = trial.distributions.get(name)
            if distribution is None:  # as the library's serializer: skipped
                continue
            key = (name, id(distribution), type(value), value)
            part = self._kept.get(key)
            if part is None:
                part = json.dumps({
                    "name": name,
                    "param_internal_value": distribution.to_internal_repr(value),
                    "param_external_value": str(value),
                    "param_external_pytyp": str(type(value)),
                }).encode()  # fmt: skip
                floats = isinstance(distribution, FloatDistribution)
                if not floats and len(self._kept) < PARAMS_KEPT:
                    self._kept[key] = part
                    self._distributions[id(distribution)] = distribution
            parts.append(part)
        return b"[" + b", ".join(parts) + b"]"


@functools.cache
def _summary_class() -> type:
    """optuna-dashboard's search-space summary of a study (``_CachedExtraStudyProperty``),
    folding in each distinct set of parameter distributions once.

    The library merges every trial's distributions into the union and the intersection by
    comparing each with every parameter seen so far: 66 x 150 comparisons a deep_mlp trial,
    about 1.5 ms each, 3 s of the first answer at 2,000 trials. Merging a set already
    merged changes nothing (ranges by min and max, choices by set union, the intersection
    by intersection), and a search's trials share a few such sets (one per depth), so a
    trial whose (name, distribution) pairs were folded in already is skipped. The storage
    hands out one distribution object per distinct stored JSON
    (:mod:`nas_skip.searching._bulk`), so a set is known by its objects' ids; the objects
    are kept, so the ids stay theirs. Objects not shared (another storage) only miss.

    Not so where choices of different types are equal (``1``, ``True``, ``1.0``): the
    library's set union keeps one of them, whichever the last merged set names first, so
    merging a set again may change the summary. Once a categorical choice that is a bool
    or a float is merged, every trial is merged, as the library does.
    """
    from optuna_dashboard._inmemory_cache import _CachedExtraStudyProperty

    class SearchSpaceOnce(_CachedExtraStudyProperty):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            #: (name, distribution id) pairs of each set merged -> its distributions
            self.seen: dict[frozenset[tuple[str, int]], tuple[Any, ...]] = {}
            self.merged = 0  # trials merged by the library (the others were skipped)
            self.skips = True  # whether a set merged before may be skipped

        def _update_search_space(self, trial: FrozenTrial) -> None:
            key = frozenset((name, id(d)) for name, d in trial.distributions.items())
            if self.skips and key in self.seen:
                return
            if self.skips:
                self.seen[key] = tuple(trial.distributions.values())
                self.skips = not any(
                    isinstance(choice, (bool, float))
                    for d in trial.distributions.values()
                    if isinstance(d, CategoricalDistribution)
                    for choice in d.choices
                )
            self.merged += 1
            super()._update_search_space(trial)

    return SearchSpaceOnce


def _by_trial(system_attrs: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """The study attributes that belong to one trial, by trial id: its note
    (``dashboard:<id>:...``) and the dashboard's artifacts (``dashboard:artifacts:<id>:...``).
    optuna-dashboard looks them up by prefix in all the study's attributes, once per trial;
    for each trial it is handed its own, which it reads the same way."""
    out: dict[int, dict[str, Any]] = {}
    for key, value in system_attrs.items():
        parts = key.split(":", 3)
        if parts[0] != "dashboard" or len(parts) < 3:
            continue
        owner = parts[2] if parts[1] == "artifacts" else parts[1]
        if owner.isascii() and owner.isdigit():
            out.setdefault(int(owner), {})[key] = value
    return out


class StudyDetails:
    """optuna-dashboard's study detail (``GET /api/studies/<id>?after=N``), the same JSON
    as its own but for the trials' parameter distributions (:class:`_ParamJSON`), built
    from a memo of each finished trial's JSON.

    optuna-dashboard rebuilds every trial's JSON on each request (and, when no trial is
    running, its search-space summary from all trials). A finished trial never changes
    (Optuna refuses to update one, and nas-skip's storage cache keeps it as read), so its
    JSON is kept and reused while the trial object and its note are those it was built from.
    At most ``budget`` bytes are kept, the studies asked for least recently dropped first;
    and the last gzipped answer (2.7 MB at 2,000 trials), for a reload of an unchanged study.
    """

    def __init__(self, storage: optuna.storages.BaseStorage, budget: int = DETAIL_BUDGET):
        self._storage = storage
        self._budget = budget
        self._memos: OrderedDict[int, _Memo] = OrderedDict()
        self._size = 0  # bytes of JSON kept, all studies together
        self._lock = threading.Lock()
        #: the last gzipped answer, by what it was made of (a reload of an unchanged study)
        self._gzipped: tuple[tuple[Any, ...], bytes] | None = None

    @property
    def kept(self) -> int:
        """Bytes of trial JSON kept, all studies together (at most the budget)."""
        return self._size

    def forget(self, study_id: int) -> None:
        """Drop what is kept of a study (deleted: a new one may get its id)."""
        with self._lock:
            self._drop(study_id)

    def _drop(self, study_id: int) -> None:
        memo = self._memos.pop(study_id, None)
        self._size -= memo.size if memo is not None else 0
        if self._gzipped is not None and self._gzipped[0][0] == study_id:
            self._gzipped = None

    def body(self, study_id: int, after: int, gzipped: bool = False) -> bytes | None:
        """The detail's JSON with the trials numbered ``after`` and up (``gzipped``: as a
        gzip file); None for what optuna-dashboard answers itself (no such study, a
        preferential study)."""
        from optuna_dashboard._custom_plot_data import get_plotly_graph_objects
        from optuna_dashboard._pareto_front import get_pareto_front_trials
        from optuna_dashboard._serializer import serialize_study_detail
        from optuna_dashboard._storage import get_study
        from optuna_dashboard.preferential._study import _SYSTEM_ATTR_PREFERENTIAL_STUDY

        study = get_study(self._storage, study_id)
        if study is None or study.system_attrs.get(_SYSTEM_ATTR_PREFERENTIAL_STUDY, False):
            return None
        with self._lock:
            memo = self._memos.pop(study_id, None) or _Memo(_summary_class()())
            self._memos[study_id] = memo  # the most recently used last
            trials = self._storage.get_all_trials(study_id, deepcopy=False)
            if len(study.directions) > 1:
                best = get_pareto_front_trials(trials=trials, directions=study.directions)
            elif any(t.state == TrialState.COMPLETE for t in trials):
                best = [self._storage.get_best_trial(study_id)]
            else:
                best = []
            # optuna-dashboard's summary, fed only the trials it has not seen finished
            # (its own cursor stays put when every trial is finished: it reads them all)
            new = trials[memo.folded :]
            memo.extra.update(new)
            running = (i for i, t in enumerate(new) if not t.state.is_finished())
            memo.folded += next(running, len(new))
            extra = memo.extra
            head = serialize_study_detail(
                study, [], [], extra.intersection_search_space, extra.union_search_space,
                extra.union_user_attrs, extra.has_intermediate_values,
                get_plotly_graph_objects(study.system_attrs), [],
            )  # fmt: skip
            attrs = _by_trial(study.system_attrs)
            shown = [self._json(memo, study_id, t, attrs) for t in trials[after:]]
            best_json = [self._json(memo, study_id, t, attrs) for t in best]
        # every part kept (finished, within budget): its gzipped answer may be kept too
        kept = all(k for _, k in shown + best_json)
        del head["trials"], head["best_trials"]
        rest = json.dumps(head).encode()
        key = (study_id, after, rest, *shown, None, *best_json)  # kept parts: compared by id
        last = self._gzipped
        if gzipped and last is not None and last[0] == key:
            return last[1]
        body = b"".join([b'{"trials": [', b", ".join(j for j, _ in shown), b'], "best_trials": [',
                         b", ".join(j for j, _ in best_json), b"], ", rest[1:]])  # fmt: skip
        if not gzipped:
            return body
        data = gzip.compress(body, compresslevel=_GZIP_LEVEL, mtime=0)
        if kept:
            with self._lock:
                self._gzipped = (key, data)
        return data

    def _json(
        self, memo: _Memo, study_id: int, trial: FrozenTrial, attrs: dict[int, dict[str, Any]]
    ) -> tuple[bytes, bool]:
        """The trial's JSON, and whether it is kept."""
        from optuna_dashboard._serializer import serialize_frozen_trial

        own = attrs.get(trial._trial_id, {})
        kept = memo.trials.get(trial._trial_id)
        if kept is not None and (kept[0] is trial or kept[0] == trial) and kept[1] == own:
            return kept[2], True
        apart = copy.copy(trial)  # the library's serializer, but the parameters are ours
        apart._params = {}
        rest = serialize_frozen_trial(study_id, apart, own)
        del rest["params"]
        data = b'{"params": ' + memo.params.of(trial) + b", " + json.dumps(rest).encode()[1:]
        if kept is not None:
            del memo.trials[trial._trial_id]
            memo.size, self._size = memo.size - len(kept[2]), self._size - len(kept[2])
        if trial.state.is_finished():
            # room made from the studies asked for least recently, never this one
            while self._size + len(data) > self._budget and next(iter(self._memos)) != study_id:
                self._drop(next(iter(self._memos)))
            if self._size + len(data) <= self._budget:
                memo.trials[trial._trial_id] = (trial, own, data)
                memo.size, self._size = memo.size + len(data), self._size + len(data)
                return data, True
        return data, False


def study_details(app: WSGIApp, details: StudyDetails) -> WSGIApp:
    """``app`` (optuna-dashboard on the storage of ``details``) whose study details come
    from ``details``; what it does not answer (a bad ``after``, no such study) goes to
    ``app``."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        match = _DETAIL.fullmatch(str(environ.get("PATH_INFO", "")))
        method = environ.get("REQUEST_METHOD", "GET")
        if match is not None and method == "DELETE":
            details.forget(int(match[1]))
        if match is None or method != "GET":
            return app(environ, start_response)
        query = parse_qs(str(environ.get("QUERY_STRING", "")), keep_blank_values=True)
        after = query.get("after", ["0"])[-1]
        gzipped = _accepts_gzip(str(environ.get("HTTP_ACCEPT_ENCODING", "")))
        body = None
        if after.isascii() and after.isdigit():  # else optuna-dashboard's own 400 (or 500)
            body = details.body(int(match[1]), int(after), gzipped)
        if body is None:
            return app(environ, start_response)
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        if gzipped:
            headers += [("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")]
        start_response("200 OK", headers)
        return [body]

    return wrapped


def default_storage() -> str:
    """The storage ``nas-skip search`` uses when given none; an error if there is none yet."""
    url = DEFAULT_STORAGE
    path = Path(url.removeprefix("sqlite:///"))
    if not path.exists():
        raise SearchError(
            f"--storage: no search storage at {path} (run nas-skip search first, "
            "or pass --storage URL)"
        )
    return url


def unserved(storage: optuna.storages.BaseStorage, store: ArtifactFolders) -> list[str]:
    """One line for each study that records an artifact folder ``store`` does not serve
    (its drawings and weights show as missing): the user may add it with ``--artifacts``."""
    lines = []
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        recorded = summary.user_attrs.get(RECORDED)
        if isinstance(recorded, str) and recorded and not store.serves(recorded):
            lines.append(
                f"study {brief(summary.study_name)} records its artifacts in "
                f"{shown_folder(recorded)}, not served (serving {store}; add --artifacts "
                "FOLDER to serve a folder)"
            )
    return lines


def study_url(storage: optuna.storages.BaseStorage, base: str, study: str | None) -> str:
    """The dashboard's page of ``study`` (its list of studies for None)."""
    if study is None:
        return base
    try:
        study_id = storage.get_study_id_from_name(study)
    except KeyError:
        names = optuna.get_all_study_names(storage)
        raise SearchError(
            f"--study {study}: no such study (studies: {', '.join(names)})"
        ) from None
    return f"{base}dashboard/studies/{study_id}"


def _prepare(details: StudyDetails, storage: optuna.storages.BaseStorage,
             study: str | None) -> None:  # fmt: skip
    """Build the detail of ``study`` (None: the newest study) ahead of its first request."""
    try:
        if study is None:
            ids = [s._study_id for s in storage.get_all_studies()]
            study_id = max(ids, default=None)
        else:
            study_id = storage.get_study_id_from_name(study)
        if study_id is not None:
            details.body(study_id, 0, gzipped=True)  # as the browser asks
    except Exception:  # a head start only: the request meets the same error
        pass


@contextmanager
def serving(storage_url: str, host: str = "127.0.0.1", port: int = 8080,
            artifacts: Sequence[str | Path] | None = None,
            study: str | None = None) -> Iterator[str]:  # fmt: skip
    """Serve the dashboard in a thread for the ``with`` block; yields the base URL.

    Args:
        storage_url: an existing storage (none is created).
        host, port: where to listen; ``port=0`` picks a free port (tests).
        artifacts: the artifact folders to serve, for every study; None: runs/artifacts.
        study: the study whose page is likely opened first (None: the newest): its
            detail is built in the background from the start (about 1-1.3 s at 2,000
            deep_mlp trials), so that its first page load finds it ready.

    Raises:
        SearchError: no such storage, or the port cannot be listened on.
    """
    if not 0 <= port <= 65535:  # refused before the storage is opened
        raise SearchError(f"--port: must be in [0, 65535] (0: any free port), got {brief(port)}")
    import optuna_dashboard

    storage = open_existing(storage_url)
    store = ArtifactFolders(artifacts)
    details = StudyDetails(storage)
    app = optuna_dashboard.wsgi(storage, artifact_store=store)
    app = quiet_importances(study_details(app, details))
    try:
        server: WSGIServer = make_server(host, port, app, server_class=_ThreadingServer,
                                         handler_class=_QuietHandler)  # fmt: skip
    except OSError as exc:
        raise SearchError(f"--port {port}: cannot listen on {host} ({exc.strerror})") from None
    with in_thread(server, host) as base:
        # not joined: a stop need not wait for it
        threading.Thread(target=_prepare, args=(details, storage, study), daemon=True).start()
        yield base


@contextmanager
def in_thread(server: WSGIServer, host: str) -> Iterator[str]:
    """Run ``server`` in a thread for the ``with`` block; yields its base URL."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
