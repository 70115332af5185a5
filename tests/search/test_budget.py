"""The study's budget is the study's: several processes on one study, a worker killed by
the kernel, a search process killed under its workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from nas_skip.searching import SearchConfig
from nas_skip.searching._local import _worker_main, run_local
from nas_skip.searching._storage import FINISHED, open_study
from nas_skip.spaces import load_space

# the trials' objective, in a module of its own: spawned worker processes import it by name
SLEEPY = """
import os, time
from pathlib import Path

def sleepy(trial):
    x = trial.suggest_float("x", 0, 1)
    (Path(os.environ["NAS_SKIP_TEST_PIDS"]) / str(os.getpid())).touch()
    time.sleep(float(os.environ["NAS_SKIP_TEST_SLEEP"]))
    return x
"""


@pytest.fixture
def sleepy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A trial objective that sleeps, and the folder where each process running one
    leaves a file named by its pid."""
    (tmp_path / "sleepy_objective.py").write_text(SLEEPY)
    monkeypatch.syspath_prepend(str(tmp_path))  # spawned workers get the same path
    pids = tmp_path / "pids"
    pids.mkdir()
    monkeypatch.setenv("NAS_SKIP_TEST_PIDS", str(pids))
    monkeypatch.setenv("NAS_SKIP_TEST_SLEEP", "0.3")
    return pids


def _config(tmp_path: Path, space: Path, **kw: object) -> SearchConfig:
    base: dict[str, object] = {"space": str(space), "storage": f"sqlite:///{tmp_path / 's.db'}",
                               "artifacts": str(tmp_path / "a"), "study": "b", "seed": 0,
                               "pruning": False, "sampler": "random"}  # fmt: skip
    return SearchConfig(**{**base, **kw})  # type: ignore[arg-type]


def _trials(c: SearchConfig) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name="b", storage=c.storage_url()).get_trials()


def _wait_for(pids: Path, n: int, timeout: float = 120) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [int(p.name) for p in pids.iterdir()]
        if len(found) >= n:
            return found
        time.sleep(0.1)
    raise AssertionError(f"fewer than {n} workers started a trial")


def _dead(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status  # exited, not yet reaped by its new parent


@pytest.mark.slow
def test_three_lone_processes_share_one_budget(
    tmp_path: Path, tiny_space: Path, sleepy: Path
) -> None:
    """Three `nas-skip search --trials 8 --workers 1` on one study finished 24 trials."""
    import multiprocessing

    from sleepy_objective import sleepy as objective  # type: ignore[import-not-found]

    c = _config(tmp_path, tiny_space, trials=8, workers=1)
    space = load_space(str(tiny_space))
    open_study(c, space.name, space.dataset, c.space)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker_main, args=(c, i, objective)) for i in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    trials = _trials(c)
    finished = sum(t.state in FINISHED for t in trials)
    # the target, plus at most the trials the other two processes had in flight
    assert 8 <= finished <= 10, [t.state.name for t in trials]
    assert len({t.user_attrs["worker"] for t in trials}) == 3  # all three took part
    assert not [t for t in trials if t.state == TrialState.RUNNING]


@pytest.mark.slow
def test_a_killed_worker_s_trial_fails_with_the_reason_and_the_budget_is_finished(
    tmp_path: Path, tiny_space: Path, sleepy: Path
) -> None:
    from sleepy_objective import sleepy as objective

    c = _config(tmp_path, tiny_space, trials=6, workers=2)
    space = load_space(str(tiny_space))
    open_study(c, space.name, space.dataset, c.space)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            run_local(c, space, objective)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    victim = _wait_for(sleepy, 1)[0]
    os.kill(victim, signal.SIGKILL)  # as the kernel's out-of-memory killer does
    thread.join(timeout=300)
    assert not thread.is_alive() and not errors, errors
    trials = _trials(c)
    assert sum(t.state in FINISHED for t in trials) >= 6  # the run did not end at 5 of 6
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(failed) == 1 and str(victim) in failed[0].user_attrs["fail_reason"]


@pytest.mark.slow
def test_workers_stop_when_the_search_process_is_killed(
    tmp_path: Path, tiny_space: Path, sleepy: Path
) -> None:
    c = _config(tmp_path, tiny_space, trials=200, workers=2)
    script = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from sleepy_objective import sleepy\n"
        "from nas_skip.searching import SearchConfig\n"
        "from nas_skip.searching._local import run_local\n"
        "from nas_skip.searching._storage import open_study\n"
        "from nas_skip.spaces import load_space\n"
        f"c = SearchConfig(**{c.__dict__!r})\n"
        "space = load_space(c.space)\n"
        "open_study(c, space.name, space.dataset, c.space)\n"
        "run_local(c, space, sleepy)\n"
    )
    env = {**os.environ, "NAS_SKIP_TEST_SLEEP": "2"}
    parent = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], env=env)
    try:
        workers = _wait_for(sleepy, 2)
    finally:
        parent.kill()  # kill -9: no chance to stop its workers itself
        parent.wait()
    deadline = time.monotonic() + 30
    while not all(_dead(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert all(_dead(pid) for pid in workers), "workers ran on without their search"
    trials = _trials(c)
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    reasons = [t.user_attrs.get("fail_reason", "") for t in trials if t.state == TrialState.FAIL]
    assert reasons and all(f"search process (pid {parent.pid}) died" in r for r in reasons)
