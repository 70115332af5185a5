"""Topology drawings: every edge kind styled and in the legend, files written, same bytes."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from nas_skip import Genotype, NasSkipError
from nas_skip.draw import EDGE_STYLES, SUFFIXES, _layers, draw, to_svg
from nas_skip.merges import MERGES

SVG = "{http://www.w3.org/2000/svg}"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def every_kind(domain: str) -> dict[str, Any]:
    """A genotype using every edge kind: b and c in parallel, d merging them and a skip."""
    image = domain == "image"
    width = "channels" if image else "features"
    body, head = ("conv3x3_bn_relu", "gap_linear") if image else ("linear_relu", "linear_head")
    return {
        "schema": 1,
        "name": f"every_kind_{domain}",
        "input": {"shape": [3, 8, 8] if image else [6]},
        "nodes": [
            {"id": "a", "op": body, width: 8},
            {"id": "b", "op": body, width: 8},
            {"id": "c", "op": body, width: 8},
            {"id": "d", "op": "relu"},
            {"id": "e", "op": body, width: 8},
            {"id": "head", "op": head, "classes": 4},
        ],
        "edges": [
            {"src": "input", "dst": "a"},
            {"src": "a", "dst": "b"},
            {"src": "a", "dst": "c"},
            {"src": "b", "dst": "d"},
            {"src": "c", "dst": "d", "kind": "concat"},
            {"src": "a", "dst": "d", "kind": "add"},
            {"src": "d", "dst": "e"},
            {"src": "b", "dst": "e", "kind": "scaled", "init": 0.0},
            {"src": "a", "dst": "e", "kind": "gated"},
            {"src": "c", "dst": "e", "kind": "none"},
            {"src": "e", "dst": "head"},
        ],
        "output": "head",
    }


def residual() -> Genotype:
    """A two-block residual chain: seq and add edges only."""
    nodes, edges, prev = [], [{"src": "input", "dst": "r0"}], "r0"
    nodes.append({"id": "r0", "op": "linear_relu", "features": 4})
    for i in (1, 2):
        nodes += [
            {"id": f"f{i}", "op": "linear_relu", "features": 4},
            {"id": f"r{i}", "op": "relu"},
        ]
        edges += [
            {"src": prev, "dst": f"f{i}"},
            {"src": f"f{i}", "dst": f"r{i}"},
            {"src": prev, "dst": f"r{i}", "kind": "add"},
        ]
        prev = f"r{i}"
    doc = {"schema": 1, "input": {"shape": [4]}, "nodes": nodes, "edges": edges, "output": prev}
    return Genotype.from_json(doc)


def groups(svg: str) -> dict[str, ET.Element]:
    """The SVG's elements by id."""
    return {el.attrib["id"]: el for el in ET.fromstring(svg).iter() if "id" in el.attrib}


def legend_entries(svg: str) -> set[str]:
    legend = groups(svg)["legend"]
    return {"".join(t.itertext()).strip() for t in legend.iter(f"{SVG}text")}


def test_every_kind_has_a_distinct_style() -> None:
    assert set(EDGE_STYLES) == set(MERGES)
    looks = {(s.color, str(s.linestyle)) for s in EDGE_STYLES.values()}
    assert len(looks) == len(EDGE_STYLES)


@pytest.mark.parametrize("domain", ["image", "vector"])
def test_svg_shows_every_node_edge_and_kind(domain: str) -> None:
    g = Genotype.from_json(every_kind(domain))
    svg = to_svg(g)
    ids = groups(svg)
    for n in g.order:
        assert f"node-{n}" in ids
    for e in g.edges:  # the switched-off edge c -> e included
        assert f"edge-{e.src}-{e.dst}" in ids
    text = "".join(ET.fromstring(svg).itertext())
    op, d_shape = ("conv3x3_bn_relu", "16x8x8") if domain == "image" else ("linear_relu", "16")
    assert op in text
    assert d_shape in text  # b and c concatenated
    assert g.canonical_hash() in text
    assert legend_entries(svg) == set(MERGES)


def test_legend_lists_only_the_kinds_used() -> None:
    assert legend_entries(to_svg(residual())) == {"seq", "add"}


def test_svg_is_deterministic() -> None:
    g = Genotype.from_json(every_kind("image"))
    first = to_svg(g)
    assert to_svg(Genotype.from_json(g.to_json())) == first
    assert "<dc:date>" not in first


def test_none_edges_do_not_push_nodes_down() -> None:
    doc = every_kind("vector")
    # without the none edge b -> c, b and c share a row; counting it would put c below b
    doc["edges"].append({"src": "b", "dst": "c", "kind": "none"})
    layers = _layers(Genotype.from_json(doc))
    row = {n: r for r, layer in enumerate(layers) for n in layer}
    assert row["b"] == row["c"] == 2
    assert "edge-b-c" in groups(to_svg(Genotype.from_json(doc)))


def test_layers_follow_every_live_edge() -> None:
    g = Genotype.from_json(every_kind("image"))
    row = {n: r for r, layer in enumerate(_layers(g)) for n in layer}
    assert sorted(row) == sorted(g.order)
    assert all(row[e.src] < row[e.dst] for e in g.edges if e.kind != "none")


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_draw_writes_the_file_and_its_folders(tmp_path: Path, suffix: str) -> None:
    path = draw(residual(), tmp_path / "new" / f"net{suffix.upper()}")
    data = path.read_bytes()
    if suffix == ".png":
        assert data.startswith(PNG_MAGIC)
    else:
        assert "node-r2" in groups(data.decode())


@pytest.mark.parametrize("name", ["net.pdf", "net"])
def test_draw_refuses_other_suffixes(tmp_path: Path, name: str) -> None:
    with pytest.raises(NasSkipError, match=r"suffixes: \.png, \.svg"):
        draw(residual(), tmp_path / "out" / name)
    assert not (tmp_path / "out").exists()


def test_deep_network_stays_legible() -> None:
    # a ResNet-56-sized chain (170 nodes) fits under the size cap at full font size
    nodes, edges, prev = [], [], "input"
    for i in range(56):
        a, b, r = f"b{i}a", f"b{i}b", f"b{i}"
        nodes += [
            {"id": a, "op": "linear_relu", "features": 4},
            {"id": b, "op": "linear", "features": 4},
            {"id": r, "op": "relu"},
        ]
        edges += [{"src": prev, "dst": a}, {"src": a, "dst": b}, {"src": b, "dst": r}]
        if prev != "input":
            edges.append({"src": prev, "dst": r, "kind": "add"})
        prev = r
    doc = {"schema": 1, "input": {"shape": [4]}, "nodes": nodes, "edges": edges, "output": prev}
    root = ET.fromstring(to_svg(Genotype.from_json(doc)))
    height = float(root.attrib["height"].removesuffix("pt"))
    assert 100 * 72 < height <= 160 * 72  # grows with depth, capped
    sizes = {
        t.attrib["style"].split("font-size: ")[1].split("px")[0] for t in root.iter(f"{SVG}text")
    }
    assert sizes == {"7"}  # not scaled down
