"""Shape inference tables, per-node costs, and the no-torch rule of the genotype package."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from helpers import chain

from nas_skip.genotype import Genotype, GenotypeError, costs


def shapes_of(doc: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    return Genotype.from_json(doc).shapes


@pytest.mark.parametrize(
    ("node", "input_shape", "expected"),
    [
        ({"op": "conv3x3_bn_relu", "channels": 8}, [3, 32, 32], (8, 32, 32)),
        ({"op": "conv3x3_bn", "channels": 8, "stride": 2}, [3, 32, 32], (8, 16, 16)),
        ({"op": "conv1x1_bn_relu", "channels": 5, "stride": 2}, [3, 7, 7], (5, 4, 4)),
        ({"op": "sepconv3x3", "channels": 6, "stride": 3}, [3, 10, 10], (6, 4, 4)),
        ({"op": "bn_relu_conv3x3", "channels": 4}, [2, 5, 9], (4, 5, 9)),
        ({"op": "maxpool3x3", "stride": 2}, [3, 9, 9], (3, 5, 5)),
        ({"op": "avgpool3x3"}, [3, 9, 9], (3, 9, 9)),
        ({"op": "upsample2x"}, [3, 4, 5], (3, 8, 10)),
        ({"op": "gap_linear", "classes": 10}, [64, 8, 8], (10,)),
        ({"op": "conv1x1_head", "classes": 4}, [16, 32, 32], (4, 32, 32)),
        ({"op": "relu"}, [3, 4, 4], (3, 4, 4)),
        ({"op": "identity"}, [7], (7,)),
        ({"op": "linear_relu", "features": 32}, [7], (32,)),
        ({"op": "linear", "features": 3}, [7], (3,)),
        ({"op": "layernorm_linear_relu", "features": 9}, [7], (9,)),
        ({"op": "linear_head", "classes": 2}, [7], (2,)),
        ({"op": "conv1d_k3_bn_relu", "channels": 8}, [1, 40], (8, 40)),
        ({"op": "conv1d_k5_bn_relu", "channels": 8, "stride": 2}, [1, 40], (8, 20)),
        ({"op": "conv1d_k7_bn", "channels": 4, "stride": 3}, [2, 10], (4, 4)),
        ({"op": "conv1d_k1_bn_relu", "channels": 5, "stride": 2}, [3, 7], (5, 4)),
        ({"op": "sepconv1d_k5", "channels": 6, "stride": 2}, [3, 9], (6, 5)),
        ({"op": "maxpool1d_k3", "stride": 2}, [3, 9], (3, 5)),
        ({"op": "avgpool1d_k3"}, [3, 9], (3, 9)),
        ({"op": "gap1d_linear", "classes": 10}, [64, 5], (10,)),
        ({"op": "flatten1d_linear", "classes": 10}, [64, 5], (10,)),
        ({"op": "relu"}, [3, 4], (3, 4)),
    ],
)
def test_op_shape_rules(node: dict[str, Any], input_shape: list[int], expected: tuple) -> None:
    assert shapes_of(chain(input_shape, {"id": "n", **node}))["n"] == expected


def test_merge_shapes() -> None:
    # dense concat widens; add keeps the base; zero-pad and projection align the source
    doc = chain(
        [4, 8, 8],
        {"id": "a", "op": "conv3x3_bn_relu", "channels": 6},
        {"id": "b", "op": "conv3x3_bn_relu", "channels": 6, "stride": 2},
        {"id": "d", "op": "identity"},
        {"id": "u", "op": "upsample2x"},
        {"id": "o", "op": "identity"},
        edges=[
            {"src": "input", "dst": "d", "kind": "concat"},
            {"src": "a", "dst": "d", "kind": "add", "align": "projection"},
            {"src": "a", "dst": "o", "kind": "concat"},
            {"src": "input", "dst": "o", "kind": "gated", "align": "zero_pad"},
        ],
    )
    g = Genotype.from_json(doc)
    assert g.shapes["d"] == (10, 4, 4)  # b (6) ++ input subsampled (4); a projected 6 -> 10
    assert g.plans["d"].additive[0].shortcut.resolved == "projection"
    assert g.shapes["o"] == (16, 8, 8)  # a (6) ++ upsampled d (10); input zero-padded 4 -> 16
    assert g.plans["o"].additive[0].shortcut.resolved == "zero_pad"
    assert [m.edge.src for m in g.plans["o"].base] == ["a", "u"]  # topological order


def test_merge_shapes_on_signals() -> None:
    # as on images: concat widens, inputs align by length to the main path (the last)
    doc = chain(
        [4, 8],
        {"id": "a", "op": "conv1d_k3_bn_relu", "channels": 6},
        {"id": "b", "op": "conv1d_k5_bn_relu", "channels": 6, "stride": 2},
        {"id": "d", "op": "identity"},
        {"id": "p", "op": "maxpool1d_k3", "stride": 2},
        {"id": "o", "op": "identity"},
        edges=[
            {"src": "input", "dst": "d", "kind": "concat"},
            {"src": "a", "dst": "d", "kind": "add", "align": "projection"},
            {"src": "a", "dst": "o", "kind": "concat"},
            {"src": "input", "dst": "o", "kind": "gated", "align": "zero_pad"},
        ],
    )
    g = Genotype.from_json(doc)
    assert g.shapes["d"] == (10, 4)  # b (6) ++ input subsampled (4); a projected 6 -> 10
    assert g.plans["d"].additive[0].shortcut.module == (
        "nn.Sequential(nn.Conv1d(6, 10, 1, stride=2, bias=False), nn.BatchNorm1d(10))"
    )
    assert g.shapes["o"] == (16, 2)  # a (6, 8) subsampled ++ p (10, 2); input padded 4 -> 16
    assert g.plans["o"].base[0].shortcut.steps == ("{x}[:, :, ::4]",)
    steps = g.plans["o"].additive[0].shortcut.steps
    assert steps == ("{x}[:, :, ::4]", "F.pad({x}, (0, 0, 0, 12))")


def test_first_additive_input_is_the_base() -> None:
    doc = chain(
        [5],
        {"id": "x1", "op": "linear", "features": 5},
        {"id": "o", "op": "identity"},
        edges=[{"src": "input", "dst": "o", "kind": "scaled"}],
    )
    doc["edges"][1]["kind"] = "add"  # o has only additive inputs: input (first), then x1
    g = Genotype.from_json(doc)
    assert [m.edge.src for m in g.plans["o"].base] == ["input"]
    assert [m.edge.src for m in g.plans["o"].additive] == ["x1"]


def test_costs_table() -> None:
    doc = chain(
        [3, 32, 32],
        {"id": "stem", "op": "conv3x3_bn_relu", "channels": 16},
        {"id": "head", "op": "gap_linear", "classes": 10},
    )
    rows = costs(Genotype.from_json(doc))
    assert [(r.id, r.shape, r.params) for r in rows] == [
        ("stem", (16, 32, 32), 3 * 16 * 9 + 32),
        ("head", (10,), 16 * 10 + 10),
    ]
    assert rows[0].flops == 2 * 3 * 16 * 9 * 32 * 32


def test_genotype_package_imports_no_torch() -> None:
    code = (
        "import sys, json\n"
        "import nas_skip, nas_skip.genotype, nas_skip.ops, nas_skip.merges\n"
        "from nas_skip.genotype import Genotype, costs\n"
        "doc = {'schema': 1, 'input': {'shape': [4]}, 'edges': [{'src': 'input', 'dst': 'a'}],"
        " 'nodes': [{'id': 'a', 'op': 'linear_head', 'classes': 2}], 'output': 'a'}\n"
        "g = Genotype.from_json(doc); g.canonical_hash(); costs(g); g.to_networkx()\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'torch')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_compound_strides_align_by_their_effective_factor() -> None:
    # 10 -> 5 -> 3 after two stride-2 convs: the skip from the input subsamples by 4
    doc = chain(
        [3, 10, 10],
        {"id": "c0", "op": "conv3x3_bn_relu", "channels": 8, "stride": 2},
        {"id": "c1", "op": "conv3x3_bn_relu", "channels": 8, "stride": 2},
        {"id": "c2", "op": "relu"},
        edges=[{"src": "input", "dst": "c2", "kind": "add", "align": "projection"}],
    )
    g = Genotype.from_json(doc)
    assert g.shapes["c2"] == (8, 3, 3)
    assert "stride=4" in (g.plans["c2"].additive[0].shortcut.module or "")
    doc["edges"][-1]["align"] = "zero_pad"
    assert "::4, ::4" in Genotype.from_json(doc).plans["c2"].additive[0].shortcut.steps[0]


def test_compound_strides_on_signals_and_lengths_that_cannot_align() -> None:
    # 10 -> 5 -> 3 after two stride-2 convs: the skip from the input subsamples by 4
    doc = chain(
        [3, 10],
        {"id": "c0", "op": "conv1d_k3_bn_relu", "channels": 8, "stride": 2},
        {"id": "c1", "op": "conv1d_k5_bn_relu", "channels": 8, "stride": 2},
        {"id": "c2", "op": "relu"},
        edges=[{"src": "input", "dst": "c2", "kind": "add", "align": "projection"}],
    )
    g = Genotype.from_json(doc)
    assert g.shapes["c2"] == (8, 3)
    assert "nn.Conv1d(3, 8, 1, stride=4, bias=False)" in (
        g.plans["c2"].additive[0].shortcut.module or ""
    )
    doc["edges"][-1]["align"] = "zero_pad"
    assert Genotype.from_json(doc).plans["c2"].additive[0].shortcut.steps == (
        "{x}[:, :, ::4]",
        "F.pad({x}, (0, 0, 0, 5))",
    )
    # an add of length 4 into length 10: no integer up-sampling factor; the error names it
    doc = chain(
        [3, 10],
        {"id": "c", "op": "conv1d_k3_bn_relu", "channels": 3, "stride": 3},
        {"id": "r", "op": "relu"},
        edges=[{"src": "input", "dst": "r"}],
    )
    doc["edges"][1]["kind"] = "add"
    with pytest.raises(GenotypeError, match=r"edge c -> r: spatial size \[4\] cannot be"):
        Genotype.from_json(doc)


def test_topology_features() -> None:
    from nas_skip.genotype import topology

    doc = chain(
        [4],
        {"id": "a", "op": "linear", "features": 4},
        {"id": "b", "op": "linear", "features": 4},
        {"id": "c", "op": "identity"},
        {"id": "d", "op": "identity"},
        edges=[
            {"src": "input", "dst": "c", "kind": "add"},
            {"src": "a", "dst": "d", "kind": "gated"},
            {"src": "input", "dst": "d", "kind": "none"},
        ],
    )
    f = topology(Genotype.from_json(doc))
    assert f["depth"] == 4 and f["nodes"] == 4
    assert (f["skips_add"], f["skips_gated"], f["skips_concat"]) == (1, 1, 0)
    assert f["longest_skip"] == 3  # input (level 0) -> c (level 3)
    assert "skips_none" not in f and "skips_seq" not in f
