"""Drawing a genotype: nodes in topological layers, edges styled by kind.

The picture reads top to bottom: one row per topological generation of the compiled graph
(``none`` edges do not count for the layering, but are drawn, dashed light grey). Each node
shows its id, op and output shape; an edge that spans more than one row is drawn as an arc
beside the rows so that it does not hide the main chain. The figure grows with the depth
up to a cap, past which the whole picture (fonts included) is scaled down uniformly.

One layout (:mod:`._layout`) serves two renderers: SVG is written directly
(:mod:`._svg`: every search trial draws its genotype, so it must be cheap), PNG through
matplotlib's object API (:mod:`._png`; pyplot's global state, and the backend of a
notebook that calls us, stay untouched).
"""

from __future__ import annotations

from pathlib import Path

from nas_skip.draw._layout import EDGE_STYLES, EdgeStyle, _layers, layout
from nas_skip.draw._svg import render_svg
from nas_skip.errors import NasSkipError
from nas_skip.genotype import Genotype

#: The file suffixes :func:`draw` writes.
SUFFIXES = (".png", ".svg")


def to_svg(genotype: Genotype) -> str:
    """The genotype's topology drawing as SVG text (the same text for the same genotype).

    Args:
        genotype: a validated genotype.

    Returns:
        The SVG document. Node boxes carry the ids ``node-<id>``, edges ``edge-<src>-<dst>``.
    """
    return render_svg(layout(genotype))


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
    plan = layout(genotype)  # before touching the file system: a failure leaves no folders
    if fmt == ".svg":
        data = render_svg(plan).encode("utf-8")
    else:
        from nas_skip.draw._png import render_png

        data = render_png(plan)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


__all__ = ["EDGE_STYLES", "SUFFIXES", "EdgeStyle", "_layers", "draw", "layout", "to_svg"]
