"""The Ray backend on a real local Ray, loopback only: what lands in the study, totals,
ASHA stops as PRUNED, failures, several objectives, GPU requests, and Ray's sockets.

Each Tuner run starts fresh Ray actors (about 4 s of imports and warm-up each on 2 cores),
so the tests group their checks into few runs; the searcher's bookkeeping is tested on
its own, without a cluster.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from conftest import write_space
from optuna.trial import TrialState

from nas_skip.searching import SearchConfig, SearchError, search
from nas_skip.searching._ray import _absolute, _resources, _shipped_config
from nas_skip.spaces import load_space

optuna.logging.set_verbosity(optuna.logging.WARNING)
pytestmark = pytest.mark.slow
LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}
DATASET = "mnist1d"  # cached as .npz after its first use: no import cost in each Ray actor


def _import_ray() -> Any:
    """Ray, imported loopback-only: the variable must precede ``import ray`` (FIELD-NOTES)."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False  # in case another test module imported Ray first
    return ray


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    """A local Ray of 2 CPUs on loopback only, shared by the module's searches."""
    ray = _import_ray()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def run(tmp_path: Path, space: Path, **kw: Any) -> Any:
    config = SearchConfig(
        space=str(space),
        dataset=kw.pop("dataset", DATASET),
        backend="ray",
        storage=kw.pop("storage", f"sqlite:///{tmp_path / 'study.db'}"),
        artifacts=str(tmp_path / "artifacts"),
        epochs=kw.pop("epochs", 2),
        seed=kw.pop("seed", 0),
        **kw,
    )
    return search(config, progress=False)


def listening(pid: int) -> list[tuple[str, str, int]]:
    """(process name, address, port) of every listening TCP socket of ``pid`` and of its
    descendants: a driver's Ray (GCS, raylet, workers) all descend from it."""
    _import_ray()
    import psutil  # Ray ships it (ray/thirdparty_files) and puts it on sys.path

    out = []
    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        try:
            for c in proc.net_connections(kind="tcp"):
                if c.status == psutil.CONN_LISTEN:
                    out.append((proc.name(), c.laddr.ip, c.laddr.port))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return out


# --- pieces, without a cluster ----------------------------------------------------------------
def test_storage_paths_become_absolute_for_workers() -> None:
    # Tune runs each trial in its own folder: a relative SQLite path would be another file
    assert _absolute("sqlite:///runs/x.db") == f"sqlite:///{Path('runs/x.db').resolve()}"
    assert _absolute("sqlite:////abs/x.db") == "sqlite:////abs/x.db"
    assert _absolute("journal:j.log") == f"journal:{Path('j.log').resolve()}"
    assert _absolute("postgresql://u@127.0.0.1/db") == "postgresql://u@127.0.0.1/db"
    config = SearchConfig(space="deep_mlp", artifacts="a", extra={"hook": object()})
    shipped = _shipped_config(config)
    assert Path(shipped.artifact_dir()).is_absolute() and shipped.extra == {}
    with pytest.raises(SearchError, match="Ray workers need a storage"):
        _shipped_config(config.with_(storage="sqlite:///:memory:"))


def test_every_sampler_pickles_as_ray_ships_it() -> None:
    """Tune pickles the searcher and its sampler; Optuna 5.1's NSGA-II holds a lock."""
    import pickle

    from nas_skip.searching._samplers import make_sampler

    for name in ("local-search", "tpe", "random", "nsga2", "evolution"):
        several = name in ("nsga2", "tpe", "random")
        objectives = ("accuracy", "params") if several else ("accuracy",)
        sampler = make_sampler(SearchConfig(space="deep_mlp", sampler=name, objectives=objectives))
        back = pickle.loads(pickle.dumps(sampler))  # noqa: S301 (our own object, in memory)
        assert type(back) is type(sampler)


def test_resources_ask_for_gpus_only_where_there_are_some() -> None:
    config = SearchConfig(space="deep_mlp", gpus_per_trial=0.5, cpus_per_trial=1)
    with pytest.warns(UserWarning, match="Ray sees no GPU"):
        assert _resources(config, {"CPU": 2.0}) == {"cpu": 1.0, "gpu": 0.0}
    assert _resources(config, {"CPU": 2.0, "GPU": 1.0}) == {"cpu": 1.0, "gpu": 0.5}
    with pytest.raises(SearchError, match="--cpus-per-trial 4: Ray has 2 CPUs"):
        _resources(config.with_(cpus_per_trial=4), {"CPU": 2.0, "GPU": 1.0})


def _searcher(tmp_path: Path, **kw: Any) -> Any:
    _import_ray()
    from nas_skip.searching._ray_searcher import StudySearch

    config = SearchConfig(space=str(write_space(tmp_path)), epochs=3, **kw)
    space = load_space(config.space)
    storage = optuna.storages.InMemoryStorage()
    optuna.create_study(storage=storage, study_name="s", directions=config.directions)
    return StudySearch(config, space, storage, "s", optuna.samplers.RandomSampler(seed=0))


def test_searcher_keeps_the_total_and_records_prunes(tmp_path: Path) -> None:
    from ray.tune.search import Searcher

    s = _searcher(tmp_path, trials=2)
    first, second = s.suggest("a"), s.suggest("b")
    assert {"genotype", "hparams", "optuna_trial_id"} <= set(first) and second is not None
    assert s.suggest("c") is None  # 2 running for a total of 2: wait, one may fail
    s.on_trial_result("a", {"epoch": 1, "accuracy": 0.5, "final": False})
    s.on_trial_complete("a", {"epoch": 2, "accuracy": 0.25, "final": False})  # ASHA stop
    s.on_trial_complete("b", error=True)
    study = s.study
    a, b = study.trials
    assert a.state == TrialState.PRUNED and a.intermediate_values == {1: 0.5, 2: 0.25}
    assert a.values == [0.25] and a.user_attrs["pruned_reason"].endswith("after epoch 2")
    assert b.state == TrialState.FAIL  # Tune's error, before its trainable recorded a node:
    assert b.user_attrs["fail_reason"].startswith("the Ray trial failed before it started")
    assert s.suggest("c") is not None  # the failure is replaced
    s.on_trial_complete("c", {"epoch": 3, "accuracy": 0.75, "final": True, "duplicate": False})
    assert study.trials[2].values == [0.75] and study.trials[2].intermediate_values == {3: 0.75}
    assert s.suggest("d") == Searcher.FINISHED
    assert s.open_trials() == []


def test_searcher_counts_in_memory_and_fails_non_finite_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ray.tune.search import Searcher

    from nas_skip.searching import _ray_searcher
    from nas_skip.searching._storage import worker_id

    s = _searcher(tmp_path, trials=3)
    assert s.suggest("a") is not None
    assert s.study.trials[0].user_attrs["worker"] == worker_id()  # the driver owns it
    # another process finishes 3 trials: seen at the next count, not at every suggest
    for _ in range(3):
        s.study.add_trial(optuna.trial.create_trial(value=0.5))
    assert s.suggest("b") is not None
    monkeypatch.setattr(_ray_searcher, "RECOUNT_SECONDS", 0.0)
    assert s.suggest("c") == Searcher.FINISHED

    # a final report without finite values (Optuna refuses to tell them): FAIL, with the
    # reason, not counted, and replaced
    s = _searcher(tmp_path, trials=1, objectives=("accuracy", "params"))
    assert s.suggest("a") is not None
    s.on_trial_complete("a", {"epoch": 3, "accuracy": 0.5, "params": math.nan, "final": True,
                              "duplicate": False})  # fmt: skip
    (t,) = s.study.trials
    assert t.state == TrialState.FAIL and t.user_attrs["fail_reason"].startswith("non-finite")
    assert s.suggest("b") is not None
    s.on_trial_complete("b", {"epoch": 3, "accuracy": 0.5, "params": 10, "final": True,
                              "duplicate": False})  # fmt: skip
    assert s.study.trials[1].values == [0.5, 10] and s.suggest("c") == Searcher.FINISHED


def test_searcher_prunes_invalid_samples_and_stops_at_the_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ray.tune.search import Searcher

    from nas_skip.spaces import Space, SpaceError

    def invalid(self: Space, trial: Any) -> Any:
        raise SpaceError("no genotype here")

    s = _searcher(tmp_path, trials=3, timeout=0.5)
    with monkeypatch.context() as m:
        m.setattr(Space, "sample", invalid)
        assert s.suggest("a") is None  # pruned with its reason; Tune asks again
    (t,) = s.study.trials
    assert t.state == TrialState.PRUNED and "no genotype here" in t.user_attrs["fail_reason"]
    assert s.suggest("b") is not None
    time.sleep(0.6)
    assert s.suggest("c") == Searcher.FINISHED and s.stop_reason == "timeout"


def test_searcher_stops_after_a_failure_streak_and_fails_open_trials(tmp_path: Path) -> None:
    from ray.tune.search import Searcher

    s = _searcher(tmp_path, trials=1, objectives=("accuracy", "params"))
    for k in range(10):  # max(10, trials) in a row, as the local backend
        assert s.suggest(str(k)) is not None
        s.on_trial_complete(str(k), error=True)
    assert s.suggest("x") == Searcher.FINISHED and s.stop_reason == "failures"
    s.stop_reason = None
    s.suggest("y")
    assert s.fail_open_trials("interrupted") == 1
    last = s.study.trials[-1]
    assert last.state == TrialState.FAIL and last.user_attrs["fail_reason"] == "interrupted"


# --- searches on the module's Ray -------------------------------------------------------------
def test_trials_land_with_attributes_and_reruns_add_only_the_missing(
    tmp_path: Path, ray_local: None
) -> None:
    # 2 genotypes and 4 (lr, momentum) points: repeats are certain; lr 100 diverges
    space = write_space(tmp_path, "rep", depth="1", width="8", kinds="[none, add]",
                        extra="  momentum: [0.0, 0.9]")  # fmt: skip
    space.write_text(space.read_text().replace("lr: 0.05", "lr: [0.05, 100.0]"))
    first = run(tmp_path, space, trials=4, epochs=3, sampler="random", pruning=False)
    assert first.finished == 4 and len(first.study.get_trials()) == 4
    again = run(tmp_path, space, trials=4, epochs=3, sampler="random", pruning=False)
    assert len(again.study.get_trials()) == 4  # nothing to do
    more = run(tmp_path, space, trials=10, epochs=3, sampler="random", pruning=False)
    trials = more.study.get_trials()
    assert more.finished == 10 and len(trials) == 10  # no FAIL here: exactly the missing 6
    assert len({t.user_attrs["ray_trial_id"] for t in trials}) == 10
    for t in trials:
        a = t.user_attrs
        assert {"genotype", "hash", "params", "flops", "worker", "ray_worker"} <= set(a)
        assert a["worker"].endswith(f":{os.getpid()}")  # the driver asked and owns it
        assert a["ray_worker"] != a["worker"]  # a Ray actor trained it
        assert {"train:lr", "train:momentum"} <= set(t.params)  # the space's own names
        assert any(name.startswith("edge:") for name in t.params)
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    diverged = [t for t in trials if t.state == TrialState.PRUNED]
    assert done and all(t.params["train:lr"] == 100.0 for t in diverged)
    for t in diverged:
        assert t.user_attrs["pruned_reason"].startswith("diverged")
    dups = [t for t in done if "duplicate_of" in t.user_attrs]
    assert dups, "10 trials over 8 points repeated none"
    for t in done:
        if t in dups:
            original = more.study.trials[t.user_attrs["duplicate_of"]]
            assert t.values == original.values and t.intermediate_values == {}
        else:
            assert sorted(t.intermediate_values) == [1, 2, 3]
            assert t.intermediate_values[3] == t.values[0] == t.user_attrs["val_accuracy"]


def test_asha_stops_are_pruned_with_the_stopping_value(tmp_path: Path, ray_local: None) -> None:
    space = write_space(tmp_path)
    result = run(tmp_path, space, trials=6, epochs=3, sampler="random",
                 extra={"asha_grace_period": 1})  # fmt: skip
    trials = result.study.get_trials()
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert result.finished == 6 and len(trials) == 6
    assert pruned, "ASHA (grace 1, eta 3) stopped none of 6 trials"
    for t in pruned:
        assert t.user_attrs["pruned_reason"].startswith("stopped by ASHA after epoch")
        last = max(t.intermediate_values)
        assert last < 3 and t.values == [t.intermediate_values[last]]
        assert "val_accuracy" not in t.user_attrs  # it never finished training
    for t in trials:
        if t.state == TrialState.COMPLETE and "duplicate_of" not in t.user_attrs:
            assert sorted(t.intermediate_values) == [1, 2, 3]


def test_a_failing_trial_is_recorded_and_the_search_goes_on(
    tmp_path: Path, ray_local: None, capfd: pytest.CaptureFixture[str]
) -> None:
    # two layers 2**20 wide need 4 TiB of weights: the trials that draw that width fail
    # when the network is built, the others run
    space = write_space(tmp_path, "flaky", depth="2", width=f"[8, {2**20}]")
    result = run(tmp_path, space, trials=3, sampler="random", seed=4)
    trials = result.study.get_trials()
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert result.finished == 3 and failed and len(trials) == 3 + len(failed)
    err = capfd.readouterr().err
    for t in failed:
        assert t.params["width"] == 2**20 and "ray_trial_id" in t.user_attrs
        assert "can't allocate memory" in t.user_attrs["fail_reason"]
        assert f"warning: trial {t.number} failed: RuntimeError" in err
    assert "Traceback" not in err  # one line per failure, not Tune's traceback
    # Tune keeps the failure's traceback, and no per-trial result logs: the study has them
    runs = tmp_path / "ray"
    assert sorted(p.parent.name for p in runs.rglob("error.txt")) == sorted(
        f"trial_{t.number}" for t in failed)  # fmt: skip
    assert not [*runs.rglob("result.json"), *runs.rglob("progress.csv"),
                *runs.rglob("events.out.tfevents*")]  # fmt: skip


def test_several_objectives_and_a_gpu_request_without_gpus(
    tmp_path: Path, ray_local: None
) -> None:
    space = write_space(tmp_path)
    with pytest.warns(UserWarning, match="Ray sees no GPU"):  # and it does not hang
        result = run(tmp_path, space, trials=3, objectives=("accuracy", "params"),
                     sampler="nsga2", gpus_per_trial=0.5)  # fmt: skip
    study = result.study
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == 3
    for t in done:
        assert len(t.values) == 2 and t.values[1] == t.user_attrs["params"]
        assert t.intermediate_values == {}  # Optuna keeps none for several objectives
        assert all(math.isfinite(v) for v in t.values)


def test_the_module_ray_listens_on_loopback_only(ray_local: None) -> None:
    seen = listening(os.getpid())
    assert {"gcs_server", "raylet"} <= {name for name, _, _ in seen}
    assert {ip for _, ip, _ in seen} <= LOOPBACK, sorted(set(seen))


# --- run_ray's own Ray ------------------------------------------------------------------------
def test_search_starts_a_loopback_ray_and_shuts_it_down(tmp_path: Path) -> None:
    space = write_space(tmp_path)
    script = textwrap.dedent(f"""
        from nas_skip.searching import SearchConfig, search
        r = search(SearchConfig(space={str(space)!r}, dataset={DATASET!r}, backend="ray",
                                trials=2, epochs=1, storage="sqlite:///{tmp_path / "s.db"}",
                                artifacts={str(tmp_path / "a")!r}), progress=False)
        assert r.finished == 2, r
        import ray
        assert not ray.is_initialized()
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}  # run_ray sets them
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=tmp_path)
    _import_ray()
    import psutil

    seen: list[tuple[str, str, int]] = []
    tree: set[int] = set()
    while proc.poll() is None:
        try:  # poll while the trials run: the actors that train listen too
            tree |= {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
            seen += listening(proc.pid)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.2)
    assert proc.wait(timeout=120) == 0
    names = {name for name, _, _ in seen}
    assert "raylet" in names and any(n.startswith("ray::") for n in names), names
    assert {ip for _, ip, _ in seen} <= LOOPBACK, sorted(set(seen))
    deadline = time.monotonic() + 10  # ray.shutdown() returned; its processes are going
    while time.monotonic() < deadline:
        left = [p for p in tree if psutil.pid_exists(p)
                and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]  # fmt: skip
        if not left:
            break
        time.sleep(0.2)
    assert not left, f"Ray processes left behind: {left}"


def test_arrays_from_the_python_api_reach_ray_workers(tmp_path: Path, ray_local: None) -> None:
    """``nas_skip.search`` with an in-memory dataset: Ray's actors load it by name."""
    import numpy as np

    import nas_skip

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 120)
    x = (np.eye(3, 5)[y] * 4 + rng.normal(size=(120, 5))).astype(np.float32)
    data = nas_skip.Dataset.from_arrays(x, y, name="blobs")
    space = write_space(tmp_path, "tiny")
    study = nas_skip.search(space, data, trials=3, epochs=1, backend="ray", workers=2, seed=0,
                            storage=f"sqlite:///{tmp_path / 's.db'}", progress=False,
                            artifacts=str(tmp_path / "artifacts"))  # fmt: skip
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) >= 3 and all(t.user_attrs["ray_worker"] for t in done)
    assert study.user_attrs["dataset"].endswith(".npz")  # the arrays, stored once by content


def test_a_script_s_objective_runs_on_ray_and_its_failures_say_why(tmp_path: Path) -> None:
    """A function defined in the user's script (``__main__``) reaches Ray's workers by
    value; the trials it fails store its one-line reason, not a pointer to error.txt."""
    space = write_space(tmp_path)
    script = textwrap.dedent(f"""
        import nas_skip, optuna
        def score(model, data, hparams, report):
            if sum(p.numel() for p in model.parameters()) > 1200:
                raise ValueError("too big for me\\nsecond line")
            report(1, 0.5)
            return float(len(data.x_val))
        study = nas_skip.search({str(space)!r}, {DATASET!r}, trials=3, backend="ray",
                                workers=2, objective=score, seed=0, sampler="random",
                                storage="sqlite:///{tmp_path / "s.db"}", progress=False,
                                artifacts={str(tmp_path / "a")!r})
        for t in study.trials:
            print(t.state.name, t.values, t.user_attrs.get("fail_reason"))
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    complete = [line for line in lines if line.startswith("COMPLETE")]
    failed = [line for line in lines if line.startswith("FAIL")]
    assert len(complete) >= 3 and all(line.startswith("COMPLETE [") for line in complete)
    assert failed and all(line.endswith("ValueError: too big for me") for line in failed), lines


def _validation_rows(model: Any, data: Any, hparams: dict[str, Any], report: Any) -> float:
    """A module-level objective (of a module Ray's workers cannot import: tests/)."""
    return float(len(data.x_val))


def test_a_module_s_objective_reaches_ray_workers_by_value(
    tmp_path: Path, ray_local: None
) -> None:
    import nas_skip

    study = nas_skip.search(write_space(tmp_path), DATASET, trials=2, epochs=1, backend="ray",
                            workers=2, objective=_validation_rows, seed=0, progress=False,
                            storage=f"sqlite:///{tmp_path / 's.db'}",
                            artifacts=str(tmp_path / "a"))  # fmt: skip
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) >= 2 and len({t.values[0] for t in done}) == 1 and done[0].values[0] > 0
    assert all(t.user_attrs["ray_worker"] for t in done)


def test_the_data_reach_ray_workers_through_the_object_store_once(
    tmp_path: Path, ray_local: None
) -> None:
    """The driver loads the dataset and puts it in Ray's object store: the workers read
    no file (here the file is gone before the first trial starts)."""
    import numpy as np

    import nas_skip

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 120)
    x = (np.eye(3, 5)[y] * 4 + rng.normal(size=(120, 5))).astype(np.float32)
    path = nas_skip.Dataset.from_arrays(x, y, name="gone").save(tmp_path)
    result = search(SearchConfig(space=str(write_space(tmp_path)), dataset=str(path),
                                 backend="ray", workers=2, trials=3, epochs=1, seed=0,
                                 storage=f"sqlite:///{tmp_path / 's.db'}",
                                 artifacts=str(tmp_path / "a"),
                                 extra={"after_put": path.unlink}), progress=False)  # fmt: skip
    assert not path.exists()
    assert result.finished >= 3 and result.failed == 0


def test_a_oneshot_network_is_confirmed_on_ray(tmp_path: Path, ray_local: None) -> None:
    """The supernet trains in the driver; its derived network, queued on the study, runs
    as a Ray trial with every choice as derived."""
    space = write_space(tmp_path, "tiny")
    result = run(tmp_path, space, strategy="oneshot", fix={"depth": 2, "width": 8})
    (trial,) = result.study.get_trials()
    record = result.study.user_attrs["oneshot:1"]
    assert trial.state == TrialState.COMPLETE and trial.user_attrs["oneshot"] == 1
    assert trial.user_attrs["ray_worker"]
    assert {k: trial.params[k] for k in record["derived"]} == record["derived"]


def test_a_language_model_search_on_ray_minimises_bits_per_character(
    tmp_path: Path, ray_local: None
) -> None:
    # the same objective as the local backend's: bpc, minimised (ASHA off: both finish)
    from helpers import write_transformer_space

    space = write_transformer_space(tmp_path, "pydoc_lm")
    result = run(tmp_path, space, dataset="pydoc_lm", trials=2, epochs=2, workers=2,
                 pruning=False)  # fmt: skip
    study = result.study
    assert result.objectives == ("bpc",)
    assert study.directions == [optuna.study.StudyDirection.MINIMIZE]
    for t in study.trials:
        assert t.state == TrialState.COMPLETE, t.user_attrs.get("fail_reason")
        assert t.values[0] == t.user_attrs["val_bpc"] < math.log2(97)
        # the per-epoch values Tune saw are bits per character too
        assert sorted(t.intermediate_values) == [1, 2]
        assert t.intermediate_values[2] == t.values[0]
        assert t.intermediate_values[1] > t.values[0]  # it learns
