"""The report page: the template in ``dashboards/``, plotly.js inlined once, the figures as
JSON drawn by one script, and the top architectures' drawings as SVG images.

A drawing is embedded as ``<img src="data:image/svg+xml;base64,...">``, never inlined: an
artifact's SVG is whatever the file holds, and a browser runs no script and fetches
nothing inside an SVG shown as an image (``<script>``, ``onload=``, ``<foreignObject>``,
external ``href`` stay inert), while the page looks the same.
"""

from __future__ import annotations

import base64
import html
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from string import Template

import optuna
from optuna.trial import FrozenTrial

from nas_skip._shipped import shipped
from nas_skip.report._figures import Plot
from nas_skip.report._table import genotype_of
from nas_skip.searching import SearchError
from nas_skip.searching._artifacts import ArtifactFolders
from nas_skip.searching._retrain import retrained

#: the page template and its assets: dashboards/ of the checkout or the installed wheel
DASHBOARDS = shipped("dashboards")
TEMPLATE = DASHBOARDS / "report.html"

_PLOT_CONFIG = {"displaylogo": False, "responsive": True}
#: the largest topology artifact read (nas-skip's drawings are a few kB); a larger one
#: is drawn again from the genotype
MAX_DRAWING_BYTES = 1 << 20
_SVG_ROOT = "{http://www.w3.org/2000/svg}svg"


def load_template(path: Path = TEMPLATE) -> Template:
    """The page template (``string.Template``: ``$name`` placeholders).

    Raises:
        SearchError: the template file is missing (a copy of the package without it).
    """
    if not path.is_file():
        raise SearchError(f"report template {path} is missing (reinstall nas-skip)")
    return Template(path.read_text(encoding="utf-8"))


def svg_image(svg: str | bytes, alt: str) -> str:
    """An ``<img>`` that shows the SVG document ``svg`` from a data URL (see the module
    docstring for why not inline)."""
    data = svg.encode("utf-8") if isinstance(svg, str) else svg
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img src="data:image/svg+xml;base64,{encoded}" alt="{html.escape(alt)}">'


def _is_svg(data: bytes) -> bool:
    """Whether ``data`` is an XML document whose root is an SVG element."""
    try:
        return ET.fromstring(data).tag == _SVG_ROOT
    except (ET.ParseError, ValueError):
        return False


def drawing(study: optuna.Study, trial: FrozenTrial,
            store: ArtifactFolders | None = None) -> bytes | None:  # fmt: skip
    """The trial's topology SVG: its artifact when the user's artifact folders hold it and
    it is an SVG document, else drawn again from the genotype; None without a genotype.

    The artifact id comes from the trial and is read only as an artifact id, only in
    ``store``'s folders (:mod:`nas_skip.searching._artifacts`); the folder the study records
    is never read.
    """
    store = store or ArtifactFolders()
    data = store.read(trial.user_attrs.get("topology_artifact"), MAX_DRAWING_BYTES)
    if data is not None and _is_svg(data):
        return data
    genotype = genotype_of(trial)  # parsed again: at most the top drawings, artifact missing
    if genotype is None:
        return None
    from nas_skip.draw import to_svg  # matplotlib: only when an artifact is missing

    return to_svg(genotype).encode("utf-8")


def _fmt(name: str, value: float) -> str:
    if name in ("accuracy", "mIoU"):
        return f"{name} {value:.4f}"
    return f"{name} {value:,.0f}" if name in ("params", "flops") else f"{name} {value:.4g}"


def architectures(study: optuna.Study, trials: list[FrozenTrial], names: list[str],
                  store: ArtifactFolders | None = None) -> str:  # fmt: skip
    """The HTML of the top architectures' cards: a heading, the values and the drawing
    (artifacts read from ``store``, the user's artifact folders)."""
    cards = []
    for rank, t in enumerate(trials, start=1):
        values = ", ".join(_fmt(n, v) for n, v in zip(names, t.values, strict=False))
        svg = drawing(study, t, store)
        alt = f"topology of trial {t.number}"
        body = svg_image(svg, alt) if svg else "<p>No genotype recorded.</p>"
        hash_ = html.escape(str(t.user_attrs.get("hash", "")))
        cards.append(
            f'<figure class="arch" id="arch-trial-{t.number}">{body}'
            f"<figcaption><b>#{rank}: trial {t.number}</b><br>{html.escape(values)}"
            f"<br><code>{hash_}</code></figcaption></figure>"
        )
    if not cards:
        return "<p>No trial has completed yet.</p>"
    return "\n".join(cards)


def confirmed(study: optuna.Study) -> str:
    """The "Confirmed" section: each retrained trial's search score against its retrained
    scores (``nas-skip retrain``), best retrained validation score first; a one-line note
    when no trial was retrained."""
    records = retrained(study)
    head = '<section id="section-confirmed"><h2>Confirmed by retraining</h2>'
    if not records:
        note = "No trial retrained yet (nas-skip retrain --study NAME)."
        return f'{head}<p class="note" id="confirmed-note">{note}</p></section>'
    metric = html.escape(str(next(iter(records.values())).get("metric", "accuracy")))
    rows = []
    for number, r in sorted(records.items(), key=lambda item: -item[1]["val_mean"]):
        search = f"{r['search_value']:.4f}"
        if r.get("search_epochs"):
            search += f" ({r['search_epochs']} epochs)"
        cells = [
            str(number),
            search,
            f"{r['val_mean']:.4f} ± {r['val_std']:.4f}",
            f"{r['test_mean']:.4f} ± {r['test_std']:.4f}",
            str(r["epochs"]),
            str(len(r["seeds"])),
        ]
        tds = "".join(f"<td>{html.escape(c)}</td>" for c in cells)
        rows.append(f'<tr id="confirmed-trial-{number}">{tds}</tr>')
    names = ["trial", "search", f"validation {metric}", f"test {metric}", "epochs", "seeds"]
    ths = "".join(f"<th>{n}</th>" for n in names)
    caption = (
        "Each retrained trial trained again from scratch with its own hyperparameters, "
        "once per seed: mean &plusmn; sample standard deviation over the seeds, against "
        "the score the search ranked it by."
    )
    if any(r.get("evaluator", "train") != "train" for r in records.values()):
        caption += " A table-evaluated study's search scores are the table's, in percent."
    return (
        f'{head}<table class="confirmed" id="confirmed-table"><thead><tr>{ths}</tr></thead>'
        f'<tbody>{"".join(rows)}</tbody></table><p class="caption">{caption}</p></section>'
    )


def section(plot: Plot) -> str:
    """One plot's section: heading, the note (instead of the figure, or above it), the
    figure's div, the caption."""
    body = ""
    if plot.note is not None or plot.figure is None:
        body = f'<p class="note" id="{plot.id}-note">{html.escape(plot.note or "")}</p>'
    if plot.figure is not None:
        body += f'<div class="plot" id="{plot.id}"></div>'
    name = plot.id.removeprefix("plot-")
    return (
        f'<section id="section-{name}"><h2>{html.escape(plot.title)}</h2>{body}'
        f'<p class="caption">{html.escape(plot.caption)}</p></section>'
    )


def figures_json(plots: list[Plot]) -> str:
    """The figures as one JSON object ``{div id: {data, layout, config}}``, safe inside a
    ``<script>`` element."""
    figures = {}
    for plot in plots:
        if plot.figure is not None:
            spec = json.loads(plot.figure.to_json())
            figures[plot.id] = {**spec, "config": _PLOT_CONFIG}
    # "</" would end the script element early; "<\/" is the same JSON string
    return json.dumps(figures, separators=(",", ":")).replace("</", "<\\/")


def counts_html(study: optuna.Study) -> str:
    """Trials by state, as a line of badges."""
    states: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        states[t.state.name] = states.get(t.state.name, 0) + 1
    parts = [
        f'<span class="state" data-state="{s}">{s.lower()} {n}</span>'
        for s, n in sorted(states.items())
    ]
    return f"{sum(states.values())} trials: " + " ".join(parts)


def render(study: optuna.Study, plots: list[Plot], cards: str, subtitle: str,
           oneshot: str = "", extra: list[Plot] | None = None) -> str:  # fmt: skip
    """The whole page; ``oneshot`` is the "One-shot runs" section's HTML (none when
    empty) and ``extra`` the figures drawn in it."""
    from plotly.offline import get_plotlyjs

    return load_template().substitute(
        title=html.escape(f"nas-skip report: {study.study_name}"),
        study=html.escape(study.study_name),
        subtitle=html.escape(subtitle),
        counts=counts_html(study),
        sections="\n".join(section(p) for p in plots),
        oneshot=oneshot,
        confirmed=confirmed(study),
        architectures=cards,
        plotlyjs=get_plotlyjs(),
        figures=figures_json([*plots, *(extra or [])]),
    )
