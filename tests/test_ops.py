"""Every op, merge kind and align: forward, backward, analytic costs, and the semantics."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from helpers import chain
from torch.utils.flop_counter import FlopCounterMode

from nas_skip import Genotype, build
from nas_skip.genotype import costs
from nas_skip.merges import ALIGNS, MERGES
from nas_skip.ops import OPS

torch.set_num_threads(1)

PARAMS: dict[str, dict[str, Any]] = {
    "channels": {"channels": 6, "stride": 2},
    "features": {"features": 7},
    "classes": {"classes": 5},
    "stride": {"stride": 2},
}


def op_doc(name: str) -> dict[str, Any]:
    spec = OPS[name]
    params: dict[str, Any] = {}
    for key in spec.params:
        params.update(PARAMS[key] if key in PARAMS else {})
    params = {k: v for k, v in params.items() if k in spec.params}
    image = spec.domain in ("image", "any")
    return chain([3, 8, 8] if image else [9], {"id": "n", "op": name, **params})


def check(g: Genotype, batch: int = 2) -> torch.Tensor:
    """Forward + backward; every parameter gets a gradient; analytic costs equal torch's."""
    torch.manual_seed(0)
    model = build(g)
    x = torch.randn(batch, *g.input_shape, requires_grad=True)
    y = model(x)
    assert tuple(y.shape) == (batch, *g.shapes[g.output])
    y.float().pow(2).mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
    assert sum(c.params for c in costs(g)) == sum(p.numel() for p in model.parameters())
    with FlopCounterMode(display=False) as counter:
        model(torch.randn(1, *g.input_shape))
    assert sum(c.flops for c in costs(g)) == counter.get_total_flops()
    return y


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_op_runs_forward_and_backward(name: str) -> None:
    check(Genotype.from_json(op_doc(name)))


@pytest.mark.parametrize("kind", sorted(MERGES))
@pytest.mark.parametrize("align", ALIGNS)
@pytest.mark.parametrize(
    "source",
    ["same", "narrow", "wide", "larger", "smaller"],
)
def test_every_merge_and_align(kind: str, align: str, source: str) -> None:
    # the skip source s joins node o, whose main input is b (4 channels, 8x8)
    s_node = {
        "same": {"op": "conv1x1_bn_relu", "channels": 4},
        "narrow": {"op": "conv1x1_bn_relu", "channels": 2},
        "wide": {"op": "conv1x1_bn_relu", "channels": 6},
        "larger": {"op": "upsample2x"},  # 16x16, 3 channels
        "smaller": {"op": "maxpool3x3", "stride": 2},  # 4x4, 3 channels
    }[source]
    doc = chain(
        [3, 8, 8],
        {"id": "s", **s_node},
        {"id": "b", "op": "conv3x3_bn", "channels": 4},
        {"id": "o", "op": "relu"},
        {"id": "h", "op": "gap_linear", "classes": 3},
    )
    # s feeds b through input, so b's main input is the raw image
    doc["edges"][1] = {"src": "input", "dst": "b"}
    doc["edges"].append({"src": "s", "dst": "o", "kind": kind, "align": align})
    wider = source == "wide" and MERGES[kind].role == "additive" and align != "projection"
    if wider:
        with pytest.raises(Exception, match="edge s -> o: align .* cannot zero-pad"):
            Genotype.from_json(doc)
        return
    if kind == "none":
        with pytest.warns(UserWarning, match="pruned dead nodes"):
            g = Genotype.from_json(doc)
    else:
        g = Genotype.from_json(doc)
    check(g)


def merge_doc(kind: str, **params: float) -> dict[str, Any]:
    """o = merge(a, b) with identity ops, so the output is the merge itself."""
    return chain(
        [4],
        {"id": "a", "op": "linear", "features": 4},
        {"id": "b", "op": "linear", "features": 4},
        {"id": "o", "op": "identity"},
        edges=[{"src": "a", "dst": "o", "kind": kind, **params}],
    )


def branches(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    a = model.a(x)
    return a, model.b(a)


def test_merge_semantics() -> None:
    x = torch.randn(3, 4)
    model = build(Genotype.from_json(merge_doc("add")))
    a, b = branches(model, x)
    torch.testing.assert_close(model(x), b + a)
    model = build(Genotype.from_json(merge_doc("scaled", init=0.25)))
    a, b = branches(model, x)
    torch.testing.assert_close(model(x), b + 0.25 * a)
    assert [n for n, _ in model.named_parameters() if "alpha" in n] == ["alpha_a_o"]
    model = build(Genotype.from_json(merge_doc("gated")))  # bias -2.0: carries a at first
    with torch.no_grad():
        model.gate_a_o.weight.zero_()
    a, b = branches(model, x)
    g = 1 / (1 + math.exp(2.0))
    torch.testing.assert_close(model(x), g * b + (1 - g) * a)
    model = build(Genotype.from_json(merge_doc("concat")))
    a, b = branches(model, x)
    torch.testing.assert_close(model(x), torch.cat([a, b], 1))  # topological order: a, b


def test_rezero_starts_as_identity() -> None:
    # identity as seq, branch as scaled with init 0: x + alpha * F(x) == x at initialisation
    doc = chain(
        [5],
        {"id": "f", "op": "linear_relu", "features": 5},
        {"id": "o", "op": "identity"},
        edges=[{"src": "input", "dst": "o"}],
    )
    doc["edges"][1].update(kind="scaled", init=0.0)
    x = torch.randn(2, 5)
    torch.testing.assert_close(build(Genotype.from_json(doc))(x), x)


def test_zero_pad_shortcut_is_resnet_option_a() -> None:
    doc = chain(
        [2, 4, 4],
        {"id": "c", "op": "conv3x3_bn", "channels": 4, "stride": 2},
        {"id": "o", "op": "identity"},
        edges=[{"src": "input", "dst": "o", "kind": "add", "align": "zero_pad"}],
    )
    model = build(Genotype.from_json(doc)).eval()
    x = torch.randn(1, 2, 4, 4)
    shortcut = torch.cat([x[:, :, ::2, ::2], torch.zeros(1, 2, 2, 2)], 1)
    torch.testing.assert_close(model(x), model.c(x) + shortcut)


def test_unknown_class_name_is_refused() -> None:
    from nas_skip import NasSkipError

    g = Genotype.from_json(op_doc("relu"))
    for bad in ("1Net", "class", "my-net", "torch"):
        with pytest.raises(NasSkipError, match="class_name"):
            build(g, class_name=bad)
