"""``nas-skip dashboard``: optuna-dashboard on a search's storage and artifact store.

Bound to 127.0.0.1 unless told otherwise; the artifact store is the one the search
wrote (recorded on the study), so the dashboard serves each trial's kept files. The
parameter importances optuna-dashboard computes (PED-ANOVA) warn on every request of a
young or conditional study; those warnings are kept out of the server's console.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import optuna
from optuna.artifacts import FileSystemArtifactStore

from nas_skip.search._config import DEFAULT_RUNS, DEFAULT_STORAGE, SearchError
from nas_skip.search._storage import make_storage


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # one line per request would bury the URL the user needs


#: the dashboard's API routes that compute parameter importances
_IMPORTANCES = "/param_importances"


def quiet_importances(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """``app`` whose parameter-importance requests keep their warnings to themselves.

    optuna-dashboard asks Optuna's PED-ANOVA for importances on each such request, and
    Optuna warns ("Some regimes for parameter ... have less than 2 trials") every time on
    the conditional parameters of a space; the console would fill with them. They are
    caught around those requests (``warnings.catch_warnings``, on the server's one
    thread), not filtered for the whole process.
    """

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not str(environ.get("PATH_INFO", "")).endswith(_IMPORTANCES):
            return app(environ, start_response)
        with warnings.catch_warnings(record=True):  # recorded, then dropped
            return app(environ, start_response)

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


def artifact_dir(storage: optuna.storages.BaseStorage) -> Path:
    """The artifact folder the studies of ``storage`` recorded (else runs/artifacts)."""
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        recorded = summary.user_attrs.get("artifacts")
        if recorded:
            return Path(recorded)
    return DEFAULT_RUNS / "artifacts"


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


@contextmanager
def serving(storage_url: str, host: str = "127.0.0.1", port: int = 8080) -> Iterator[str]:
    """Serve the dashboard in a thread for the ``with`` block; yields the base URL.

    ``port=0`` picks a free port (tests).
    """
    import optuna_dashboard

    storage = make_storage(storage_url)
    store = FileSystemArtifactStore(str(artifact_dir(storage)))
    app = quiet_importances(optuna_dashboard.wsgi(storage, artifact_store=store))
    try:
        server: WSGIServer = make_server(host, port, app, handler_class=_QuietHandler)
    except OSError as exc:
        raise SearchError(f"--port {port}: cannot listen on {host} ({exc.strerror})") from None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
