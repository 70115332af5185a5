"""The Ray backend on a real multi-node cluster: a head and worker nodes on this machine.

Every node is a real raylet (``ray.cluster_utils.Cluster``, see nas_skip.searching._cluster)
on 127.0.0.1 with token authentication on; the study lives in the machine's PostgreSQL, as
on a cluster of machines. The searches are the command line's, run as users run them
(``nas-skip search --backend ray --ray-address 127.0.0.1:PORT``), except where the test
must watch Ray from inside the driver (GPU packing, a node killed mid-search).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from helpers import write_space
from optuna.trial import TrialState

from nas_skip.searching import SearchConfig, search
from nas_skip.searching._cluster import LoopbackCluster, kill_when_training, loopback_cluster
from nas_skip.searching._ray_searcher import node_label
from nas_skip.searching._storage import make_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)
pytestmark = pytest.mark.slow
DATASET = "mnist1d"  # cached as .npz after its first use


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackCluster]:
    """A head and two workers of one CPU each, the second declaring one GPU; token
    authentication on; this process joins it as a driver."""
    saved = dict(os.environ)
    token_dir = tmp_path_factory.mktemp("ray-token")
    nodes = [{"num_cpus": 1}, {"num_cpus": 1}, {"num_cpus": 1, "num_gpus": 1}]
    with loopback_cluster(nodes, token_dir=token_dir) as c:
        import ray

        ray.init(address=c.address, log_to_driver=False)
        yield c
    os.environ.clear()
    os.environ.update(saved)
    from ray._private.authentication_test_utils import reset_auth_token_state

    reset_auth_token_state()  # the next Ray of this process runs without a token


def labels(c: LoopbackCluster) -> list[str]:
    return [node_label("127.0.0.1", c.node_id(i)) for i in range(len(c.nodes))]


def first_three(c: LoopbackCluster) -> set[str]:
    """The nodes the fixture started (a test adds nodes, and kills one)."""
    return set(labels(c)[:3])


def cli(*args: object, cwd: Path) -> subprocess.Popen[str]:
    """``nas-skip`` in a subprocess with this process's environment (the cluster's token)."""
    return subprocess.Popen(
        [sys.executable, "-m", "nas_skip.cli", *map(str, args)],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "COLUMNS": "100"},
    )  # fmt: skip


def search_args(c: LoopbackCluster, space: Path, storage: str, study: str,
                **kw: Any) -> list[str]:  # fmt: skip
    args = {"--space": space, "--dataset": DATASET, "--backend": "ray",
            "--ray-address": c.address, "--storage": storage, "--study": study,
            "--workers": 3, "--trials": 6, "--epochs": 1, "--seed": 0,
            "--artifacts": space.parent / "artifacts", **kw}  # fmt: skip
    return [str(x) for pair in args.items() for x in pair]


@pytest.fixture
def pg(postgres: str) -> Iterator[optuna.storages.RDBStorage]:
    """One storage object on the PostgreSQL database for the test's own reads: a URL per
    read would open an engine, and its connections, each time (the server allows 100)."""
    storage = optuna.storages.RDBStorage(postgres)
    yield storage
    storage.engine.dispose()


def trials(storage: optuna.storages.BaseStorage, study: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        body = response.read()
    return json.loads(body) if body[:1] in (b"{", b"[") else body


def test_a_cli_search_spreads_over_every_node_and_the_dashboard_sees_it_all(
    cluster: LoopbackCluster, tmp_path: Path, postgres: str, pg: Any, study_name: str
) -> None:
    space = write_space(tmp_path)
    proc = cli("search", *search_args(cluster, space, postgres, study_name), cwd=tmp_path)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    done = trials(pg, study_name)
    finished = [t for t in done if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 6 and not [t for t in done if t.state == TrialState.RUNNING]
    # every node trained some, and each trial says which
    assert {t.user_attrs["node"] for t in done} == first_three(cluster)
    assert all(t.user_attrs["device"] == "cpu" for t in done)
    assert len({t.user_attrs["worker"] for t in done}) == 1  # one driver asked them all
    # the dashboard, on the head, serves every node's notes and drawings
    dash = cli("dashboard", "--storage", postgres, "--study", study_name, "--port", "0",
               "--artifacts", tmp_path / "artifacts", cwd=tmp_path)  # fmt: skip
    try:
        assert dash.stdout is not None
        line, deadline = "", time.monotonic() + 60
        while "open http" not in line and time.monotonic() < deadline:
            line = dash.stdout.readline()
        base = line.split()[1].split("/dashboard/")[0]
        assert base.startswith("http://127.0.0.1:")
        summaries = get(f"{base}/api/studies")["study_summaries"]
        ids = {s["study_name"]: s["study_id"] for s in summaries}
        served = get(f"{base}/api/studies/{ids[study_name]}")["trials"]
        by_node: dict[str, int] = {}
        for t in served:
            node = next(a["value"] for a in t["user_attrs"] if a["key"] == "node")
            assert t["note"]["body"], f"trial {t['number']} has no note"
            drawing = t["artifacts"][0]
            path = f"/artifacts/{ids[study_name]}/{t['trial_id']}/{drawing['artifact_id']}"
            assert len(get(base + path)) > 100  # the topology, drawn on that node
            by_node[node] = by_node.get(node, 0) + 1
        assert set(by_node) == first_three(cluster)
    finally:
        dash.send_signal(signal.SIGINT)
        dash.communicate(timeout=30)


def test_a_quarter_gpu_per_trial_packs_four_trials_on_a_declared_gpu(
    cluster: LoopbackCluster, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    import ray

    gpu_node = labels(cluster)[2]
    assert ray.cluster_resources()["GPU"] == 1.0
    free: list[float] = []  # the GPUs Ray had free, every 50 ms while the search ran
    running = threading.Event()
    running.set()

    def watch() -> None:
        while running.is_set():
            free.append(ray.available_resources().get("GPU", 0.0))  # no key: none free
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        config = SearchConfig(space=str(write_space(tmp_path)), dataset=DATASET, backend="ray",
                              ray_address=cluster.address, trials=8, epochs=1, seed=0,
                              workers=8, gpus_per_trial=0.25, cpus_per_trial=0.25,
                              storage=f"sqlite:///{tmp_path / 'study.db'}",
                              artifacts=str(tmp_path / "artifacts"))  # fmt: skip
        result = search(config, progress=False)
    finally:
        running.clear()
        watcher.join()
    assert result.finished == 8
    assert max(free) == 1.0 and min(free) == 0.0  # four trials held a quarter each at once
    assert set(free) <= {0.0, 0.25, 0.5, 0.75, 1.0}
    done = result.study.get_trials(deepcopy=False)
    assert {t.user_attrs["node"] for t in done} == {gpu_node}  # the only node with a GPU
    assert {t.user_attrs["cuda_visible_devices"] for t in done} == {"0"}  # Ray's choice
    assert {t.user_attrs["device"] for t in done} == {"cpu"}  # no CUDA here: the CPU
    err = capfd.readouterr().err
    warning = f"warning: asked for 0.25 GPU but torch sees no CUDA on node {gpu_node}"
    assert err.count(warning) == 1, err  # once, not per trial


def test_a_node_killed_mid_search_fails_its_trials_and_the_rest_finish(
    cluster: LoopbackCluster, tmp_path: Path
) -> None:
    # two more nodes: 5 CPUs for 5 trials at once, so both get trials; whichever first
    # trains one dies (the cluster's first three nodes stay up for the other tests)
    added = [cluster.add_node(num_cpus=1), cluster.add_node(num_cpus=1)]
    names = dict(zip(labels(cluster)[-2:], added, strict=True))
    space = write_space(tmp_path, width="[256]", depth="{low: 3, high: 3}")
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    config = SearchConfig(space=str(space), dataset=DATASET, backend="ray", trials=12, epochs=4,
                          seed=0, workers=5, storage=storage, ray_address=cluster.address,
                          artifacts=str(tmp_path / "artifacts"), pruning=False)  # fmt: skip
    make_storage(storage)  # its tables, made before the watcher reads them
    with kill_when_training(names, storage, "tiny-mnist1d") as killed:
        result = search(config, progress=False)
    lost = [label for label, _ in killed]
    assert lost, "no trial ran on the nodes to kill"
    done = result.study.get_trials(deepcopy=False)
    assert result.finished == 12 and not [t for t in done if t.state == TrialState.RUNNING]
    failed = [t for t in done if t.state == TrialState.FAIL]
    assert failed and all(t.user_attrs["node"] == lost[0] for t in failed)
    for t in failed:  # the GCS declared it dead, or its raylet no longer answers
        assert t.user_attrs["fail_reason"].startswith(f"its Ray node {lost[0]} died")
    # nothing evaluated twice: one Ray trial per Optuna trial
    ray_ids = [t.user_attrs["ray_trial_id"] for t in done if "ray_trial_id" in t.user_attrs]
    assert len(ray_ids) == len(set(ray_ids))


def test_a_killed_driver_is_resumed_by_rerunning_its_command(
    cluster: LoopbackCluster, tmp_path: Path, postgres: str, pg: Any, study_name: str
) -> None:
    space = write_space(tmp_path, width="[256]", depth="{low: 3, high: 3}")
    args = search_args(cluster, space, postgres, study_name, **{"--trials": 12, "--epochs": 3})
    first = cli("search", *args, cwd=tmp_path)
    deadline = time.monotonic() + 300
    before: list[optuna.trial.FrozenTrial] = []
    while time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.2)
        with_names = optuna.get_all_study_names(pg)
        if study_name in with_names:
            before = trials(pg, study_name)
            states = [t.state for t in before]
            if states.count(TrialState.COMPLETE) >= 2 and TrialState.RUNNING in states:
                break
    exited = first.poll()
    first.send_signal(signal.SIGKILL)
    _, first_err = first.communicate(timeout=30)
    assert exited is None and study_name in optuna.get_all_study_names(pg), first_err
    before = trials(pg, study_name)
    complete = {t.number: t.values for t in before if t.state == TrialState.COMPLETE}
    running = {t.number for t in before if t.state == TrialState.RUNNING}
    assert len(complete) >= 2 and running, [t.state for t in before]
    again = cli("search", *args, cwd=tmp_path)
    out, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    after = {t.number: t for t in trials(pg, study_name)}
    assert {n: after[n].values for n in complete} == complete  # nothing finished is lost
    for n in running:  # what the dead driver left RUNNING is failed, and replaced
        assert after[n].state == TrialState.FAIL
        assert after[n].user_attrs["fail_reason"].startswith("left RUNNING by a run that died")
    finished = [t for t in after.values() if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 12 and not [t for t in after.values() if t.state == TrialState.RUNNING]


def test_a_driver_without_the_cluster_s_token_is_refused_in_one_line(
    cluster: LoopbackCluster, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH_TOKEN")}
    env["RAY_AUTH_TOKEN"] = "0" * 64  # a token, not the cluster's
    done = subprocess.run(
        [sys.executable, "-m", "nas_skip.cli", "search", "--space", write_space(tmp_path),
         "--dataset", DATASET, "--backend", "ray", "--ray-address", cluster.address,
         "--storage", f"sqlite:///{tmp_path / 'study.db'}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    last = done.stderr.splitlines()[-1]  # after Ray's own lines, which say InvalidAuthToken
    assert last.startswith(f"error: --ray-address {cluster.address}: cannot join the Ray cluster")
    assert "RAY_AUTH_TOKEN_PATH" in last


# --- what the driver makes of Ray's news -------------------------------------------------
DEAD = {"NodeID": "97f7724a" + "0" * 48, "NodeManagerAddress": "127.0.0.1", "Alive": False,
        "NodeManagerPort": 40001}  # fmt: skip
ALIVE = {"NodeID": "30adcde8" + "1" * 48, "NodeManagerAddress": "127.0.0.1", "Alive": True,
         "NodeManagerPort": 40002}  # fmt: skip


@pytest.mark.parametrize(("node", "answers", "reason"), [
    ("127.0.0.1/97f7724a", True, "its Ray node 127.0.0.1/97f7724a died"),  # the GCS says so
    ("127.0.0.1/30adcde8", False, "its Ray node 127.0.0.1/30adcde8 died"),  # not yet, but
    # its raylet is gone
    ("127.0.0.1/30adcde8", True,
     "its Ray worker on node 127.0.0.1/30adcde8 was lost (the process died)"),
    ("10.0.0.9/ffffffff", True, "its Ray worker on node 10.0.0.9/ffffffff was lost "
     "(the process died)"),  # a node the GCS no longer lists
    (None, True, "the Ray trial failed before it started on a node"),
])  # fmt: skip
def test_a_lost_trial_says_which_node_it_lost(node: str | None, answers: bool,
                                              reason: str) -> None:  # fmt: skip
    from nas_skip.searching._ray_searcher import lost_reason

    asked: list[tuple[str, int]] = []

    def reachable(address: str, port: int) -> bool:
        asked.append((address, port))
        return answers

    assert lost_reason(node, [DEAD, ALIVE], reachable) == reason
    assert asked in ([], [("127.0.0.1", 40002)])  # only a live node's raylet is asked


def test_a_raylet_that_is_gone_does_not_answer(cluster: LoopbackCluster) -> None:
    from nas_skip.searching._ray_searcher import raylet_answers

    head = cluster.nodes[0]
    assert raylet_answers("127.0.0.1", head.node_manager_port)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    assert not raylet_answers("127.0.0.1", free)


@pytest.mark.parametrize(("address", "loopback"), [
    (None, True), ("127.0.0.1:6379", True), ("localhost:6379", True), ("[::1]:6379", True),
    ("ray://127.0.0.1:10001", True), ("auto", False), ("10.0.0.5:6379", False),
    ("head.example:6379", False),
])  # fmt: skip
def test_a_cluster_on_loopback_is_joined_as_a_loopback_driver(
    address: str | None, loopback: bool
) -> None:
    from nas_skip.searching._ray import _on_loopback

    assert _on_loopback(address) is loopback
