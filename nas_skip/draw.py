"""Drawing a genotype: nodes in topological layers, edges styled by kind (matplotlib).

The picture reads top to bottom: one row per topological generation of the compiled graph
(``none`` edges do not count for the layering, but are drawn, dashed light grey). Each node
shows its id, op and output shape; an edge that spans more than one row is drawn as an arc
beside the rows so that it does not hide the main chain. The figure grows with the depth
up to a cap, past which the whole picture (fonts included) is scaled down uniformly.

matplotlib is imported only when a picture is drawn, and only through its object API
(``Figure`` and the Agg canvas): pyplot's global state, and the backend of a notebook that
calls us, stay untouched.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import networkx as nx

from nas_skip.errors import NasSkipError
from nas_skip.genotype import INPUT, Edge, Genotype

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

#: The file suffixes :func:`draw` writes.
SUFFIXES = (".png", ".svg")


@dataclass(frozen=True)
class EdgeStyle:
    """How one edge kind is drawn."""

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

_FONT = 7.0  # points, before any scaling down
_PAD = 0.06  # inches of box padding around a label
_GAP_X, _GAP_Y = 0.35, 0.3  # inches between neighbouring boxes
_MARGIN = 0.25  # inches around the drawing
_MIN_W, _MAX_W, _MAX_H = 4.5, 40.0, 160.0  # inches; 160 in at _DPI is 24,000 px (limit 65,535)
_DPI = 150
_LEGEND_COLUMNS = 3
_BOX = {"input": ("#e6f4ea", "#2e7d32"), "output": ("#fff1dc", "#c25e00")}
_BOX_DEFAULT = ("#edf2fa", "#50607a")


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


def _text_sizes(labels: dict[str, str]) -> Sizes:
    """Width and height in inches of each label at :data:`_FONT` points, padding included."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(dpi=72)  # 72 dpi: one pixel is one point
    renderer = FigureCanvasAgg(fig).get_renderer()
    sizes = {}
    for node_id, label in labels.items():
        box = fig.text(0, 0, label, fontsize=_FONT, ha="center").get_window_extent(renderer)
        sizes[node_id] = (box.width / 72 + 2 * _PAD, box.height / 72 + 2 * _PAD)
    return sizes


def _arcs(
    g: Genotype, layers: list[list[str]], xy: dict[str, tuple[float, float]], sizes: Sizes
) -> tuple[list[tuple[Edge, float]], float]:
    """Each edge with its arc3 ``rad`` (0: straight), and how far right or left they reach.

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
        # arc3 sets the Bezier control point rad * chord off the chord, to the left of
        # src -> dst; the curve itself reaches half as far
        rad = 2 * offset / math.hypot(x1 - x0, y1 - y0)
        arcs.append((e, -side * rad if y1 < y0 else side * rad))
        reach = max(reach, abs(mid) + offset)
    return arcs, reach


def _exit_point(
    centre: tuple[float, float], towards: tuple[float, float], size: tuple[float, float]
) -> tuple[float, float]:
    """Where the segment from a box's centre towards a point leaves the box."""
    (x, y), (dx, dy) = centre, (towards[0] - centre[0], towards[1] - centre[1])
    t = min(size[0] / 2 / abs(dx) if dx else math.inf, size[1] / 2 / abs(dy) if dy else math.inf)
    return x + min(t, 1.0) * dx, y + min(t, 1.0) * dy


def _draw_nodes(
    ax: Axes, g: Genotype, xy: dict[str, tuple[float, float]], sizes: Sizes, scale: float
) -> dict[str, Rectangle]:
    """Draw each node's box and label; return plain rectangles for arrows to clip at."""
    from matplotlib.patches import FancyBboxPatch, Rectangle

    outlines = {}
    for n, (x, y) in xy.items():
        w, h = sizes[n]
        role = "input" if n == INPUT else "output" if n == g.output else ""
        face, edge = _BOX.get(role, _BOX_DEFAULT)
        corner = (x - w / 2, y - h / 2)
        box = FancyBboxPatch(
            corner,
            w,
            h,
            boxstyle="round,pad=0,rounding_size=0.06",
            facecolor=face,
            edgecolor=edge,
            linewidth=(1.6 if role == "output" else 0.8) * scale,
            zorder=2,
            gid=f"node-{n}",
        )
        ax.add_artist(box)
        ax.text(x, y, _label(g, n), fontsize=_FONT * scale, ha="center", va="center", zorder=3)
        # the same outline without the rounding: far cheaper for matplotlib to clip at
        outlines[n] = Rectangle(corner, w, h, transform=ax.transData)
    return outlines


def _draw_edges(
    ax: Axes,
    arcs: list[tuple[Edge, float]],
    xy: dict[str, tuple[float, float]],
    sizes: Sizes,
    outlines: dict[str, Rectangle],
    scale: float,
) -> None:
    from matplotlib.patches import FancyArrowPatch

    for e, rad in arcs:
        style = EDGE_STYLES[e.kind]
        start, end = xy[e.src], xy[e.dst]
        # matplotlib clips a curve at the boxes
        clip_a: Rectangle | None = outlines[e.src]
        clip_b: Rectangle | None = outlines[e.dst]
        if not rad:  # straight: clipped here, much faster for a deep chain
            start, end = (
                _exit_point(start, end, sizes[e.src]),
                _exit_point(end, start, sizes[e.dst]),
            )
            clip_a = clip_b = None
        arrow = FancyArrowPatch(
            start,
            end,
            patchA=clip_a,
            patchB=clip_b,
            connectionstyle=f"arc3,rad={rad:.4f}",
            arrowstyle="-|>",
            mutation_scale=9 * scale,
            shrinkA=0,
            shrinkB=1,
            color=style.color,
            linestyle=style.linestyle,
            linewidth=style.width * scale,
            zorder=1 if e.kind != "none" else 0,
            gid=f"edge-{e.src}-{e.dst}",
        )
        ax.add_artist(arrow)  # not add_patch: the limits are set, and it would clip again


def _draw_header(
    ax: Axes, g: Genotype, kinds: list[str], corner: tuple[float, float], scale: float
) -> None:
    """The title (name, size, hash) and, below it, the legend of the edge kinds drawn."""
    from matplotlib.lines import Line2D

    x, y = corner
    summary = f"{len(g.nodes)} nodes, {len(g.edges)} edges, {g.canonical_hash()}"
    title = f"{g.name or 'genotype'}\n{summary}"
    ax.text(x, y, title, fontsize=_FONT * scale, ha="left", va="top")
    handles = [
        Line2D(
            [],
            [],
            color=EDGE_STYLES[k].color,
            linestyle=EDGE_STYLES[k].linestyle,
            linewidth=EDGE_STYLES[k].width * scale,
            label=k,
        )
        for k in kinds
    ]
    legend = ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(x, y - 0.3),
        bbox_transform=ax.transData,
        borderaxespad=0,
        borderpad=0,
        ncols=_LEGEND_COLUMNS,
        fontsize=_FONT * scale,
        frameon=False,
        handlelength=3.0,
        columnspacing=1.5,
    )
    legend.set_gid("legend")


def _figure(g: Genotype) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    layers = _layers(g)
    sizes = _text_sizes({n: _label(g, n) for n in g.order})
    box_w = max(w for w, _ in sizes.values())
    box_h = max(h for _, h in sizes.values())
    step_x, step_y = box_w + _GAP_X, box_h + _GAP_Y
    # positions in unscaled inches: rows top to bottom, each row centred on x = 0
    xy = {
        n: ((i - (len(layer) - 1) / 2) * step_x, -r * step_y)
        for r, layer in enumerate(layers)
        for i, n in enumerate(layer)
    }
    arcs, reach = _arcs(g, layers, xy, sizes)
    kinds = [k for k in EDGE_STYLES if any(e.kind == k for e in g.edges)]
    header = 0.4 + 0.18 * math.ceil(len(kinds) / _LEGEND_COLUMNS)  # title, legend rows
    width = max(2 * (reach + _MARGIN), _MIN_W)
    height = (len(layers) - 1) * step_y + box_h + 2 * _MARGIN + header
    scale = min(1.0, _MAX_W / width, _MAX_H / height)  # past the cap, shrink everything

    fig = Figure(figsize=(width * scale, height * scale), dpi=_DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_axis_off()
    top = box_h / 2 + _MARGIN + header
    ax.set_xlim(-width / 2, width / 2)
    ax.set_ylim(top - height, top)  # data units are unscaled inches
    outlines = _draw_nodes(ax, g, xy, sizes, scale)
    _draw_edges(ax, arcs, xy, sizes, outlines, scale)
    _draw_header(ax, g, kinds, (-width / 2 + _MARGIN, top - _MARGIN / 2), scale)
    return fig


def _save(fig: Figure, target: Any, fmt: str) -> None:
    import matplotlib

    # fixed salt and no date: the same genotype gives the same SVG bytes
    rc = {"svg.hashsalt": "nas-skip", "svg.fonttype": "none"}
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    with matplotlib.rc_context(rc):
        fig.savefig(target, format=fmt, metadata=metadata)


def to_svg(genotype: Genotype) -> str:
    """The genotype's topology drawing as SVG text (the same text for the same genotype).

    Args:
        genotype: a validated genotype.

    Returns:
        The SVG document. Node boxes carry the ids ``node-<id>``, edges ``edge-<src>-<dst>``.
    """
    buffer = io.BytesIO()
    _save(_figure(genotype), buffer, "svg")
    return buffer.getvalue().decode("utf-8")


def draw(genotype: Genotype, path: str | Path) -> Path:
    """Draw the genotype's topology to an ``.svg`` or ``.png`` file.

    Args:
        genotype: a validated genotype.
        path: the file to write; its parent folders are created.

    Returns:
        The path written.

    Raises:
        NasSkipError: the suffix is not one of :data:`SUFFIXES`.
        OSError: the file cannot be written.
    """
    path = Path(path)
    fmt = path.suffix.lower()
    if fmt not in SUFFIXES:
        got = repr(path.suffix) if path.suffix else "no suffix"
        raise NasSkipError(
            f"{path}: cannot draw to a file with {got} (suffixes: {', '.join(SUFFIXES)})"
        )
    fig = _figure(genotype)  # before touching the file system: a failure leaves no folders
    path.parent.mkdir(parents=True, exist_ok=True)
    _save(fig, path, fmt.lstrip("."))
    return path
