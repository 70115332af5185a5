"""The multi-node half of ``bench_search.py``: nas-skip's Ray backend on a real cluster.

Every node is a real raylet on this machine, on 127.0.0.1 (``nas_skip.searching._cluster``),
declaring one CPU; the driver is this process. Figures:

- ``cluster_trials_per_s``: trials per second with 1, 2 and 3 nodes on a CPU-bound
  trainable (pure Python, about 1 s a trial, as ``bench_search``'s), counted once each
  node has finished its first trial; ``cluster_speedup_3_nodes`` is 3 nodes over 1 (goal
  >= 2.7 where the machine has 3 free cores: nodes on one machine share its cores, so
  ``cpus`` bounds it).
- ``node_death``: a worker node is killed (SIGKILL of its raylet and workers) when it is
  first seen training a trial of a real search (4 nodes, 12 trials): trials ``lost``
  (left RUNNING, or never told), ``duplicated`` (an Optuna trial run by two Ray trials),
  ``failed`` (recorded FAIL naming the node), and ``seconds_to_fail`` /
  ``seconds_to_next_trial``: from the kill to the lost trial's FAIL and to the first
  trial started after it on the other nodes. Run with Ray's default health checks
  (``default``: a dead node is declared after about 15 s) and with checks every 0.5 s
  (``fast_health``).

Runs alone (``python scripts/bench_search_cluster.py [--quick]``) or from bench_search.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from nas_skip.searching import SearchConfig, search
from nas_skip.searching._cluster import kill_when_training, loopback_cluster
from nas_skip.searching._ray_searcher import node_label
from nas_skip.searching._storage import make_storage

DEATH_SPACE = """name: death
domain: vector
dataset: mnist1d
family: chain
skeleton: {depth: 4, width: [256, 512], ops: [linear_relu], hop_window: 2, kinds: [none, add]}
train: {lr: 0.05, batch_size: 64}
"""


def bench_throughput(tmp: Path, per_node: int) -> dict[str, Any]:
    """Trials per second on 1, 2 and 3 one-CPU nodes (nodes added to one cluster)."""
    import ray
    from bench_search_ray import busy_trainable, ours, rate  # scripts/ is on the path

    rates: dict[str, float] = {}
    with loopback_cluster([{"num_cpus": 1}]) as cluster:
        ray.init(address=cluster.address, log_to_driver=False)
        for nodes in (1, 2, 3):
            if nodes > 1:
                cluster.add_node(num_cpus=1)
            name = f"nodes{nodes}"
            ours(tmp, name, per_node * nodes + nodes, busy_trainable, workers=nodes)
            rates[str(nodes)] = round(rate(tmp, name, nodes), 3)
    return {"cluster_trials_per_s": rates,
            "cluster_speedup_2_nodes": round(rates["2"] / rates["1"], 3),
            "cluster_speedup_3_nodes": round(rates["3"] / rates["1"], 3)}  # fmt: skip


def bench_node_death(tmp: Path, fast_health: bool) -> dict[str, Any]:
    """Kill the first worker node seen training a trial; what the search made of it."""
    import ray

    tag = "fast" if fast_health else "default"
    space = tmp / f"death_{tag}.yaml"
    space.write_text(DEATH_SPACE)
    storage = f"sqlite:///{tmp / f'death_{tag}.db'}"
    with loopback_cluster([{"num_cpus": 1}] * 4, fast_health=fast_health) as cluster:
        ray.init(address=cluster.address, log_to_driver=False)
        workers = {node_label("127.0.0.1", cluster.node_id(i)): cluster.nodes[i]
                   for i in (1, 2, 3)}  # fmt: skip
        config = SearchConfig(space=str(space), backend="ray", trials=12, epochs=3, seed=0,
                              workers=4, storage=storage, ray_address=cluster.address,
                              artifacts=str(tmp / f"artifacts_{tag}"), pruning=False,
                              study=f"death-{tag}")  # fmt: skip
        make_storage(storage)  # its tables, made before the watcher reads them
        with kill_when_training(workers, storage, f"death-{tag}") as killed:
            result = search(config, progress=False)
    done = result.study.get_trials(deepcopy=False)
    nodes = Counter(str(t.user_attrs.get("node")) for t in done)
    if not killed:
        return {"killed": False, "trials_per_node": dict(nodes)}
    label, at = killed[0]
    failed = [t for t in done if t.state == TrialState.FAIL]
    fail_times = [t.datetime_complete.timestamp() for t in failed if t.datetime_complete]
    later = [t.datetime_start.timestamp() for t in done
             if t.datetime_start and t.datetime_start.timestamp() > at]  # fmt: skip
    ray_ids = [t.user_attrs["ray_trial_id"] for t in done if "ray_trial_id" in t.user_attrs]
    return {
        "finished": result.finished,
        "failed": len(failed),
        "fail_reasons": sorted(
            {str(t.user_attrs.get("fail_reason")).split(";")[0] for t in failed}
        ),  # fmt: skip
        "failed_name_the_node": all(label in t.user_attrs.get("fail_reason", "") for t in failed),
        "lost": sum(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in done),
        "duplicated": len(ray_ids) - len(set(ray_ids)),
        "seconds_to_fail": round(min(fail_times) - at, 2) if fail_times else None,
        "seconds_to_next_trial": round(min(later) - at, 2) if later else None,
        "trials_per_node": dict(nodes),
    }


def bench_cluster(tmp: Path, quick: bool) -> dict[str, Any]:
    out = bench_throughput(tmp, 2 if quick else 6)
    out["node_death"] = {"default": bench_node_death(tmp, fast_health=False),
                         "fast_health": bench_node_death(tmp, fast_health=True)}  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with tempfile.TemporaryDirectory() as name:
        out = {"cpus": os.cpu_count(), **bench_cluster(Path(name), args.quick)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
