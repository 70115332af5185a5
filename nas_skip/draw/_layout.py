"""Where everything of a drawing goes: rows, boxes, arcs and the header, in inches.

Coordinates are unscaled inches with y pointing up (row ``r`` at ``y = -r * step``); the
renderers map them to their own units and apply ``scale`` (below 1 when the picture would
pass the size cap).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import networkx as nx

from nas_skip.draw._font import label_extent
from nas_skip.genotype import INPUT, Edge, Genotype

Point = tuple[float, float]


@dataclass(frozen=True)
class EdgeStyle:
    """How one edge kind is drawn (matplotlib's line style names and dash tuples)."""

    color: str
    linestyle: str | tuple[float, tuple[float, ...]]
    width: float


#: One style per edge kind (a test checks that every kind in ``MERGES`` has one).
EDGE_STYLES: dict[str, EdgeStyle] = {
    "seq": EdgeStyle("#303030", "solid", 1.2),
    "concat": EdgeStyle("#1f77b4", "solid", 1.5),
    "add": EdgeStyle("#2ca02c", "solid", 1.5),
    "scaled": EdgeStyle("#ff7f0e", (0, (5.0, 2.0)), 1.5),
    "gated": EdgeStyle("#9467bd", (0, (6.0, 2.0, 1.5, 2.0)), 1.5),
    "none": EdgeStyle("#bdbdbd", (0, (2.0, 2.0)), 1.0),
}
Sizes = dict[str, tuple[float, float]]  # node id -> (width, height) of its box, inches
_ADDITIVE = {"add", "scaled", "gated"}  # see _arcs: which side an arc bulges to

FONT = 7.0  # points, before any scaling down
_PAD = 0.06  # inches of box padding around a label
_GAP_X, _GAP_Y = 0.35, 0.3  # inches between neighbouring boxes
MARGIN = 0.25  # inches around the drawing
_MIN_W, _MAX_W, _MAX_H = 4.5, 40.0, 160.0  # inches; 160 in at 150 dpi is 24,000 px
LEGEND_COLUMNS = 3
BOX = {"input": ("#e6f4ea", "#2e7d32"), "output": ("#fff1dc", "#c25e00")}
BOX_DEFAULT = ("#edf2fa", "#50607a")


@dataclass(frozen=True)
class NodeBox:
    """One node's box: centre, size, label lines, and its role (input, output or "")."""

    id: str
    x: float
    y: float
    w: float
    h: float
    lines: tuple[str, ...]
    role: str


@dataclass(frozen=True)
class Arrow:
    """One edge: from ``start`` to ``end`` (box borders), through ``control`` if curved
    (a quadratic Bezier curve), drawn in its kind's style."""

    src: str
    dst: str
    kind: str
    start: Point
    control: Point | None
    end: Point


@dataclass(frozen=True)
class Layout:
    """Everything a renderer needs; data coordinates in unscaled inches."""

    title: tuple[str, ...]  # the header's lines (name; size and hash)
    nodes: tuple[NodeBox, ...]
    arrows: tuple[Arrow, ...]
    kinds: tuple[str, ...]  # the edge kinds drawn, for the legend
    left: float  # data x of the drawing's left border
    top: float  # data y of its top border
    width: float  # inches, unscaled
    height: float
    scale: float  # applied to everything (fonts and lines included)
    header: Point  # top-left corner of the title; the legend sits below it


def _shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape)


def _label(g: Genotype, node_id: str) -> str:
    shape = _shape_text(g.shapes[node_id])
    if node_id == INPUT:
        return f"{INPUT}\n{shape}"
    return f"{node_id}\n{g.node(node_id).op}\n{shape}"


def _layers(g: Genotype) -> list[list[str]]:
    """Topological generations of the live graph, each ordered to keep edges short.

    Within a row, nodes sit in the order of the mean column of their predecessors (one
    barycentre pass), ties broken by the genotype's own topological order: deterministic.
    """
    rank = {n: i for i, n in enumerate(g.order)}
    live: nx.DiGraph[str] = nx.DiGraph()
    live.add_nodes_from(g.order)
    live.add_edges_from((e.src, e.dst) for e in g.edges if e.kind != "none")
    column: dict[str, float] = {}
    layers: list[list[str]] = []
    for generation in nx.topological_generations(live):

        def key(n: str) -> tuple[float, int]:
            preds = [column[p] for p in live.predecessors(n)]
            return (sum(preds) / len(preds) if preds else 0.0, rank[n])

        layer = sorted(generation, key=key)
        for i, n in enumerate(layer):
            column[n] = i - (len(layer) - 1) / 2
        layers.append(layer)
    return layers


@functools.lru_cache(maxsize=8192)
def text_size(label: str) -> tuple[float, float]:
    """A label's box in inches at :data:`FONT` points, padding included (matplotlib's font
    metrics; remembered, as a search draws the same labels again and again).

    Computed from the font's metrics without matplotlib (:mod:`._font`: a search worker
    draws every trial), or measured through matplotlib for a label they do not cover."""
    extent = label_extent(label)
    if extent is None:
        extent = matplotlib_extent(label)
    width, height = extent
    return width / 72 + 2 * _PAD, height / 72 + 2 * _PAD


def matplotlib_extent(label: str) -> tuple[float, float]:
    """A label's text extent in points at :data:`FONT` points, measured by matplotlib."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(dpi=72)  # 72 dpi: one pixel is one point
    renderer = FigureCanvasAgg(fig).get_renderer()
    box = fig.text(0, 0, label, fontsize=FONT, ha="center").get_window_extent(renderer)
    return box.width, box.height


def _arcs(
    g: Genotype, layers: list[list[str]], xy: dict[str, Point], sizes: Sizes
) -> tuple[list[tuple[Edge, float]], float]:
    """Each edge with its ``rad`` (0: straight), and how far right or left they reach.

    An edge between neighbouring rows is straight. A longer one bulges outwards from the
    centre (in the centre column: additive kinds right and the others left, swapped for an
    even span, so that a dense block's arcs split between both sides) just past the
    boxes of the rows it passes, plus a lane that grows with its span so that nested skips
    (a U-Net's) stay apart.
    """
    row_of = {n: r for r, layer in enumerate(layers) for n in layer}
    right = [max(xy[n][0] + sizes[n][0] / 2 for n in layer) for layer in layers]
    left = [min(xy[n][0] - sizes[n][0] / 2 for n in layer) for layer in layers]
    arcs: list[tuple[Edge, float]] = []
    reach = max(right)
    for e in g.edges:
        r0, r1 = row_of[e.src], row_of[e.dst]
        if r1 - r0 == 1:
            arcs.append((e, 0.0))
            continue
        (x0, y0), (x1, y1) = xy[e.src], xy[e.dst]
        mid = (x0 + x1) / 2
        span = abs(r1 - r0)
        # half the arcs on each side of a centred chain: by kind, flipped for even spans
        goes_right = (e.kind in _ADDITIVE) != (span % 2 == 0) if mid == 0 else mid > 0
        side = 1.0 if goes_right else -1.0
        passed = range(min(r0, r1) + 1, max(r0, r1)) or (r0, r1)
        if side > 0:
            clear = max(right[r] for r in passed) - mid
        else:
            clear = mid - min(left[r] for r in passed)
        offset = clear + 0.15 + 0.15 * math.log2(span + 1)
        # the Bezier control point sits rad * chord off the chord's middle, to the left of
        # src -> dst (matplotlib's arc3); the curve itself reaches half as far
        rad = 2 * offset / math.hypot(x1 - x0, y1 - y0)
        arcs.append((e, -side * rad if y1 < y0 else side * rad))
        reach = max(reach, abs(mid) + offset)
    return arcs, reach


def _exit_point(centre: Point, towards: Point, size: tuple[float, float]) -> Point:
    """Where the segment from a box's centre towards a point leaves the box."""
    (x, y), (dx, dy) = centre, (towards[0] - centre[0], towards[1] - centre[1])
    t = min(size[0] / 2 / abs(dx) if dx else math.inf, size[1] / 2 / abs(dy) if dy else math.inf)
    return x + min(t, 1.0) * dx, y + min(t, 1.0) * dy


def _arrow(e: Edge, rad: float, xy: dict[str, Point], sizes: Sizes) -> Arrow:
    """The edge's curve, started and ended where its tangents leave the boxes."""
    (x0, y0), (x1, y1) = xy[e.src], xy[e.dst]
    control = ((x0 + x1) / 2 + rad * (y1 - y0), (y0 + y1) / 2 - rad * (x1 - x0))
    start = _exit_point((x0, y0), control if rad else (x1, y1), sizes[e.src])
    end = _exit_point((x1, y1), control if rad else (x0, y0), sizes[e.dst])
    return Arrow(e.src, e.dst, e.kind, start, control if rad else None, end)


def layout(g: Genotype) -> Layout:
    """Lay ``g`` out: rows of boxes, arrows clipped at the boxes, header and size."""
    layers = _layers(g)
    labels = {n: _label(g, n) for n in g.order}
    sizes = {n: text_size(label) for n, label in labels.items()}
    box_w = max(w for w, _ in sizes.values())
    box_h = max(h for _, h in sizes.values())
    step_x, step_y = box_w + _GAP_X, box_h + _GAP_Y
    # rows top to bottom, each row centred on x = 0
    xy = {
        n: ((i - (len(layer) - 1) / 2) * step_x, -r * step_y)
        for r, layer in enumerate(layers)
        for i, n in enumerate(layer)
    }
    arcs, reach = _arcs(g, layers, xy, sizes)
    kinds = tuple(k for k in EDGE_STYLES if any(e.kind == k for e in g.edges))
    header = 0.4 + 0.18 * math.ceil(len(kinds) / LEGEND_COLUMNS)  # title, legend rows
    width = max(2 * (reach + MARGIN), _MIN_W)
    height = (len(layers) - 1) * step_y + box_h + 2 * MARGIN + header
    scale = min(1.0, _MAX_W / width, _MAX_H / height)  # past the cap, shrink everything
    top = box_h / 2 + MARGIN + header
    summary = f"{len(g.nodes)} nodes, {len(g.edges)} edges, {g.canonical_hash()}"
    nodes = tuple(
        NodeBox(
            n,
            x,
            y,
            *sizes[n],
            tuple(labels[n].split("\n")),
            "input" if n == INPUT else "output" if n == g.output else "",
        )  # fmt: skip
        for n, (x, y) in xy.items()
    )
    return Layout(
        title=(g.name or "genotype", summary),
        nodes=nodes,
        arrows=tuple(_arrow(e, rad, xy, sizes) for e, rad in arcs),
        kinds=kinds,
        left=-width / 2,
        top=top,
        width=width,
        height=height,
        scale=scale,
        header=(-width / 2 + MARGIN, top - MARGIN / 2),
    )
