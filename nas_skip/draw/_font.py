"""A label's text extent without matplotlib, the same numbers as matplotlib's layout.

Every search trial draws its genotype (SVG, in the worker that ran it), and each node box
is sized from its label's extent. Measured through a matplotlib ``Figure``, that loaded
matplotlib (about 40 MiB, and its import time) into every worker. Here the extent comes
from the label font's metrics (:mod:`._font_metrics`, read through matplotlib by
``scripts/make_font_metrics.py``), laid out as matplotlib's ``Text`` lays out multi-line
text: a line is as wide as its glyphs' advances plus kerning and as tall as their extents;
lines stack at least the font's ascent and descent apart plus its line gap. A test compares
both on many labels. A label with other characters (non-ASCII, tabs), a ligature (fi, fl,
ff) or a ``$`` (matplotlib's mathtext) is left to matplotlib.
"""

from __future__ import annotations

from nas_skip.draw import _font_metrics as m

_GLYPHS = dict(zip(m.ALPHABET, m.GLYPHS, strict=True))


def _line(line: str) -> tuple[float, float, float]:
    """Width, height and descent of one line, in points (Agg's ``get_text_width_height_
    descent``: the advances, and the glyphs' vertical extent)."""
    if not line:
        return 0.0, 0.0, 0.0
    glyphs = [_GLYPHS[c] for c in line]
    # each glyph's advance, and the kerning of each pair; the last glyph's advance ends it
    width = glyphs[-1][0] + sum(m.KERNING.get(line[i : i + 2], 0) for i in range(len(line) - 1))
    width += sum(g[0] for g in glyphs[:-1])
    bottom, top = min(g[1] for g in glyphs), max(g[2] for g in glyphs)
    return width / 64.0, (top - bottom) / 64.0, -bottom / 64.0


def label_extent(label: str) -> tuple[float, float] | None:
    """The width and height in points of ``label`` (lines split at ``\\n``) in the label
    font, as matplotlib's ``Text.get_window_extent`` measures it at 72 dpi; None for a label
    this module cannot measure (see the module docstring)."""
    if "$" in label or any(c not in _GLYPHS and c != "\n" for c in label):
        return None
    if any(pair in label for pair in m.LIGATURES):
        return None
    if not label:
        return 0.0, 0.0
    lines = label.split("\n")
    gap = m.LINE_GAP if len(lines) > 1 else 0.0
    # matplotlib's Text._get_layout, with the same operations in the same order
    y = bottom = descent = 0.0
    widths = []
    for line in lines:
        w, h, d = _line(line)
        ascent = max(h - d, m.ASCENT) + gap / 2
        descent = max(d, m.DESCENT) + gap / 2
        y -= ascent
        bottom = y
        y -= descent
        widths.append(w)
    return max(widths), 0 - (bottom - descent)
