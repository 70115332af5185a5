"""``nas-skip dashboard``: optuna-dashboard on a search's storage and artifact store.

Bound to 127.0.0.1 unless told otherwise. The artifacts served are those of the folders
the user names (``--artifacts``, as given to the searches; else ``runs/artifacts``), for
every study of the storage, and only by artifact id (:mod:`nas_skip.searching._artifacts`);
the folder a study records is never served from its say-so, only named when it is not
among those served (:func:`unserved`). The
parameter importances optuna-dashboard computes (PED-ANOVA) warn on every request of a
young or conditional study; those warnings are kept out of the server's console.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import optuna

from nas_skip.errors import brief
from nas_skip.searching._artifacts import RECORDED, ArtifactFolders, shown_folder
from nas_skip.searching._config import DEFAULT_STORAGE, SearchError
from nas_skip.searching._reading import open_existing


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


@contextmanager
def serving(storage_url: str, host: str = "127.0.0.1", port: int = 8080,
            artifacts: Sequence[str | Path] | None = None) -> Iterator[str]:  # fmt: skip
    """Serve the dashboard in a thread for the ``with`` block; yields the base URL.

    Args:
        storage_url: an existing storage (none is created).
        host, port: where to listen; ``port=0`` picks a free port (tests).
        artifacts: the artifact folders to serve, for every study; None: runs/artifacts.

    Raises:
        SearchError: no such storage, or the port cannot be listened on.
    """
    if not 0 <= port <= 65535:  # refused before the storage is opened
        raise SearchError(f"--port: must be in [0, 65535] (0: any free port), got {brief(port)}")
    import optuna_dashboard

    storage = open_existing(storage_url)
    store = ArtifactFolders(artifacts)
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
