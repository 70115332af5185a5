"""The report page: the template in ``dashboards/``, plotly.js inlined once, the figures as
JSON drawn by one script, and the top architectures' drawings inlined as SVG."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from string import Template

import optuna
from optuna.trial import FrozenTrial

from nas_skip._shipped import shipped
from nas_skip.report._figures import Plot
from nas_skip.report._table import genotype_of
from nas_skip.search import SearchError
from nas_skip.search._retrain import retrained

#: the page template and its assets: dashboards/ of the checkout or the installed wheel
DASHBOARDS = shipped("dashboards")
TEMPLATE = DASHBOARDS / "report.html"

_ID = re.compile(r'\bid="([^"]+)"')
_PLOT_CONFIG = {"displaylogo": False, "responsive": True}


def load_template(path: Path = TEMPLATE) -> Template:
    """The page template (``string.Template``: ``$name`` placeholders).

    Raises:
        SearchError: the template file is missing (a copy of the package without it).
    """
    if not path.is_file():
        raise SearchError(f"report template {path} is missing (reinstall nas-skip)")
    return Template(path.read_text(encoding="utf-8"))


def inline_svg(svg: str, prefix: str) -> str:
    """An SVG document made fit to sit in an HTML page beside others.

    The XML prolog, DOCTYPE and metadata go (the DOCTYPE and RDF metadata name remote
    URLs); every id and reference to it gets ``prefix``, because matplotlib and
    ``to_svg`` reuse ids such as ``node-l0`` in each drawing and ids must be unique.
    """
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.DOTALL)
    ids = set(_ID.findall(svg))
    svg = _ID.sub(lambda m: f'id="{prefix}{m.group(1)}"', svg)

    def ref(m: re.Match[str]) -> str:
        name = m.group(2)
        return f"{m.group(1)}{prefix}{name}" if name in ids else m.group(0)

    return re.sub(r"(url\(#|href=\"#)([^\")]+)", ref, svg)


def drawing(study: optuna.Study, trial: FrozenTrial) -> str | None:
    """The trial's topology SVG: its artifact when the artifact folder still has it, else
    drawn again from the genotype; None without a genotype."""
    folder = study.user_attrs.get("artifacts")
    artifact = trial.user_attrs.get("topology_artifact")
    if folder and artifact:
        path = Path(folder) / artifact
        if path.is_file():
            return path.read_text(encoding="utf-8")
    genotype = genotype_of(trial)
    if genotype is None:
        return None
    from nas_skip.draw import to_svg  # matplotlib: only when an artifact is missing

    svg: str = to_svg(genotype)
    return svg


def _fmt(name: str, value: float) -> str:
    if name in ("accuracy", "mIoU"):
        return f"{name} {value:.4f}"
    return f"{name} {value:,.0f}" if name in ("params", "flops") else f"{name} {value:.4g}"


def architectures(study: optuna.Study, trials: list[FrozenTrial], names: list[str]) -> str:
    """The HTML of the top architectures' cards: a heading, the values and the drawing."""
    cards = []
    for rank, t in enumerate(trials, start=1):
        values = ", ".join(_fmt(n, v) for n, v in zip(names, t.values, strict=False))
        svg = drawing(study, t)
        body = inline_svg(svg, f"t{t.number}-") if svg else "<p>No genotype recorded.</p>"
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


def render(study: optuna.Study, plots: list[Plot], cards: str, subtitle: str) -> str:
    """The whole page."""
    from plotly.offline import get_plotlyjs

    return load_template().substitute(
        title=html.escape(f"nas-skip report: {study.study_name}"),
        study=html.escape(study.study_name),
        subtitle=html.escape(subtitle),
        counts=counts_html(study),
        sections="\n".join(section(p) for p in plots),
        confirmed=confirmed(study),
        architectures=cards,
        plotlyjs=get_plotlyjs(),
        figures=figures_json(plots),
    )
