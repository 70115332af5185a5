"""A Ray cluster of several nodes on this machine, on 127.0.0.1 only (tests, benchmarks).

Each node is a real raylet with its own object store and worker processes, started by
Ray's ``ray.cluster_utils.Cluster``; the head also runs the GCS. Drivers join it with
``ray.init(address=cluster.address)`` or ``nas-skip search --ray-address ADDRESS`` in a
process whose environment holds :func:`cluster_env`. Everything listens on and talks to
127.0.0.1:

- ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` before ``import ray`` makes every node's IP
  127.0.0.1 (its ban on more than one node applies to ``ray start`` workers only);
- the head's dashboard is not started (it probes cloud metadata addresses), and the
  node processes start with ``HTTP(S)_PROXY`` pointing at a closed loopback port for
  anything else that would look outside (this process keeps its own);
- with ``token``, Ray's token authentication is on as Ray documents it
  (``RAY_AUTH_MODE=token``, the token file in ``RAY_AUTH_TOKEN_PATH`` for every node and
  driver).

Nodes are told apart by their node ids (each also has the resource ``node:127.0.0.1``).
:func:`kill_node` kills a node's raylet and the workers under it with SIGKILL, as a
machine that loses power; health checks every 0.5 s let the GCS declare it dead in about
a second (Ray's default takes about 15 s).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: the environment of every process of a loopback cluster (nodes and drivers)
LOOPBACK_CLUSTER_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
}
#: set only while node processes start (they inherit it), never left in this process
NODE_SPAWN_ENV = {
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "NO_PROXY": "127.0.0.1,localhost,::1",
}
#: health checks often enough that a dead node is declared dead in about a second
FAST_HEALTH_CHECKS = {
    "health_check_period_ms": 500,
    "health_check_timeout_ms": 500,
    "health_check_failure_threshold": 2,
    "health_check_initial_delay_ms": 0,
}


@dataclass
class LoopbackCluster:
    """A running cluster: its address, its nodes (head first) and their environment."""

    cluster: Any  # ray.cluster_utils.Cluster
    env: dict[str, str]
    nodes: list[Any] = field(default_factory=list)  # ray._private.node.Node, head first

    @property
    def address(self) -> str:
        """The GCS address drivers join (127.0.0.1:PORT)."""
        return str(self.cluster.address)

    def node_id(self, index: int) -> str:
        """The hex node id of the ``index``-th node (0 is the head)."""
        return str(self.nodes[index].node_id)

    def add_node(self, **resources: Any) -> Any:
        """Start one more node (``num_cpus``, ``num_gpus``, ``resources``) and wait for it."""
        with _spawning():
            node = self.cluster.add_node(node_ip_address="127.0.0.1", **resources)
        self.cluster.wait_for_nodes()
        self.nodes.append(node)
        return node


@contextlib.contextmanager
def _spawning() -> Iterator[None]:
    """:data:`NODE_SPAWN_ENV` while nodes start, this process's own values afterwards."""
    saved = {name: os.environ.get(name) for name in NODE_SPAWN_ENV}
    os.environ.update(NODE_SPAWN_ENV)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def cluster_env(token: Path | None = None) -> dict[str, str]:
    """The variables every process of a loopback cluster needs (drivers included)."""
    env = dict(LOOPBACK_CLUSTER_ENV)
    if token is not None:
        env |= {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    else:
        env["RAY_AUTH_MODE"] = "disabled"
    return env


@contextlib.contextmanager
def loopback_cluster(
    nodes: list[dict[str, Any]], token_dir: Path | None = None, fast_health: bool = True
) -> Iterator[LoopbackCluster]:
    """Start a head and worker nodes on 127.0.0.1; shut all of them down at the end.

    Args:
        nodes: per node, head first, what it declares: ``{"num_cpus": 1}``,
            ``{"num_cpus": 1, "num_gpus": 1}`` (a GPU Ray hands out; CUDA need not exist).
        token_dir: where to write a fresh token and turn token authentication on; None:
            no authentication (a test cluster on loopback).
        fast_health: health checks every 0.5 s (a dead node is declared in ~1 s).

    The variables of :func:`cluster_env` are set in this process, as Ray must see them
    before it is imported (its authentication mode is read again here, as Ray's own
    tests do); they stay set afterwards.
    """
    token = None
    if token_dir is not None:
        token = token_dir / "ray_auth_token"
        token.write_text(secrets.token_hex(32))
        token.chmod(0o600)
    env = cluster_env(token)
    os.environ.update(env)
    from ray._private import ray_constants
    from ray._private.authentication_test_utils import reset_auth_token_state
    from ray.cluster_utils import Cluster

    reset_auth_token_state()  # Ray read the authentication mode when it was imported

    ray_constants.ENABLE_RAY_CLUSTER = False  # in case Ray was imported before the variable
    head, *workers = nodes
    head_args = {"node_ip_address": "127.0.0.1", "include_dashboard": False, **head}
    if fast_health:
        head_args["_system_config"] = dict(FAST_HEALTH_CHECKS)
    with _spawning():
        cluster = Cluster(initialize_head=True, head_node_args=head_args)
    out = LoopbackCluster(cluster, env, [cluster.head_node])
    try:
        for resources in workers:
            out.add_node(**resources)
        yield out
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()


def raylet_pids(node: Any) -> list[int]:
    """The raylet of ``node`` and every process under it (its workers)."""
    import psutil  # Ray ships it

    raylet = psutil.Process(node.all_processes["raylet"][0].process.pid)
    return [raylet.pid, *(p.pid for p in raylet.children(recursive=True))]


def kill_node(node: Any) -> list[int]:
    """SIGKILL a node's raylet and its workers at once: the node is lost mid-work.

    Returns:
        The pids killed.
    """
    pids = raylet_pids(node)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids


@contextlib.contextmanager
def kill_when_training(
    nodes: dict[str, Any], storage: str, study: str
) -> Iterator[list[tuple[str, float]]]:
    """While the block runs, watch ``study``: the first of ``nodes`` (trial ``node`` label
    -> node) seen training a RUNNING trial is killed (:func:`kill_node`).

    Yields:
        A list that holds ``(label, time.time())`` once a node was killed.
    """
    import optuna
    from optuna.trial import TrialState

    killed: list[tuple[str, float]] = []
    watching = threading.Event()
    watching.set()

    def watch() -> None:
        while not killed and watching.is_set():
            time.sleep(0.1)
            try:
                running = optuna.load_study(study_name=study, storage=storage).get_trials(
                    deepcopy=False, states=(TrialState.RUNNING,))  # fmt: skip
            except KeyError:  # not made yet
                continue
            for label in {t.user_attrs.get("node") for t in running} & set(nodes):
                kill_node(nodes[label])
                killed.append((str(label), time.time()))
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield killed
    finally:
        watching.clear()
        watcher.join()
