"""Every validation rule of the genotype schema, with the message it gives."""

from __future__ import annotations

import copy
import json
import warnings
from typing import Any

import pytest
from helpers import chain

from nas_skip import Genotype, GenotypeError, GenotypeWarning, NasSkipError

CONV = {"id": "c1", "op": "conv3x3_bn_relu", "channels": 8}
HEAD = {"id": "head", "op": "gap_linear", "classes": 10}


def image_doc() -> dict[str, Any]:
    return chain(
        [3, 8, 8],
        dict(CONV),
        {"id": "c2", "op": "conv3x3_bn", "channels": 8},
        {"id": "r", "op": "relu"},
        dict(HEAD),
        edges=[{"src": "c1", "dst": "r", "kind": "add"}],
    )


def vector_doc() -> dict[str, Any]:
    return chain(
        [10],
        {"id": "fc", "op": "linear_relu", "features": 16},
        {"id": "out", "op": "linear_head", "classes": 3},
    )


def error_of(doc: Any) -> str:
    with pytest.raises(GenotypeError) as info:
        Genotype.from_json(doc)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_valid_documents_load_and_round_trip() -> None:
    for doc in (image_doc(), vector_doc()):
        g = Genotype.from_json(doc)
        assert Genotype.from_json(g.to_json()) == g
        assert Genotype.from_json(g.dumps()) == g
        assert Genotype.from_json(json.dumps(doc)).to_json() == g.to_json()


def test_error_hierarchy() -> None:
    assert issubclass(GenotypeError, NasSkipError)
    assert issubclass(GenotypeError, ValueError)


def mutate(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Set ``doc[path]`` ("nodes.0.op"); a value of ``...`` deletes the key."""
    doc = copy.deepcopy(doc)
    *parents, last = path.split(".")
    target: Any = doc
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if isinstance(target, list):
        target[int(last)] = value
    elif value is ...:
        del target[last]
    else:
        target[last] = value
    return doc


CASES = [
    # (path, value, words the message must contain)
    ("schema", 2, ["schema", "1"]),
    ("schema", ..., ["schema"]),
    ("extra", 1, ["unknown key 'extra'", "nodes"]),
    ("name", 3, ["name", "string"]),
    ("input", ..., ["missing 'input'"]),
    ("nodes", ..., ["missing 'nodes'"]),
    ("edges", ..., ["missing 'edges'"]),
    ("output", ..., ["missing 'output'"]),
    ("input", [3, 8, 8], ["input", "shape"]),
    ("input.shape", [3, 8, 8, 8], ["input.shape", "[channels, length]", "[channels, height"]),
    ("input.shape", [3, 0, 8], ["input.shape"]),
    ("input.shape", [True], ["input.shape"]),
    ("nodes", {"a": 1}, ["nodes", "list"]),
    ("edges", "x", ["edges", "list"]),
    ("nodes.0", "conv", ["nodes[0]", "object"]),
    ("nodes.0.id", ..., ["nodes[0]", "missing 'id'"]),
    ("nodes.0.id", "1c", ["nodes[0]", "'1c'", "plain identifier"]),
    ("nodes.0.id", "a-b", ["'a-b'", "plain identifier"]),
    ("nodes.0.id", "class", ["'class'", "keyword"]),
    ("nodes.0.id", "x" * 65, ["plain identifier"]),
    ("nodes.0.id", 7, ["nodes[0]", "plain identifier"]),
    ("nodes.0.id", "input", ["reserved"]),
    ("nodes.1.id", "c1", ["nodes[1]", "duplicate node id 'c1'"]),
    ("nodes.0.op", "conv5x5", ["node 'c1'", "unknown op 'conv5x5'", "conv3x3_bn_relu", "linear"]),
    ("nodes.0.op", ..., ["node 'c1'", "unknown op None"]),
    ("nodes.0.kernel", 3, ["node 'c1'", "no parameter 'kernel'", "channels, stride"]),
    ("nodes.0.channels", "8", ["node 'c1'", "'channels'", "integer in [1, 65536]"]),
    ("nodes.0.channels", 8.0, ["'channels'", "integer"]),
    ("nodes.0.channels", True, ["'channels'", "integer"]),
    ("nodes.0.channels", 0, ["'channels'", "got 0"]),
    ("nodes.0.stride", 9, ["'stride'", "[1, 8]"]),
    ("nodes.0.channels", ..., ["node 'c1'", "needs parameter 'channels'"]),
    ("nodes.2.channels", 4, ["node 'r'", "no parameter 'channels'", "parameters: none"]),
    ("edges.0", [], ["edges[0]", "object"]),
    ("edges.0.src", ..., ["edges[0]", "missing 'src'"]),
    ("edges.0.dst", 5, ["edges[0]", "dst must be a node id"]),
    ("edges.1.dst", "zz", ["edges[1]", "c1 -> zz", "dst 'zz' is not a node"]),
    ("edges.1.src", "zz", ["edges[1]", "src 'zz' is not a node"]),
    ("edges.1.dst", "input", ["edge c1 -> input", "no edge may enter 'input'"]),
    ("edges.4.kind", "mul", ["edge c1 -> r", "unknown kind 'mul'", "add, concat, gated, none"]),
    ("edges.4.align", "crop", ["edge c1 -> r", "unknown align 'crop'", "auto, projection"]),
    ("edges.4.init", 0.5, ["edge c1 -> r", "kind 'add' has no parameter 'init'"]),
    ("edges.4", {"src": "c1", "dst": "c2"}, ["edge c1 -> c2", "duplicate edge"]),
    ("output", "nope", ["output", "'nope' is not a node"]),
    ("output", "input", ["output", "'input' is not a node"]),
]


@pytest.mark.parametrize(
    ("path", "value", "words"), CASES, ids=[c[0] + "=" + repr(c[1])[:12] for c in CASES]
)
def test_each_rule_names_the_problem(path: str, value: Any, words: list[str]) -> None:
    message = error_of(mutate(image_doc(), path, value))
    for word in words:
        assert word in message, message


def test_not_an_object_and_not_json() -> None:
    assert "JSON object" in error_of([1, 2])
    assert "not valid JSON" in error_of("{nope")


def test_edge_params_are_checked() -> None:
    doc = image_doc()
    doc["edges"][4].update(kind="scaled", init="big")
    assert "'init' must be a number in [-10, 10]" in error_of(doc)
    doc["edges"][4].update(kind="gated", bias=50.0)
    del doc["edges"][4]["init"]
    assert "'bias' must be a number in [-20, 20], got 50.0" in error_of(doc)
    doc["edges"][4].update(kind="scaled", init=2)  # an int is a fine float
    del doc["edges"][4]["bias"]
    assert Genotype.from_json(doc).edge_params["c1", "r"] == {"init": 2.0}


def test_cycles_are_named() -> None:
    doc = image_doc()
    doc["edges"].append({"src": "r", "dst": "c1", "kind": "add"})
    assert "cycle" in (m := error_of(doc)) and "c1" in m and "r" in m
    doc = image_doc()
    doc["edges"].append({"src": "c2", "dst": "c2"})
    assert "cycle: c2 -> c2" in error_of(doc)
    # a none edge still counts: a genotype is a DAG as written
    doc = image_doc()
    doc["edges"].append({"src": "r", "dst": "c2", "kind": "none"})
    assert "cycle" in error_of(doc)


def test_output_must_be_reachable() -> None:
    doc = image_doc()
    doc["edges"] = [e for e in doc["edges"] if e["dst"] != "c1"]
    assert "output 'head' is not reachable from input" in error_of(doc)
    doc = image_doc()
    doc["edges"][0]["kind"] = "none"  # switching off the only way in disconnects everything
    assert "not reachable" in error_of(doc)


def test_dead_nodes_are_pruned_with_a_warning() -> None:
    doc = image_doc()
    doc["nodes"].append({"id": "orphan", "op": "relu"})
    doc["nodes"].append({"id": "deadend", "op": "conv1x1_bn_relu", "channels": 4})
    doc["edges"].append({"src": "c1", "dst": "deadend"})
    doc["edges"].append({"src": "deadend", "dst": "orphan"})
    with pytest.warns(GenotypeWarning, match="pruned dead nodes.*orphan, deadend"):
        g = Genotype.from_json(doc)
    assert {n.id for n in g.nodes} == {"c1", "c2", "r", "head"}
    assert all("deadend" not in (e.src, e.dst) for e in g.edges)
    # a node reached only through a none edge is dead too
    doc = image_doc()
    doc["nodes"].insert(0, {"id": "side", "op": "relu"})
    doc["edges"] += [
        {"src": "input", "dst": "side", "kind": "none"},
        {"src": "side", "dst": "r", "kind": "add"},
    ]
    with pytest.warns(GenotypeWarning, match="side"):
        assert "side" not in Genotype.from_json(doc).order


def test_no_warning_for_a_clean_genotype() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Genotype.from_json(image_doc())


def test_op_domain_is_checked() -> None:
    doc = vector_doc()
    doc["nodes"][0] = {"id": "fc", "op": "conv3x3_bn", "channels": 4}
    m = error_of(doc)
    assert "node 'fc'" in m and "takes image input" in m and "[10]" in m
    assert "vector ops: identity, layernorm_linear_relu, linear" in m
    doc = image_doc()
    doc["nodes"][0] = {"id": "c1", "op": "linear_relu", "features": 4}
    assert "takes vector input, got shape [3, 8, 8]; image ops:" in error_of(doc)
    doc = chain([1, 40], {"id": "c", "op": "conv3x3_bn_relu", "channels": 4})
    m = error_of(doc)
    assert "takes image input, got shape [1, 40]; signal ops: avgpool1d_k3, conv1d_k1" in m
    doc = chain([1, 40], {"id": "h", "op": "gap_linear", "classes": 2})
    assert "op 'gap_linear' takes image input" in error_of(doc)
    doc = chain([3, 8, 8], {"id": "h", "op": "gap1d_linear", "classes": 2})
    assert "op 'gap1d_linear' takes signal input, got shape [3, 8, 8]" in error_of(doc)


def test_shape_conflicts_in_a_merge() -> None:
    doc = image_doc()  # c1 has 8 channels; make the add source wider than the base
    doc["nodes"][1]["channels"] = 4
    assert "edge c1 -> r: align 'auto' cannot zero-pad a source with 8 features into 4" in (
        error_of(doc)
    )
    doc["edges"][4]["align"] = "zero_pad"
    assert "'projection'" in error_of(doc)
    doc["edges"][4]["align"] = "projection"
    assert Genotype.from_json(doc).plans["r"].additive[0].shortcut.resolved == "projection"
    # a vector into an image merge
    doc = image_doc()
    doc["nodes"].append({"id": "fc", "op": "linear_relu", "features": 4})
    doc["edges"] += [{"src": "head", "dst": "fc"}]
    doc["nodes"][3] = {"id": "head", "op": "gap_linear", "classes": 8}
    doc["edges"].append({"src": "fc", "dst": "r", "kind": "add"})
    doc["output"] = "fc"
    assert "cycle" in error_of(doc)  # r -> head -> fc -> r
    doc = chain(
        [3, 6, 6],
        {"id": "p", "op": "maxpool3x3", "stride": 2},
        {"id": "q", "op": "gap_linear", "classes": 3},
        {"id": "o", "op": "identity"},
        edges=[{"src": "p", "dst": "o", "kind": "add"}],
    )
    assert "edge p -> o: cannot merge a rank-3 source [3, 3, 3] into a rank-1" in error_of(doc)


def test_spatial_sizes_must_align_by_an_integer_factor() -> None:
    doc = chain(
        [2, 6, 6],
        {"id": "a", "op": "maxpool3x3", "stride": 2},
        {"id": "b", "op": "maxpool3x3", "stride": 2},
        {"id": "u", "op": "upsample2x"},
        {"id": "o", "op": "identity"},
        edges=[{"src": "input", "dst": "o", "kind": "add"}],
    )
    # 6 -> 3 -> 2 -> 4: 6 and 4 have no integer factor
    m = error_of(doc)
    assert "edge input -> o: spatial size [6, 6] cannot be aligned to [4, 4]" in m


def test_networkx_round_trip_and_attributes() -> None:
    g = Genotype.from_json(image_doc())
    graph = g.to_networkx()
    assert graph.nodes["c1"]["op"] == "conv3x3_bn_relu"
    assert graph.nodes["c1"]["params"] == {"channels": 8}
    assert graph.nodes["c1"]["shape"] == (8, 8, 8)
    assert graph.edges["c1", "r"]["kind"] == "add"
    assert graph.edges["c1", "r"]["align"] == "auto"
    assert Genotype.from_networkx(graph) == g
    graph.nodes["c1"]["op"] = "warp"
    with pytest.raises(GenotypeError, match="unknown op 'warp'"):
        Genotype.from_networkx(graph)


def test_to_json_keeps_none_edges_and_omits_defaults() -> None:
    doc = image_doc()
    doc["edges"].append({"src": "input", "dst": "r", "kind": "none", "align": "auto"})
    g = Genotype.from_json(doc)
    out = g.to_json()
    assert {"src": "input", "dst": "r", "kind": "none"} in out["edges"]
    assert {"src": "input", "dst": "c1"} in out["edges"]


@pytest.mark.parametrize(
    "value",
    [[[list(range(1000))] * 1000] * 1000, "x" * 1_000_000, 10**5000, {"a": "b" * 10**6}],
    ids=["nested-list", "long-string", "5000-digit-int", "dict"],
)
def test_an_error_shows_a_bounded_prefix_of_a_huge_value(value: Any) -> None:
    # a width given as a huge structure (aliases make one from a few bytes), string or
    # integer (5,000 digits is past str()'s limit): one short line, never the value
    doc = vector_doc()
    doc["nodes"][0]["features"] = value
    with pytest.raises(GenotypeError) as info:
        Genotype.from_json(doc)
    message = str(info.value)
    assert message.startswith("node ") and "features" in message
    assert len(message) < 400 and "\n" not in message
