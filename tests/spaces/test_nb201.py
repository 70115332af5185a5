"""The NAS-Bench-201 cell as a genotype: every cell translates, round-trips and hashes."""

from __future__ import annotations

import itertools
from pathlib import Path

import optuna
import pytest
import torch

from nas_skip import Genotype, build
from nas_skip.genotype import costs
from nas_skip.spaces import SpaceError, load_space
from nas_skip.spaces import _nb201 as nb201

ROOT = Path(__file__).resolve().parents[2]
ALL = list(itertools.product(nb201.NB201_OPS, repeat=len(nb201.EDGES)))
BEST = ("nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_3x3",
        "nor_conv_1x1")  # fmt: skip


def small(cell: nb201.Cell) -> Genotype:
    """The cell in a one-cell skeleton: the same translation, ~10x cheaper to validate."""
    return Genotype.from_json(nb201.network_doc(cell, (3, 8, 8), 10, 4, 1, 1))


def test_every_cell_round_trips_through_its_genotype_and_arch_string() -> None:
    live = 0
    for cell in ALL:
        text = nb201.arch_string(cell)
        assert nb201.parse_arch(text) == cell
        g = small(cell)
        back = nb201.cell_of(g)
        # the genotype is the compiled network: dead ops (which cannot reach the output)
        # come back as none, and the cell read back builds the same genotype again
        assert back == nb201.live_cell(cell)
        if back != cell:  # (the same cell builds the same genotype: nothing to check)
            assert small(back) == g
        live += back == cell
    assert live == 9445  # cells without a dead op: these come back exactly


def test_a_sample_of_cells_round_trips_in_the_full_skeleton() -> None:
    for cell in ALL[::157] + [BEST]:
        g = Genotype.from_json(nb201.network_doc(cell, (3, 32, 32), 10))
        assert nb201.cell_of(g) == nb201.live_cell(cell)


def test_the_arch_string_is_nas_bench_201s() -> None:
    assert nb201.arch_string(BEST) == (
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
        "+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    )


def test_live_cell_drops_what_cannot_reach_the_output_or_is_fed_by_nothing() -> None:
    # node 1 feeds nothing: its conv is dead
    cell = ("nor_conv_3x3", "nor_conv_3x3", "none", "skip_connect", "none", "nor_conv_1x1")
    assert nb201.live_cell(cell) == ("none", *cell[1:])
    # node 2 is fed by nothing (0->2 and 1->2 none): its op to node 3 is dead
    cell = ("skip_connect", "none", "none", "nor_conv_3x3", "skip_connect", "avg_pool_3x3")
    assert nb201.live_cell(cell)[5] == "none"
    # no path from 0 to 3: every op is dead and the cell outputs zeros
    dead = ("nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3", "none", "none", "none")
    assert nb201.live_cell(dead) == ("none",) * 6
    g = small(dead)
    assert g.node("s1c1_n3").op == "zero"
    assert nb201.cell_of(g) == ("none",) * 6


def test_nas_bench_201s_own_unique_count_is_reproduced() -> None:
    # Dong & Yang 2020 report 6,466 unique cells of the 15,625 (their to_unique_str)
    assert len({nb201.unique_str(c) for c in ALL}) == 6466


def test_canonical_hash_classes_of_all_cells() -> None:
    # isomorphism classes of the compiled networks (one-cell skeleton, see the README for
    # the comparison with NAS-Bench-201's count); bench_samplers.py counts the same 8,765
    # classes in the full 15-cell network
    assert len({small(c).canonical_hash() for c in ALL}) == 8765


def test_a_node_of_the_network_sums_its_inputs_as_nas_bench_201_defines() -> None:
    # 0->1 conv, 0->2 skip, 1->2 skip: node 2 = x0 + conv(x0)
    cell = ("nor_conv_3x3", "skip_connect", "skip_connect", "none", "none", "skip_connect")
    g = small(cell)
    kinds = {(e.src, e.dst): e.kind for e in g.edges}
    assert kinds[("stem", "s1c1_n2")] == kinds[("s1c1_n1", "s1c1_n2")] == "add"
    assert g.node("s1c1_e01").op == "relu_conv3x3_bn"
    torch.manual_seed(0)
    model = build(g).eval()
    x = torch.randn(2, 3, 8, 8)
    assert model(x).shape == (2, 10)


def test_the_space_samples_readable_edges_and_records_the_arch() -> None:
    space = load_space("nb201")
    names = [p.name for p in space.parameters()]
    assert names == [f"edge:{i}->{j}" for i, j in nb201.EDGES]
    params = dict(zip(names, BEST, strict=True))
    g = space.sample(optuna.trial.FixedTrial(params))
    assert nb201.cell_of(g) == BEST
    attrs = space.attrs(params)
    assert attrs["nb201_arch"] == nb201.arch_string(BEST)
    # in the cell's terms: 0 -> 1 -> 2 -> 3 are three convs, and skip_connect 0 -> 3 is
    # an add skip across the whole cell (the compiled graph counts 15 cells and more)
    assert (attrs["depth"], attrs["skips"], attrs["longest_skip"]) == (3, {"add": [3]}, 3)
    # NAS-Bench-201's ResNet-like best cell: ~1.07M parameters with 10 classes
    bound = load_space("nb201", "cifar10")
    g10 = bound.sample(optuna.trial.FixedTrial(params))
    assert sum(r.params for r in costs(g10)) == 1_073_658
    assert space.sample_train(optuna.trial.FixedTrial(params))["lr"] == 0.1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("|nor_conv_3x3~0|+|none~0|", "needs 3 nodes"),
        ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "edge 0->1: unknown op 'conv'"),
        ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "node 1 input 0 reads"),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 must read"),
        ("x" * 1000, "not a NAS-Bench-201 arch string"),
    ],
)
def test_bad_arch_strings_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(nb201.CellError, match=message) as info:
        nb201.parse_arch(text)
    assert "\n" not in str(info.value) and len(str(info.value)) < 200


def test_a_genotype_of_another_skeleton_is_not_read_as_a_cell() -> None:
    g = small(BEST)
    doc = g.to_json()
    doc["nodes"].append({"id": "extra", "op": "identity"})
    doc["edges"] += [{"src": "s1c1_n3", "dst": "extra"}, {"src": "extra", "dst": "lastact"}]
    doc["edges"] = [e for e in doc["edges"] if (e["src"], e["dst"]) != ("s1c1_n3", "lastact")]
    with pytest.raises(nb201.CellError, match="differs from the skeleton"):
        nb201.cell_of(Genotype.from_json(doc))
    resnet = Genotype.from_json((ROOT / "examples/genotypes/resnet20.json").read_text())
    with pytest.raises(nb201.CellError, match="no stem, cell s1c1 or head"):
        nb201.cell_of(resnet)


def test_the_family_takes_nas_bench_201s_op_names_only(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\ndomain: image\ndataset: shapes\nfamily: nb201\n"
        "skeleton: {ops: [none, conv3x3_bn_relu], width: 8}\n"
    )
    with pytest.raises(SpaceError, match=r"skeleton\.ops\[1\]: unknown op 'conv3x3_bn_relu'"):
        load_space(path)
