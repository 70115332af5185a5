"""PNG through matplotlib's object API (``Figure`` and the Agg canvas), from a layout."""

from __future__ import annotations

import io

from nas_skip.draw._layout import (
    BOX,
    BOX_DEFAULT,
    EDGE_STYLES,
    FONT,
    LEGEND_COLUMNS,
    Layout,
)

_DPI = 150


def render_png(plan: Layout) -> bytes:
    """The drawing as PNG bytes (no date or software in the metadata)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
    from matplotlib.path import Path as MplPath

    s = plan.scale
    fig = Figure(figsize=(plan.width * s, plan.height * s), dpi=_DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_axis_off()
    ax.set_xlim(plan.left, plan.left + plan.width)
    ax.set_ylim(plan.top - plan.height, plan.top)  # data units are unscaled inches
    for n in plan.nodes:
        face, edge = BOX.get(n.role, BOX_DEFAULT)
        ax.add_artist(FancyBboxPatch((n.x - n.w / 2, n.y - n.h / 2), n.w, n.h,
                                     boxstyle="round,pad=0,rounding_size=0.06",
                                     facecolor=face, edgecolor=edge,
                                     linewidth=(1.6 if n.role == "output" else 0.8) * s,
                                     zorder=2))  # fmt: skip
        ax.text(n.x, n.y, "\n".join(n.lines), fontsize=FONT * s, ha="center", va="center",
                zorder=3)  # fmt: skip
    for a in plan.arrows:
        style = EDGE_STYLES[a.kind]
        if a.control is None:
            path = MplPath([a.start, a.end])
        else:
            path = MplPath([a.start, a.control, a.end],
                           [MplPath.MOVETO, MplPath.CURVE3, MplPath.CURVE3])  # fmt: skip
        ax.add_artist(FancyArrowPatch(path=path, arrowstyle="-|>", mutation_scale=9 * s,
                                      color=style.color, linestyle=style.linestyle,
                                      linewidth=style.width * s,
                                      zorder=1 if a.kind != "none" else 0))  # fmt: skip
    x, y = plan.header
    ax.text(x, y, "\n".join(plan.title), fontsize=FONT * s, ha="left", va="top")
    handles = [Line2D([], [], color=EDGE_STYLES[k].color, linestyle=EDGE_STYLES[k].linestyle,
                      linewidth=EDGE_STYLES[k].width * s, label=k)
               for k in plan.kinds]  # fmt: skip
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(x, y - 0.3),
              bbox_transform=ax.transData, borderaxespad=0, borderpad=0,
              ncols=LEGEND_COLUMNS, fontsize=FONT * s, frameon=False, handlelength=3.0,
              columnspacing=1.5)  # fmt: skip
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()
