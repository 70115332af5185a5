"""Relaxing the shipped spaces: every skip-kind and op choice mixed, derivation back."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nas_skip.oneshot import RelaxError, SuperNet, relax
from nas_skip.spaces import load_space

#: per shipped space, a small structure: (fixed choices, choices relaxed, role counts)
SPACES = {
    "deep_mlp": {"depth": 4, "width": 64},
    "resnet_macro": {"depth:s1": 1, "depth:s2": 2, "depth:s3": 1, "width": 8},
    "nb101_cell": {},
    "densenet": {"layers:b1": 2, "layers:b2": 2, "layers:b3": 2, "growth": 8},
    "unet": {"depth": 3, "width": 8},
    "nb201": {},
    "conv1d": {"depth:s1": 1, "depth:s2": 1, "depth:s3": 2, "width": 8},
}


def _uniform(relaxation, mode="softmax"):
    return relaxation.strengths({c.name: [1.0 / len(c.values)] * len(c.values)
                                 for c in relaxation.choices}, mode)  # fmt: skip


@pytest.mark.parametrize("name", SPACES)
def test_every_shipped_space_relaxes_into_a_supernet(name: str) -> None:
    space = load_space(name)
    relaxation = relax(space, SPACES[name])
    params = {p.name for p in space.parameters()}
    relaxed = {c.name for c in relaxation.choices}
    # exactly the skip-kind and op choices are relaxed; the rest are fixed
    assert relaxed and relaxed <= params
    assert all(n.startswith(("edge:", "op:", "res:", "skip:")) for n in relaxed)
    assert not relaxed & set(relaxation.fixed)
    for c in relaxation.choices:  # each choice decides at least one element
        assert c.edges if c.role == "edge" else c.nodes, c.name
    net = SuperNet(relaxation)
    x = torch.randn(2, *space.input_shape)
    out = net(x)
    expected = (2, space.num_classes, *space.input_shape[1:]) if space.domain == "segmentation" \
        else (2, space.num_classes)  # fmt: skip
    assert tuple(out.shape) == expected
    out.float().pow(2).mean().backward()
    assert all(a.grad is not None and a.grad.abs().sum() > 0 for a in net.arch)
    # the derived network is one the space builds from ordinary parameters
    derived = relaxation.derive(_uniform(relaxation))
    g = relaxation.genotype_of(derived)
    assert g.output == "head"
    assert set(derived) >= relaxed


def test_cell_choices_are_shared_by_every_cell_and_nb201_ops_include_skip_and_none() -> None:
    relaxation = relax(load_space("nb201"))
    edge = next(c for c in relaxation.choices if c.name == "edge:0->1")
    assert edge.role == "op" and len(edge.nodes) == 15  # 3 stages x 5 cells
    assert edge.ops == ("zero", "identity", "relu_conv1x1_bn", "relu_conv3x3_bn", "avgpool3x3")
    cell = relax(load_space("nb101_cell"))
    assert sum(c.role == "edge" for c in cell.choices) == 21  # every pair, no edge budget
    assert all(len(c.edges) == 3 for c in cell.choices if c.role == "edge")  # 3 stages


def _deep(depth: int = 4):
    return relax(load_space("deep_mlp"), {"depth": depth, "width": 64})


def _strengths(relaxation, winner: dict[str, str], default: str = "none",
               strength: dict[str, float] | None = None):  # fmt: skip
    out = {}
    for c in relaxation.choices:
        want = winner.get(c.name, default if c.role == "edge" else c.values[0])
        s = (strength or {}).get(c.name, 0.9)
        out[c.name] = [s if v == want else (1 - s) / (len(c.values) - 1) for v in c.values]
    return out


def test_an_edge_whose_none_wins_is_dropped_and_the_rest_keep_their_kind() -> None:
    r = _deep()
    params = r.derive(_strengths(r, {"edge:l0->l1": "add", "edge:l1->l3": "gated"}))
    assert params["edge:l0->l1"] == "add" and params["edge:l1->l3"] == "gated"
    assert r.skips(params) == 2
    g = r.genotype_of(params)
    kinds = sorted(e.kind for e in g.edges if e.kind not in ("seq",))
    assert kinds == ["add", "gated"]


def test_max_skips_keeps_the_strongest() -> None:
    r = _deep()
    winners = {"edge:l0->l1": "add", "edge:l1->l2": "concat", "edge:l2->l3": "scaled"}
    strength = {"edge:l0->l1": 0.5, "edge:l1->l2": 0.9, "edge:l2->l3": 0.7}
    params = r.derive(_strengths(r, winners, strength=strength), max_skips=2)
    assert params["edge:l1->l2"] == "concat" and params["edge:l2->l3"] == "scaled"
    assert params["edge:l0->l1"] == "none"
    assert r.derive(_strengths(r, winners), max_skips=0) == r.derive(_strengths(r, {}))


def test_sigmoid_drops_an_edge_whose_gates_all_end_below_one_half() -> None:
    r = _deep()
    gates = {c.name: [0.3] * len(c.values) for c in r.choices}
    gates["edge:l0->l2"] = [0.99, 0.2, 0.7, 0.1, 0.1]  # none's own gate does not count
    params = r.derive(r.strengths(gates, "sigmoid"))
    assert r.skips(params) == 1 and params["edge:l0->l2"] == "concat"


def test_the_cell_edge_budget_keeps_the_strongest_edges_not_the_shortest() -> None:
    r = relax(load_space("nb101_cell"))
    edges = [c for c in r.choices if c.role == "edge"]
    # every edge wins 'add'; the long-hop ones most strongly
    strength = {c.name: 0.5 + 0.01 * i for i, c in enumerate(edges)}
    params = r.derive(_strengths(r, {c.name: "add" for c in edges}, strength=strength))
    kept = [c.name for c in edges if params[c.name] != "none"]
    assert kept == [c.name for c in edges[-9:]]  # the budget of 9, by strength
    r.genotype_of(params)


def test_fix_is_checked_with_the_choice_named(tmp_path: Path) -> None:
    space = load_space("deep_mlp")
    with pytest.raises(RelaxError, match=r"--fix 'nope': space 'deep_mlp' has no such choice"):
        relax(space, {"nope": 1})
    with pytest.raises(RelaxError, match=r"--fix depth: .* is not an integer in \[4, 32\]"):
        relax(space, {"depth": 10**100})
    with pytest.raises(RelaxError, match=r"--fix depth: 'x' is not a number"):
        relax(space, {"depth": "x"})
    for odd in ("inf", "nan", "1e400", 4.5):
        with pytest.raises(RelaxError, match=r"--fix depth: .* is not an integer"):
            relax(space, {"depth": odd})
    with pytest.raises(RelaxError, match=r"--fix width: 100 is not one of 64, 128, 256"):
        relax(space, {"width": 100})
    # text from a command line is read as the choice's type; a fixed op is not relaxed
    r = relax(space, {"depth": "5", "width": "64", "op:l0": "linear_relu"})
    assert r.fixed["depth"] == 5 and r.fixed["width"] == 64
    assert "op:l0" not in {c.name for c in r.choices}


def test_a_space_with_nothing_to_relax_is_refused_naming_its_choices(tmp_path: Path) -> None:
    path = tmp_path / "plain.yaml"
    path.write_text(
        "name: plain\ndescription: d\ndomain: vector\ndataset: digits\nfamily: chain\n"
        "skeleton:\n  depth: 2\n  width: [8, 16]\n  ops: [linear_relu]\n  hop_window: 1\n"
        "  kinds: [none]\ntrain:\n  lr: 0.05\n"
    )
    with pytest.raises(RelaxError, match=r"space 'plain' has no skip-kind or op choice to "
                                         r"relax \(its choices: width\)"):  # fmt: skip
        relax(load_space(path))


def test_defaults_take_the_largest_structure_and_the_middle_of_training_ranges() -> None:
    r = relax(load_space("deep_mlp"))
    assert r.fixed["depth"] == 32 and r.fixed["width"] == 256
    assert r.fixed["train:lr"] == pytest.approx((0.002 * 0.02) ** 0.5)
    assert r.fixed["train:batch_size"] == 64
    assert r.hparams["optimizer"] == "adamw" and r.hparams["lr"] == r.fixed["train:lr"]
