"""Hostile genotypes: small documents with huge numbers finish fast, or are one-line errors.

The work of validating a genotype grows with its size, never with a number in it (a
length, a width, a stride): each test holds input that hung or crashed before.
"""

from __future__ import annotations

import json
import warnings
from itertools import product
from typing import Any

import pytest
from helpers import chain, finishes, genotype_docs, nas_skip_cli, repair
from hypothesis import HealthCheck, given, settings

from nas_skip import Genotype, GenotypeError
from nas_skip.genotype import costs
from nas_skip.merges import _spatial
from nas_skip.ops import MAX_ELEMENTS


def pools(*strides: int) -> list[dict[str, Any]]:
    return [{"id": f"p{i}", "op": "maxpool3x3", "stride": s} for i, s in enumerate(strides)]


def test_the_issues_genotype_is_refused_at_once() -> None:
    # 1.2 KB: a 10**12-long image pooled 13 times by 8, upsampled, and an add skip from the
    # input; alignment used to try every stride from 2.5e11 up, one at a time
    doc = chain(
        [1, 10**12, 4],
        *pools(*[8] * 13),
        {"id": "u", "op": "upsample2x"},
        {"id": "o", "op": "identity"},
        edges=[{"src": "input", "dst": "o", "kind": "add"}],
    )
    assert len(json.dumps(doc)) < 1300
    error = finishes(lambda: Genotype.from_json(doc), seconds=5)
    assert isinstance(error, GenotypeError)
    assert str(error).startswith("edge input -> o: spatial size [1000000000000, 4] cannot")


def test_a_huge_stride_that_aligns_is_found_in_closed_form() -> None:
    # height 3 * 2**30 and width 2**31 pooled by 2**31 are 2 x 1: the one stride that takes
    # the input there is 2**31, half a billion past the first that fits the height
    h, w = 3 * 2**30, 2**31
    doc = chain(
        [1, h, w],
        *pools(*[8] * 10, 2),
        {"id": "o", "op": "identity"},
        edges=[{"src": "input", "dst": "o", "kind": "add"}],
    )
    g = finishes(lambda: Genotype.from_json(doc), seconds=5)
    assert isinstance(g, Genotype)
    assert g.shapes["o"] == (1, 2, 1)
    (skip,) = g.plans["o"].additive
    assert skip.shortcut.steps == (f"{{x}}[:, :, ::{2**31}, ::{2**31}]",)
    assert sum(c.params for c in costs(g)) == 0


def test_the_closed_form_stride_is_the_smallest_that_fits() -> None:
    def by_search(s: tuple[int, ...], d: tuple[int, ...]) -> tuple[str, int] | None:
        if s == d:
            return "same", 1
        for f in range(2, max(s) + 2):  # ceil(a / f) is 1 for every f past the largest a
            if all(-(-a // f) == b for a, b in zip(s, d, strict=True)):
                return "down", f
        ups = {b // a for a, b in zip(s, d, strict=True) if b % a == 0}
        if len(ups) == 1 and all(b == a * min(ups) for a, b in zip(s, d, strict=True)):
            return "up", ups.pop()
        return None

    sizes = range(1, 14)
    for a0, a1, b0, b1 in product(sizes, sizes, range(1, 8), [1, 2, 3, 26]):
        s, d = (a0, a1), (b0, b1)
        assert _spatial((1, *s), (1, *d)) == by_search(s, d), (s, d)
    for a, b in product(range(1, 40), range(1, 40)):
        assert _spatial((1, a), (1, b)) == by_search((a,), (b,)), (a, b)


@pytest.mark.parametrize(
    "shape",
    [[65536, 2**40, 2**40], [2**64], [1, 2**63], [3, 10**4000, 1]],
    ids=["image", "vector", "signal", "digits"],
)
def test_an_input_larger_than_a_tensor_is_refused(shape: list[int]) -> None:
    doc = chain(shape, {"id": "a", "op": "relu"})
    error = finishes(lambda: Genotype.from_json(doc))
    assert isinstance(error, GenotypeError)
    assert str(error).startswith("input.shape: ") and f"{MAX_ELEMENTS:,} elements" in str(error)


def test_a_node_that_grows_past_a_tensor_is_refused_naming_it() -> None:
    ups = [{"id": f"u{i}", "op": "upsample2x"} for i in range(3)]
    doc = chain([1, 2**30, 2**30], *ups)  # 2**60 elements, then 2**62, 2**64
    error = finishes(lambda: Genotype.from_json(doc))
    assert isinstance(error, GenotypeError)
    assert str(error).startswith("node 'u1': its output of shape [1, 4294967296, 4294967296]")


def test_the_widest_layers_count_their_cost_in_closed_form() -> None:
    doc = chain(
        [65536, 2**40],
        {"id": "c", "op": "conv1d_k7_bn_relu", "channels": 65536},
        {"id": "h", "op": "flatten1d_linear", "classes": 100000},
        edges=[{"src": "input", "dst": "h", "kind": "gated"}],
    )
    g = finishes(lambda: Genotype.from_json(doc))
    assert isinstance(g, Genotype)
    assert sum(c.params for c in costs(g)) > 65536 * 2**40 * 100000


@pytest.mark.parametrize(
    "text,message",
    [
        ('{"schema": 1, "input": {"shape": [1' + "0" * 5000 + "]}}", "too many digits"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        (b"\xff\xfe\xfd", "not UTF-8"),
    ],
    ids=["digits", "nesting", "bytes"],
)
def test_a_json_text_python_cannot_read_is_one_line(text: str | bytes, message: str) -> None:
    error = finishes(lambda: Genotype.from_json(text))
    assert isinstance(error, GenotypeError) and message in str(error)


def test_the_cli_reads_an_unreadable_json_as_one_line(tmp_path: Any) -> None:
    path = tmp_path / "g.json"
    path.write_text('{"schema": 1, "input": {"shape": [1' + "0" * 5000 + "]}}")
    done = nas_skip_cli("show", path)
    assert done.returncode == 2 and done.stderr.startswith("error: ")
    assert "too many digits" in done.stderr and len(done.stderr.splitlines()) == 1
    path.write_text("[" * 100_000 + "]" * 100_000)
    done = nas_skip_cli("show", path)
    assert "nested too deeply" in done.stderr and len(done.stderr.splitlines()) == 1


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=genotype_docs())
def test_repair_in_one_pass_equals_repair_one_edge_at_a_time(doc: dict[str, Any]) -> None:
    for e in doc["edges"]:  # undo the generator's repairs
        e["align"] = "auto"
    want = repair(json.loads(json.dumps(doc)))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = Genotype.from_json(doc, repair=True)
    except GenotypeError:
        got = None
    assert got == want
    if got is not None:
        assert got.canonical_hash() == want.canonical_hash()  # type: ignore[union-attr]


def test_repair_is_one_pass_however_many_edges_it_repairs() -> None:
    # 500 blocks, each with an add skip from an 8-wide input into a 4-wide layer: each of
    # the 500 needs a projection (one validation per repair took minutes on such samples)
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    prev = "input"
    for i in range(500):
        nodes += [
            {"id": f"a{i}", "op": "linear", "features": 4},
            {"id": f"c{i}", "op": "identity"},
            {"id": f"e{i}", "op": "linear", "features": 8},
        ]
        edges += [
            {"src": prev, "dst": f"a{i}"},
            {"src": f"a{i}", "dst": f"c{i}"},
            {"src": prev, "dst": f"c{i}", "kind": "add"},
            {"src": f"c{i}", "dst": f"e{i}"},
        ]
        prev = f"e{i}"
    doc = {"schema": 1, "input": {"shape": [8]}, "nodes": nodes, "edges": edges, "output": prev}
    with pytest.raises(GenotypeError, match="edge input -> c0: align 'auto' cannot zero-pad"):
        Genotype.from_json(doc)
    g = finishes(lambda: Genotype.from_json(doc, repair=True), seconds=20)
    assert isinstance(g, Genotype)
    repaired = {(e.src, e.dst) for e in g.edges if e.align == "projection"}
    assert repaired == {("input", "c0")} | {(f"e{i - 1}", f"c{i}") for i in range(1, 500)}
    assert g == Genotype.from_json(g.to_json())  # the repaired document validates as it is
