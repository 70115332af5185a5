"""Every op, merge kind and align: forward, backward, analytic costs, and the semantics."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from helpers import chain
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from nas_skip import Genotype, build
from nas_skip.genotype import costs
from nas_skip.merges import ALIGNS, MERGES, make_shortcut
from nas_skip.ops import OPS

torch.set_num_threads(1)

PARAMS: dict[str, dict[str, Any]] = {
    "channels": {"channels": 6, "stride": 2},
    "features": {"features": 7},
    "classes": {"classes": 5},
    "stride": {"stride": 2},
    "vocab": {"vocab": 10},
    "heads": {"heads": 2},
    "ratio": {"ratio": 2},
}
#: a sequence genotype's token ids (length 12, vocabulary 10), embedded to width 8
EMBED = {"id": "e", "op": "embed", "vocab": 10, "features": 8}


def sequence(*nodes: dict[str, Any]) -> dict[str, Any]:
    """A sequence genotype document: token ids -> the embedding -> ``nodes`` in a chain."""
    doc = chain([12], EMBED, *nodes)
    doc["input"]["domain"] = "sequence"
    return doc


def op_doc(name: str) -> dict[str, Any]:
    spec = OPS[name]
    params: dict[str, Any] = {}
    for key in spec.params:
        params.update(PARAMS[key] if key in PARAMS else {})
    params = {k: v for k, v in params.items() if k in spec.params}
    if spec.domain == "tokens":
        doc = chain([12], {"id": "n", "op": name, **params, "features": 8})
        doc["input"]["domain"] = "sequence"
        return doc
    if spec.domain == "sequence":
        return sequence({"id": "n", "op": name, **params})
    shape = {"image": [3, 8, 8], "any": [3, 8, 8], "signal": [3, 11], "vector": [9]}
    return chain(shape[spec.domain], {"id": "n", "op": name, **params})


def check(g: Genotype, batch: int = 2) -> torch.Tensor:
    """Forward + backward; every parameter gets a gradient; analytic costs equal torch's."""
    torch.manual_seed(0)
    model = build(g)

    def example(n: int) -> torch.Tensor:
        if g.sequence:  # token ids: no gradient to check at the input
            return torch.randint(0, 10, (n, *g.input_shape))
        return torch.randn(n, *g.input_shape, requires_grad=True)

    x = example(batch)
    y = model(x)
    assert tuple(y.shape) == (batch, *g.shapes[g.output])
    y.float().pow(2).mean().backward()
    assert g.sequence or (x.grad is not None and torch.isfinite(x.grad).all())
    for name, p in model.named_parameters():
        assert p.grad is not None, name
    assert sum(c.params for c in costs(g)) == sum(p.numel() for p in model.parameters())
    # attention through the math kernel: the counter counts no FLOPs of the fused CPU one
    with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
        model(example(1))
    assert sum(c.flops for c in costs(g)) == counter.get_total_flops()
    return y


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_op_runs_forward_and_backward(name: str) -> None:
    check(Genotype.from_json(op_doc(name)))


def validated(
    doc: dict[str, Any], kind: str, align: str, wide: bool, edge: str
) -> Genotype | None:
    """The genotype of ``doc`` whose skip ``edge`` has ``kind`` and ``align``; None where a
    ``wide`` source cannot be zero-padded into an additive merge (refused, naming the
    edge); a ``none`` skip leaves its source dead (pruned with a warning)."""
    if wide and MERGES[kind].role == "additive" and align != "projection":
        with pytest.raises(Exception, match=f"edge {edge}: align .* cannot zero-pad"):
            Genotype.from_json(doc)
        return None
    if kind == "none":
        with pytest.warns(UserWarning, match="pruned dead nodes"):
            return Genotype.from_json(doc)
    return Genotype.from_json(doc)


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
    g = validated(doc, kind, align, source == "wide", "s -> o")
    if g is not None:
        check(g)


@pytest.mark.parametrize("head", ["gap1d_linear", "flatten1d_linear"])
@pytest.mark.parametrize("kind", sorted(MERGES))
@pytest.mark.parametrize("align", ALIGNS)
@pytest.mark.parametrize("source", ["same", "narrow", "wide", "longer", "shorter"])
def test_every_merge_and_align_on_signals_into_a_head(
    kind: str, align: str, source: str, head: str
) -> None:
    # the skip source a joins the head itself, whose main input is b (4 channels, length 8);
    # a precedes b in topological order, so b is the main path that concat inputs align to
    a_node, b_stride = {
        "same": ({"op": "conv1d_k1_bn_relu", "channels": 4}, 1),
        "narrow": ({"op": "conv1d_k3_bn_relu", "channels": 2}, 1),
        "wide": ({"op": "conv1d_k5_bn", "channels": 6}, 1),
        "longer": ({"op": "sepconv1d_k3", "channels": 3}, 2),  # length 8 into b's 4
        "shorter": ({"op": "maxpool1d_k3", "stride": 2}, 1),  # length 4 into b's 8
    }[source]
    doc = chain(
        [3, 8],
        {"id": "a", **a_node},
        {"id": "b", "op": "conv1d_k7_bn_relu", "channels": 4, "stride": b_stride},
        {"id": "h", "op": head, "classes": 3},
    )
    doc["edges"][1] = {"src": "input", "dst": "b"}
    doc["edges"].append({"src": "a", "dst": "h", "kind": kind, "align": align})
    g = validated(doc, kind, align, source == "wide", "a -> h")
    if g is None:
        return
    widths = {"same": 4, "narrow": 2, "wide": 6, "longer": 3, "shorter": 3}
    base = 4 + widths[source] if kind in ("seq", "concat") else 4
    assert g.plans["h"].merged == (base, 4 if b_stride == 2 else 8)
    check(g)


@pytest.mark.parametrize("kind", sorted(MERGES))
@pytest.mark.parametrize("align", ALIGNS)
@pytest.mark.parametrize("source", ["same", "narrow", "wide"])
def test_every_merge_and_align_on_sequences(kind: str, align: str, source: str) -> None:
    # the skip source a, (12, 8) or narrower or wider, joins o, whose main input is b (12, 8):
    # features are the last axis, so concat, zero-pad and projection work on it
    a_node = {
        "same": {"op": "attn", "heads": 2},
        "narrow": {"op": "lm_head", "classes": 4},
        "wide": {"op": "lm_head", "classes": 12},
    }[source]
    doc = sequence(
        {"id": "a", **a_node},
        {"id": "b", "op": "layernorm"},
        {"id": "o", "op": "identity"},
        {"id": "h", "op": "lm_head", "classes": 3},
    )
    doc["edges"][2] = {"src": "e", "dst": "b"}
    doc["edges"].append({"src": "a", "dst": "o", "kind": kind, "align": align})
    g = validated(doc, kind, align, source == "wide", "a -> o")
    if g is None:
        return
    widths = {"same": 8, "narrow": 4, "wide": 12}
    assert g.plans["o"].merged == (12, 8 + widths[source] if kind in ("seq", "concat") else 8)
    check(g)


def test_sequence_merges_compute_their_semantics_on_the_feature_axis() -> None:
    # o = b + zero-padded a: the padding is on the features (last axis), not the positions
    doc = sequence(
        {"id": "a", "op": "lm_head", "classes": 5},
        {"id": "b", "op": "layernorm"},
        {"id": "o", "op": "identity"},
    )
    doc["edges"][2] = {"src": "e", "dst": "b"}
    doc["edges"].append({"src": "a", "dst": "o", "kind": "add"})
    g = Genotype.from_json(doc)
    model = build(g).eval()
    x = torch.randint(0, 10, (2, 12))
    e = model.e(x)
    a, b = model.a(e), model.b(e)
    expected = b + torch.nn.functional.pad(a, (0, 3))
    torch.testing.assert_close(model(x), expected)


def test_token_ids_feed_only_an_embedding() -> None:
    with pytest.raises(Exception, match="node 'n': the input holds token ids, .* not op 'relu'"):
        Genotype.from_json(op_doc("relu") | {"input": {"shape": [12], "domain": "sequence"}})
    doc = sequence({"id": "o", "op": "layernorm"})
    doc["edges"].append({"src": "input", "dst": "o", "kind": "add"})
    with pytest.raises(Exception, match="node 'o': the input holds token ids"):
        Genotype.from_json(doc)
    with pytest.raises(Exception, match="op 'embed' takes tokens input"):
        Genotype.from_json(chain([12, 8], {"id": "n", "op": "embed", "vocab": 3, "features": 4}))


@pytest.mark.parametrize(
    ("shape", "domain", "message"),
    [
        ([12, 8], "sequence", "a sequence input holds token ids, shape \\[length\\]"),
        ([12], "text", "input.domain: must be 'sequence'"),
        ([12], 3, "input.domain: must be 'sequence'"),
    ],
)
def test_a_sequence_input_is_refused_unless_it_holds_token_ids(
    shape: list[int], domain: Any, message: str
) -> None:
    doc = sequence({"id": "h", "op": "lm_head", "classes": 3})
    doc["input"] = {"shape": shape, "domain": domain}
    with pytest.raises(Exception, match=message):
        Genotype.from_json(doc)


def test_sequence_lengths_never_align_and_heads_must_divide_the_width() -> None:
    with pytest.raises(Exception, match="3 heads do not divide the width 8"):
        Genotype.from_json(sequence({"id": "n", "op": "attn", "heads": 3}))


def test_zero_pad_shortcut_on_signals_subsamples_and_pads() -> None:
    doc = chain(
        [2, 7],
        {"id": "c", "op": "conv1d_k5_bn", "channels": 5, "stride": 2},
        {"id": "o", "op": "identity"},
        edges=[{"src": "input", "dst": "o", "kind": "add", "align": "zero_pad"}],
    )
    model = build(Genotype.from_json(doc)).eval()
    x = torch.randn(1, 2, 7)
    shortcut = torch.cat([x[:, :, ::2], torch.zeros(1, 3, 4)], 1)  # length ceil(7 / 2)
    torch.testing.assert_close(model(x), model.c(x) + shortcut)
    doc["edges"][-1]["align"] = "projection"
    model = build(Genotype.from_json(doc))
    assert isinstance(model.proj_input_o[0], torch.nn.Conv1d)
    assert model.proj_input_o[0].stride == (2,)


@pytest.mark.parametrize("kind", ["add", "scaled"])
@pytest.mark.parametrize("op", ["gap_linear", "zero"])
def test_an_inline_merge_is_one_operand_of_the_op(kind: str, op: str) -> None:
    # one add / scaled merge is written inline (b + s): a template that uses its input in
    # an expression (x.mean(...), x * 0.0) must take the whole sum
    doc = chain(
        [2, 4, 4],
        {"id": "b", "op": "conv1x1_bn_relu", "channels": 2},
        {"id": "h", "op": op, **({"classes": 3} if op == "gap_linear" else {})},
        edges=[{"src": "input", "dst": "h", "kind": kind}],
    )
    model = build(Genotype.from_json(doc))
    x = torch.randn(2, 2, 4, 4)
    merged = model.b(x) + x
    want = model.h(merged.mean((2, 3))) if op == "gap_linear" else torch.zeros_like(merged)
    torch.testing.assert_close(model(x), want)


def test_a_shortcut_parenthesises_an_input_with_an_operator() -> None:
    # every step of an alignment subscripts or calls its input: a sum must go whole
    down = make_shortcut((2, 8, 8), (4, 4, 4), "zero_pad", "edge a -> b")
    assert down.call("", "a + b") == "F.pad((a + b)[:, :, ::2, ::2], (0, 0, 0, 0, 0, 2))"
    up = make_shortcut((2, 4), (2, 8), "zero_pad", "edge a -> b")
    assert up.call("", "a * 0.0").startswith("F.interpolate((a * 0.0), scale_factor=2.0")


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
