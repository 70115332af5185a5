"""``nas-skip dashboard``'s server: optuna-dashboard's importance requests keep Optuna's
warnings out of the console."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import optuna
import optuna_dashboard
from optuna.distributions import CategoricalDistribution, IntDistribution

from nas_skip.dashboard import quiet_importances

optuna.logging.set_verbosity(optuna.logging.WARNING)


def conditional_study(storage: str, n: int) -> int:
    """A study whose skip parameters exist at some depths only, as a space's do; one
    exists in the last trial alone: PED-ANOVA warns about its small regime on every
    request. Returns the study id."""
    study = optuna.create_study(study_name="cond", storage=storage, direction="maximize")
    depth, kind = IntDistribution(1, 3), CategoricalDistribution(["none", "add"])
    for i in range(n):
        params: dict[str, Any] = {"depth": 3 if i == n - 1 else 1 + i % 2}
        dists: dict[str, Any] = {"depth": depth}
        for j in range(1, params["depth"]):
            name = f"edge:l{j - 1}->l{j}"
            params[name], dists[name] = ["none", "add"][i % 4 // 2], kind
        study.add_trial(optuna.trial.create_trial(params=params, distributions=dists,
                                                  value=0.1 * i))  # fmt: skip
    return study._study_id


def get(app: Callable[..., Iterable[bytes]], path: str) -> bytes:
    environ: dict[str, Any] = {"PATH_INFO": path, "QUERY_STRING": "objective_id=0"}
    setup_testing_defaults(environ)
    return b"".join(app(environ, lambda status, headers, exc=None: None))


def test_importance_requests_keep_their_warnings(tmp_path: Path) -> None:
    # the dashboard caches importances per study id and trial count: two studies of
    # different sizes, so that each request computes
    plain_url, quiet_url = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    plain_id, quiet_id = conditional_study(plain_url, 9), conditional_study(quiet_url, 10)
    plain = optuna_dashboard.wsgi(optuna.storages.RDBStorage(plain_url))
    quiet = quiet_importances(optuna_dashboard.wsgi(optuna.storages.RDBStorage(quiet_url)))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert b"param_importances" in get(plain, f"/api/studies/{plain_id}/param_importances")
    assert any("regimes" in str(w.message) for w in seen)  # what the console used to show
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert b"param_importances" in get(quiet, f"/api/studies/{quiet_id}/param_importances")
        get(quiet, "/api/studies")  # other requests go through untouched
    assert seen == []


def test_the_dashboard_console_shows_no_importance_warnings(tmp_path: Path) -> None:
    # a real `nas-skip dashboard` process: its stderr is the console a person watches
    url = f"sqlite:///{tmp_path / 'c.db'}"
    study_id = conditional_study(url, 11)
    proc = subprocess.Popen(
        [sys.executable, "-m", "nas_skip.cli", "dashboard", "--storage", url, "--port", "0"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line, deadline = "", time.monotonic() + 60
        while "open http" not in line and time.monotonic() < deadline:
            line = proc.stdout.readline()
        base = line.split()[1]
        address = f"{base}api/studies/{study_id}/param_importances?objective_id=0"
        with urllib.request.urlopen(address, timeout=60) as response:
            assert b"edge:l1->l2" in response.read()  # computed, the rare regime included
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "regimes" not in err and "Warning" not in err, err
