"""canonical_hash: equal for isomorphic genotypes, different otherwise."""

from __future__ import annotations

import copy
import inspect
import json
import random
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
from helpers import chain, genotype_docs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nas_skip.genotype import HASH_VERSION, INPUT, Genotype, _hash, canonical_form

ROOT = Path(__file__).resolve().parents[2]


def resnet_block() -> dict[str, Any]:
    return chain(
        [4, 8, 8],
        {"id": "a", "op": "conv3x3_bn_relu", "channels": 4},
        {"id": "b", "op": "conv3x3_bn", "channels": 4},
        {"id": "r", "op": "relu"},
        {"id": "head", "op": "gap_linear", "classes": 10},
        edges=[{"src": "input", "dst": "r", "kind": "add"}],
    )


def h(doc: dict[str, Any]) -> str:
    return Genotype.from_json(doc).canonical_hash()


def renamed(doc: dict[str, Any], seed: int) -> dict[str, Any]:
    """The same genotype with new ids and shuffled node and edge lists."""
    rng = random.Random(seed)
    ids = [n["id"] for n in doc["nodes"]]
    fresh = [f"z{rng.randrange(10**6)}_{i}" for i in range(len(ids))]
    rng.shuffle(fresh)
    names = dict(zip(ids, fresh, strict=True)) | {INPUT: INPUT}
    out = copy.deepcopy(doc)
    for n in out["nodes"]:
        n["id"] = names[n["id"]]
    for e in out["edges"]:
        e["src"], e["dst"] = names[e["src"]], names[e["dst"]]
    out["output"] = names[out["output"]]
    rng.shuffle(out["nodes"])
    rng.shuffle(out["edges"])
    return out


# --- symmetric families (scripts/bench_hash.py times them up to 5,000 nodes) --------------
def _doc(nodes: list[dict[str, Any]], edges: list[dict[str, Any]], output: str) -> dict[str, Any]:
    return {"schema": 1, "input": {"shape": [4]}, "nodes": nodes, "edges": edges, "output": output}


def chains(k: int) -> dict[str, Any]:
    """k parallel relu -> identity chains from input, added into the output."""
    nodes: list[dict[str, Any]] = [{"id": "j", "op": "identity"}]
    edges: list[dict[str, Any]] = []
    for i in range(k):
        nodes += [{"id": f"p{i}", "op": "relu"}, {"id": f"q{i}", "op": "identity"}]
        edges += [{"src": "input", "dst": f"p{i}"}, {"src": f"p{i}", "dst": f"q{i}"}]
        edges.append({"src": f"q{i}", "dst": "j", "kind": "add"})
    return _doc(nodes, edges, "j")


def layered(layers: int, width: int) -> dict[str, Any]:
    """Layers of relu nodes, each node feeding every node of the next layer."""
    nodes: list[dict[str, Any]] = [{"id": "j", "op": "identity"}]
    edges: list[dict[str, Any]] = []
    prev = ["input"]
    for i in range(layers):
        layer = [f"l{i}_{w}" for w in range(width)]
        nodes += [{"id": v, "op": "relu"} for v in layer]
        edges += [{"src": u, "dst": v, "kind": "add" if i else "seq"} for v in layer for u in prev]
        prev = layer
    edges += [{"src": u, "dst": "j", "kind": "add"} for u in prev]
    return _doc(nodes, edges, "j")


def long_chain(n: int) -> dict[str, Any]:
    ids = ["input"] + [f"n{i}" for i in range(n)]
    edges = [{"src": a, "dst": b} for a, b in zip(ids, ids[1:], strict=False)]
    return _doc([{"id": v, "op": "relu"} for v in ids[1:]], edges, ids[-1])


def branches(n: int) -> dict[str, Any]:
    """n parallel relu nodes from input, added into the output."""
    nodes: list[dict[str, Any]] = [{"id": "j", "op": "identity"}]
    edges: list[dict[str, Any]] = []
    for i in range(n):
        nodes.append({"id": f"b{i}", "op": "relu"})
        edges += [{"src": "input", "dst": f"b{i}"}, {"src": f"b{i}", "dst": "j", "kind": "add"}]
    return _doc(nodes, edges, "j")


def form(doc: dict[str, Any]) -> str:
    return canonical_form(Genotype.from_json(doc))


def test_format_and_version() -> None:
    value = h(resnet_block())
    assert value.startswith(f"v{HASH_VERSION}:") and len(value) == 3 + 32
    assert value == h(resnet_block())  # stable within a run
    # and across releases: this literal changes only with HASH_VERSION
    assert value == "v2:" + value[3:] and len(set(value[3:]) - set("0123456789abcdef")) == 0


@pytest.mark.parametrize(
    ("name", "digest"),
    [
        ("resnet_block", "d152b1d455fa2b2a6d7900052ead3915"),
        ("examples/genotypes/resnet20.json", "f10607eadf19adf07828642dc28f9b99"),
        ("examples/genotypes/densenet_block.json", "93f6f05b9332fbac960daf341dfaab13"),
        ("examples/genotypes/unet_small.json", "b37bb89736ace2b8da68e49e4631e813"),
        ("chains_64", "c14958c6e866edd8289d81e0379b26f5"),
        ("layered_32x16", "0b26c02dec134a606842aba6cd18ec7f"),
    ],
)
def test_digests_are_those_of_version_1(name: str, digest: str) -> None:
    # version 2 computes version 1's forms (only faster); version 1 fell back to "wl"
    # forms past 2,000 leaves, which version 2 makes exact: hence the new version
    if name.endswith(".json"):
        doc = json.loads((ROOT / name).read_text(encoding="utf-8"))
    elif name == "resnet_block":
        doc = resnet_block()
    else:
        family, size = name.split("_")
        doc = chains(int(size)) if family == "chains" else layered(32, 16)
    assert h(doc)[3:] == digest


def test_renaming_and_order_do_not_matter() -> None:
    doc = resnet_block()
    for seed in range(5):
        assert h(renamed(doc, seed)) == h(doc)


def test_defaults_and_switched_off_edges_do_not_matter() -> None:
    doc = resnet_block()
    explicit = copy.deepcopy(doc)
    explicit["nodes"][0]["stride"] = 1
    explicit["edges"][-1]["align"] = "auto"
    assert h(explicit) == h(doc)
    with_none = copy.deepcopy(doc)
    with_none["edges"].append({"src": "a", "dst": "r", "kind": "none"})
    assert h(with_none) == h(doc)


def test_changes_change_the_hash() -> None:
    doc = resnet_block()
    variants = []
    for path, value in [
        (("edges", 4, "kind"), "concat"),  # kind
        (("edges", 4, "kind"), "scaled"),
        (("edges", 4, "align"), "projection"),  # align
        (("nodes", 0, "op"), "sepconv3x3"),  # op
        (("nodes", 1, "channels"), 8),  # op parameter (then auto zero-pads)
        (("nodes", 3, "classes"), 11),
    ]:
        d = copy.deepcopy(doc)
        d[path[0]][path[1]][path[2]] = value
        variants.append(d)
    d = copy.deepcopy(doc)
    d["input"]["shape"] = [4, 16, 16]
    variants.append(d)
    d = copy.deepcopy(doc)
    d["edges"][4]["src"] = "a"  # the skip starts one node later
    variants.append(d)
    d = copy.deepcopy(doc)
    d["edges"].append({"src": "input", "dst": "b", "kind": "add"})  # one more edge
    variants.append(d)
    d = copy.deepcopy(doc)
    d["edges"][4].update(kind="scaled", init=0.0)
    variants.append(d)
    hashes = {h(v) for v in variants} | {h(doc)}
    assert len(hashes) == len(variants) + 1


def test_edge_parameters_hash_as_written_in_any_order() -> None:
    # 0.0 and -0.0 are equal as dict keys but not as text: no edge's text stands for another's
    doc = chains(3)
    for i, init in enumerate([0.0, -0.0, 0.0]):
        doc["edges"][3 * i + 2].update(kind="scaled", init=init)
    assert len({h(renamed(doc, seed)) for seed in range(6)}) == 1


def test_symmetric_parallel_branches_are_exact() -> None:
    # k identical parallel branches: the individualisation search must not blow up
    def fan(k: int, swap: bool) -> dict[str, Any]:
        nodes: list[dict[str, Any]] = [{"id": "j", "op": "identity"}]
        edges = []
        for i in range(k):
            ops = ["relu", "identity"] if (swap and i == 0) else ["identity", "relu"]
            nodes += [{"id": f"p{i}", "op": ops[0]}, {"id": f"q{i}", "op": ops[1]}]
            edges += [
                {"src": "input", "dst": f"p{i}"},
                {"src": f"p{i}", "dst": f"q{i}"},
                {"src": f"q{i}", "dst": "j", "kind": "add"},
            ]
        return {
            "schema": 1,
            "input": {"shape": [4]},
            "nodes": nodes,
            "edges": edges,
            "output": "j",
        }

    assert h(fan(8, False)) == h(renamed(fan(8, False), 1))
    assert h(fan(8, False)) != h(fan(8, True))
    assert not canonical_form(Genotype.from_json(fan(8, False))).startswith("wl")


# sizes at which version 1 ended in a RecursionError or ran for minutes; per family: a node
# whose op to flip and an edge to add
FAMILIES: dict[str, tuple[Callable[[], dict[str, Any]], str, dict[str, Any]]] = {
    "branches_1000": (lambda: branches(1000), "b7", {"src": "b3", "dst": "b4", "kind": "add"}),
    "chains_500": (lambda: chains(500), "q7", {"src": "input", "dst": "q3", "kind": "add"}),
    "layered_100x12": (
        lambda: layered(100, 12),
        "l50_3",
        {"src": "l10_0", "dst": "l12_0", "kind": "add"},
    ),
    "chain_3000": (lambda: long_chain(3000), "n1500", {"src": "n10", "dst": "n20", "kind": "add"}),
}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_large_symmetric_families_are_exact(name: str) -> None:
    make, node, edge = FAMILIES[name]
    doc = make()
    value = form(doc)
    assert not value.startswith("wl") and form(renamed(doc, 3)) == value
    flipped = copy.deepcopy(doc)
    for n in flipped["nodes"]:
        if n["id"] == node:
            n["op"] = "identity" if n["op"] == "relu" else "relu"
    more = copy.deepcopy(doc)
    more["edges"].append(edge)
    assert len({value, form(flipped), form(more)}) == 3
    assert form(renamed(more, 4)) == form(more)


def gadgets(kinds: list[int], size: int = 6) -> dict[str, Any]:
    """Parallel pairs of layers of ``size`` nodes, each node of the first feeding two of the
    second: as one cycle (kind 0) or two (kind 1). Refinement cannot tell the kinds apart."""
    nodes: list[dict[str, Any]] = [{"id": "j", "op": "identity"}]
    edges: list[dict[str, Any]] = []
    half = size // 2
    for k, kind in enumerate(kinds):
        xs, ys = [f"g{k}x{i}" for i in range(size)], [f"g{k}y{i}" for i in range(size)]
        nodes += [{"id": x, "op": "relu"} for x in xs] + [{"id": y, "op": "identity"} for y in ys]
        edges += [{"src": "input", "dst": x} for x in xs]
        for i in range(size):
            if kind == 0:
                nxt = (i + 1) % size
            else:
                nxt = (i + 1) % half if i < half else half + (i - half + 1) % half
            edges.append({"src": xs[i], "dst": ys[i], "kind": "add"})
            edges.append({"src": xs[i], "dst": ys[nxt], "kind": "add"})
        edges += [{"src": y, "dst": "j", "kind": "add"} for y in ys]
    return _doc(nodes, edges, "j")


def test_gadgets_refinement_cannot_split_are_exact() -> None:
    # version 1 gave up on these past 2,000 leaves ("wl" forms that could collide)
    value = form(gadgets([0, 1] * 4))
    assert not value.startswith("wl")
    assert form(renamed(gadgets([1, 0, 0, 1, 1, 0, 1, 0]), 2)) == value  # same kinds
    assert form(gadgets([0, 0] + [0, 1] * 3)) != value


def test_no_recursion_as_deep_as_the_graph() -> None:
    depth = len(inspect.stack())
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + 60)
    try:
        values = [form(d) for d in (long_chain(400), branches(400), chains(200))]
    finally:
        sys.setrecursionlimit(limit)
    assert values == [form(long_chain(400)), form(branches(400)), form(chains(200))]


def test_past_the_work_bound_the_form_is_the_refinement(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_hash, "_MAX_WORK", 0)
    doc = chains(6)
    value = form(doc)
    assert value.startswith("wl") and form(renamed(doc, 1)) == value
    flipped = copy.deepcopy(doc)
    flipped["nodes"][1]["op"] = "identity"  # p0
    assert form(flipped) != value
    assert not form(long_chain(5)).startswith("wl")  # discrete at once: no search


def compiled_graph(doc: dict[str, Any]) -> nx.DiGraph:
    """The graph the hash describes, built independently: labels per DESIGN.md."""
    g = Genotype.from_json(doc)
    out = nx.DiGraph()
    out.add_node(INPUT, label=("input", g.input_shape))
    for n in g.nodes:
        out.add_node(n.id, label=(n.op, sorted(g.node_params[n.id].items()), n.id == g.output))
    for plan in g.plans.values():
        for m in (*plan.base, *plan.additive):
            e = m.edge
            params = sorted(g.edge_params[e.src, e.dst].items())
            out.add_edge(e.src, e.dst, label=(e.kind, m.shortcut.resolved, params))
    return out


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return nx.is_isomorphic(
        compiled_graph(a),
        compiled_graph(b),
        node_match=lambda x, y: x["label"] == y["label"],
        edge_match=lambda x, y: x["label"] == y["label"],
    )


# a small alphabet, so that random pairs are often isomorphic or nearly so
SMALL = {
    "domain": "vector",
    "max_nodes": 4,
    "kinds": ["seq", "add", "none"],
    "ops": ["relu", "identity"],
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(genotype_docs(**SMALL), genotype_docs(**SMALL))
def test_hash_agrees_with_networkx_isomorphism(a: dict[str, Any], b: dict[str, Any]) -> None:
    a["input"]["shape"] = b["input"]["shape"] = [4]
    assert (h(a) == h(b)) == same(a, b), (json.dumps(a), json.dumps(b))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(genotype_docs(), st.integers(0, 10**6))
def test_random_genotypes_hash_alike_when_renamed(doc: dict[str, Any], seed: int) -> None:
    other = renamed(doc, seed)
    assert h(other) == h(doc)
    assert same(doc, other)


@st.composite
def symmetric_pairs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two genotypes of copies of one random block between input and a merge, each with
    one change (none, a flipped op, dropped skips, an edge to the next copy) in one copy:
    isomorphic when the changes are alike, whichever copy they hit."""
    size = draw(st.integers(1, 3))
    ops = draw(st.lists(st.sampled_from(["relu", "identity"]), min_size=size, max_size=size))
    skips = [(s, i) for i in range(size) for s in range(-1, i - 1) if draw(st.booleans())]
    copies = draw(st.integers(2, 6))

    def build(change: str, where: int) -> dict[str, Any]:
        nodes: list[dict[str, Any]] = [{"id": "j", "op": "identity"}]
        edges: list[dict[str, Any]] = []
        for c in range(copies):
            ids = [f"c{c}_{i}" for i in range(size)]
            block = list(ops)
            if change == "op" and c == where:
                block[-1] = "relu" if block[-1] == "identity" else "identity"
            nodes += [{"id": v, "op": op} for v, op in zip(ids, block, strict=True)]
            edges += [{"src": ids[i - 1] if i else "input", "dst": ids[i]} for i in range(size)]
            if not (change == "skips" and c == where):
                for s, i in skips:
                    edges.append(
                        {"src": ids[s] if s >= 0 else "input", "dst": ids[i], "kind": "add"}
                    )
            edges.append({"src": ids[-1], "dst": "j", "kind": "add"})
        if change == "cross":
            dst = f"c{(where + 1) % copies}_{size - 1}"
            edges.append({"src": f"c{where}_0", "dst": dst, "kind": "add"})
        return _doc(nodes, edges, "j")

    changes = st.sampled_from(["none", "op", "skips", "cross"])
    wheres = st.integers(0, copies - 1)
    return build(draw(changes), draw(wheres)), build(draw(changes), draw(wheres))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(symmetric_pairs(), st.integers(0, 10**6))
def test_symmetric_genotypes_agree_with_networkx(
    pair: tuple[dict[str, Any], dict[str, Any]], seed: int
) -> None:
    a, b = pair
    assert h(renamed(a, seed)) == h(a)
    assert (h(a) == h(b)) == same(a, b), (json.dumps(a), json.dumps(b))


def random_dag(seed: int, n: int) -> dict[str, Any]:
    """A random vector genotype of about ``n`` relu / identity nodes with add skips."""
    rng = random.Random(seed)
    ids = ["input"]
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    for i in range(n):
        v = f"v{i}"
        nodes.append({"id": v, "op": rng.choice(["relu", "identity"])})
        sources = {rng.choice(ids[-3:])} | {rng.choice(ids) for _ in range(rng.randint(0, 2))}
        main = max(sources, key=ids.index)
        for s in sorted(sources):
            edges.append({"src": s, "dst": v, "kind": "seq" if s == main else "add"})
        ids.append(v)
    return _doc(nodes, edges, ids[-1])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10**6), st.integers(5, 40), st.integers(0, 10**6))
def test_random_dags_renamed_alike_changed_as_networkx_says(seed: int, n: int, pick: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nodes off the path to the output are pruned
        doc = random_dag(seed, n)
        assert h(renamed(doc, seed)) == h(doc)
        changed = copy.deepcopy(doc)
        node = changed["nodes"][pick % len(changed["nodes"])]
        node["op"] = "relu" if node["op"] == "identity" else "identity"
        assert (h(changed) == h(doc)) == same(changed, doc)
