"""Benchmark the canonical hash on symmetric genotype families (issue 11, item 2).

Prints one JSON line. Per case: ``nodes``, ``edges``, ``build_s`` (``Genotype.from_json``),
``hash_s`` (:func:`nas_skip.genotype.canonical_hash` alone, the minimum of ``--reps`` runs
when one run takes under a second), ``wl`` (the form fell back to the refined colours), or
``error`` ("timeout" past ``--timeout`` seconds, "RecursionError", ...). Each case runs in
its own subprocess so that a slow or crashing case cannot stop the others. Families:

- ``chains_k``: k parallel two-node chains from input into one ``add`` merge (2k+1 nodes);
- ``layered_LxW``: L layers of W nodes, every node of a layer feeding every node of the
  next (``add``), the first layer fed by input, the last one merged into the output;
- ``chain_n``: a chain of n nodes;
- ``branches_n``: n parallel single-node branches from input into one ``add`` merge.

Goal: ``hash_s`` under 0.5 s for every family at about 1,000 nodes and under 2 s at about
5,000 (``goal_1000_ok``, ``goal_5000_ok``).

Usage: ``python scripts/bench_hash.py [--quick] [--reps N] [--timeout S] [--only NAME...]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

Doc = dict[str, Any]

#: (case name, nodes class for the goals: 1000, 5000 or None)
CASES = [
    ("chains_64", None),
    ("chains_128", None),
    ("chains_500", 1000),
    ("chains_2500", 5000),
    ("layered_32x16", None),
    ("layered_32x32", 1000),
    ("layered_100x50", 5000),
    ("chain_1000", 1000),
    ("chain_2000", None),
    ("chain_5000", 5000),
    ("branches_1000", 1000),
    ("branches_5000", 5000),
]
QUICK = ["chains_16", "chains_64", "layered_8x8", "chain_300", "branches_300"]


def _doc(nodes: list[Doc], edges: list[Doc], output: str) -> Doc:
    return {"schema": 1, "input": {"shape": [4]}, "nodes": nodes, "edges": edges, "output": output}


def chains(k: int) -> Doc:
    """k parallel relu -> identity chains from input, added into the output node."""
    nodes: list[Doc] = [{"id": "j", "op": "identity"}]
    edges: list[Doc] = []
    for i in range(k):
        nodes += [{"id": f"p{i}", "op": "relu"}, {"id": f"q{i}", "op": "identity"}]
        edges += [
            {"src": "input", "dst": f"p{i}"},
            {"src": f"p{i}", "dst": f"q{i}"},
            {"src": f"q{i}", "dst": "j", "kind": "add"},
        ]
    return _doc(nodes, edges, "j")


def layered(layers: int, width: int) -> Doc:
    """A fully connected layered DAG of relu nodes, merged into the output node."""
    nodes: list[Doc] = [{"id": "j", "op": "identity"}]
    edges: list[Doc] = []
    prev = ["input"]
    for i in range(layers):
        layer = [f"l{i}_{w}" for w in range(width)]
        nodes += [{"id": v, "op": "relu"} for v in layer]
        kind = "seq" if i == 0 else "add"
        edges += [{"src": u, "dst": v, "kind": kind} for v in layer for u in prev]
        prev = layer
    edges += [{"src": u, "dst": "j", "kind": "add"} for u in prev]
    return _doc(nodes, edges, "j")


def chain(n: int) -> Doc:
    """n relu nodes in a row."""
    ids = ["input"] + [f"n{i}" for i in range(n)]
    edges = [{"src": a, "dst": b} for a, b in zip(ids, ids[1:], strict=False)]
    return _doc([{"id": v, "op": "relu"} for v in ids[1:]], edges, ids[-1])


def branches(n: int) -> Doc:
    """n parallel relu nodes from input, added into the output node."""
    nodes: list[Doc] = [{"id": "j", "op": "identity"}]
    edges: list[Doc] = []
    for i in range(n):
        nodes.append({"id": f"b{i}", "op": "relu"})
        edges += [{"src": "input", "dst": f"b{i}"}, {"src": f"b{i}", "dst": "j", "kind": "add"}]
    return _doc(nodes, edges, "j")


def make(name: str) -> Doc:
    """The document of a case name such as ``chains_64`` or ``layered_32x16``."""
    family, size = name.split("_")
    if family == "layered":
        layers, width = size.split("x")
        return layered(int(layers), int(width))
    builders = {"chains": chains, "chain": chain, "branches": branches}
    return builders[family](int(size))


def run_case(name: str, reps: int) -> Doc:
    """Build and hash one case in this process; return its figures."""
    from nas_skip.genotype import Genotype, canonical_form, canonical_hash

    doc = make(name)
    t0 = time.perf_counter()
    g = Genotype.from_json(doc)
    build = time.perf_counter() - t0
    times = []
    value = ""
    for _ in range(reps):
        t0 = time.perf_counter()
        value = canonical_hash(g)
        times.append(time.perf_counter() - t0)
        if times[-1] > 1.0:  # slow: one run says enough
            break
    return {
        "nodes": len(g.nodes),
        "edges": len(g.edges),
        "build_s": round(build, 4),
        "hash_s": round(min(times), 4),
        "wl": canonical_form(g).startswith("wl") if min(times) < 5 else None,
        "hash": value,
    }


def run_isolated(name: str, reps: int, timeout: float) -> Doc:
    """Run one case in a subprocess; a timeout or a crash becomes ``error``."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--case", name, "--reps", str(reps)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": "timeout", "hash_s": None}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        last = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        return {"error": last.split(":")[0][:80], "hash_s": None}
    result: Doc = json.loads(lines[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the cases and print one JSON line; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes")
    parser.add_argument("--reps", type=int, default=3, help="hash runs per case (min taken)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per case")
    parser.add_argument("--only", nargs="*", help="case names to run (e.g. chains_64)")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # the subprocess side
    args = parser.parse_args(argv)
    if args.case:
        try:
            print(json.dumps(run_case(args.case, args.reps)))
        except RecursionError:
            print(json.dumps({"error": "RecursionError", "hash_s": None}))
        return 0
    names = [(n, None) for n in QUICK] if args.quick else CASES
    if args.only:
        names = [(n, goal) for n, goal in CASES if n in args.only] or [
            (n, None) for n in args.only
        ]
    from nas_skip.genotype import HASH_VERSION

    cases = {name: run_isolated(name, args.reps, args.timeout) for name, _ in names}
    result: Doc = {"hash_version": HASH_VERSION, "quick": args.quick, "timeout_s": args.timeout}
    for size, limit in ((1000, 0.5), (5000, 2.0)):
        times = [cases[n]["hash_s"] for n, goal in names if goal == size]
        if times:
            result[f"goal_{size}_ok"] = all(t is not None and t < limit for t in times)
    result["cases"] = cases
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
