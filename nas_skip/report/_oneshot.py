"""The "One-shot runs" section: each ``--strategy oneshot`` run's supernet and its network.

Per run ``k`` (the most recent :data:`MAX_SHOWN`): the architecture weights of every
candidate skip over the supernet's epochs (from the run's weights artifact), the final
weights of each op choice, the skip count the derivation would keep after each epoch
against the supernet's validation accuracy (from the study attribute ``oneshot:<k>``),
and a table that sets the supernet against the derived network trained from scratch
(the trial with user attribute ``oneshot: k``) and, when retrained, its retrained score.

A study is untrusted input: every stored value is checked (types, finiteness, sizes), a
malformed part is left out with a one-line note, and the artifact is read only as an
artifact id in the user's folders (:class:`~nas_skip.searching._artifacts.ArtifactFolders`).
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas_skip.errors import brief
from nas_skip.oneshot._relax import NONE, RELAXATIONS, SIGMOID_NONE
from nas_skip.report._figures import Plot
from nas_skip.searching._artifacts import ArtifactFolders, as_artifact_id
from nas_skip.searching._oneshot import oneshot_runs
from nas_skip.searching._retrain import retrained

#: the most recent runs shown
MAX_SHOWN = 5
#: the largest weights artifact read (a few hundred choices over a few hundred epochs is
#: a few MB); a larger one is not read
MAX_WEIGHTS_BYTES = 20 << 20
#: the most supernet epochs read from a record or an artifact; later ones are left out
MAX_EPOCHS = 2000
#: the most points of one weight line: longer runs are thinned (the last epoch kept)
MAX_POINTS = 200
#: the most lines (edges) and heatmap rows (op choices) drawn: the strongest at the end
MAX_ROWS = 300
#: the most values of one choice read
MAX_VALUES = 64
#: the most choices an artifact may list
MAX_CHOICES = 20000
#: the longest name shown (a choice, a value); longer ones are cut
MAX_NAME = 80
_LAYOUT = {"template": "plotly_white", "height": 420, "margin": {"t": 30, "r": 20}}


@dataclass
class OneShotSection:
    """The section's HTML and the figures its divs need drawn."""

    html: str = ""
    plots: list[Plot] = field(default_factory=list)


@dataclass(frozen=True)
class _Choice:
    name: str
    values: tuple[str, ...]
    role: str  # "edge" or "op"


@dataclass(frozen=True)
class _Weights:
    """A run's weights artifact, checked: the choices and each epoch's weights."""

    choices: tuple[_Choice, ...]
    epochs: tuple[int, ...]
    weights: tuple[dict[str, list[float]], ...]  # per epoch: choice name -> weights


# --- reading stored values -----------------------------------------------------------


def _number(value: object) -> float | None:
    """A finite number, else None (bools, strings, NaN, infinities, dicts)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        x = float(value)
    except OverflowError:  # an int too large for a float
        return None
    return x if math.isfinite(x) else None


def _count(value: object) -> int | None:
    """A non-negative int (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value if value < 1 << 62 else None


def _name(value: object) -> str:
    """A stored name as text to show: bounded, printable (escaped where it is shown)."""
    text = value if isinstance(value, str) else brief(value)
    text = "".join(ch if ch.isprintable() else "?" for ch in text[: MAX_NAME + 1])
    return text if len(text) <= MAX_NAME else text[: MAX_NAME - 3] + "..."


def _series(record: dict[str, Any], key: str, read: Callable[[object], float | int | None],
            notes: list[str]) -> list[Any]:  # fmt: skip
    """A per-epoch list of the record, each entry read by ``read`` (None where it cannot
    be: a gap in the line); notes say what was left out."""
    value = record.get(key)
    if value is None:
        notes.append(f"{key}: not recorded.")
        return []
    if not isinstance(value, list):
        notes.append(f"{key}: not a list ({type(value).__name__}); left out.")
        return []
    if len(value) > MAX_EPOCHS:
        notes.append(f"{key}: {len(value):,} entries; the first {MAX_EPOCHS:,} are shown.")
        value = value[:MAX_EPOCHS]
    out = [read(v) for v in value]
    bad = sum(v is None for v in out)
    if bad:
        notes.append(f"{key}: {bad:,} of {len(out):,} entries are not valid; left as gaps.")
    return out


def _choice(value: object) -> _Choice | None:
    """An artifact's choice entry, checked; None when malformed."""
    if not isinstance(value, dict):
        return None
    name, values, role = value.get("name"), value.get("values"), value.get("role")
    if not isinstance(name, str) or role not in ("edge", "op") or not isinstance(values, list):
        return None
    if not 0 < len(values) <= MAX_VALUES or not all(isinstance(v, str) for v in values):
        return None
    return _Choice(name, tuple(values), str(role))


def _weights_artifact(raw: bytes | None, notes: list[str]) -> _Weights | None:
    """The artifact's choices and per-epoch weights, checked; None (and a note) when it
    cannot be read at all. Choices or epochs that are malformed are left out."""
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        notes.append("the weights artifact is not JSON.")
        return None
    if not isinstance(doc, dict):
        notes.append("the weights artifact is not a JSON object.")
        return None
    listed, epochs_in = doc.get("choices"), doc.get("epochs")
    if not isinstance(listed, list) or not isinstance(epochs_in, list):
        notes.append("the weights artifact lists no choices or no epochs.")
        return None
    choices: dict[str, _Choice] = {}
    dropped = 0
    for c in listed[:MAX_CHOICES]:
        choice = _choice(c)
        if choice is None or choice.name in choices:
            dropped += 1
            continue
        choices[choice.name] = choice
    dropped += max(0, len(listed) - MAX_CHOICES)
    if dropped:
        notes.append(f"the weights artifact: {dropped:,} malformed choices left out.")
    numbers: list[int] = []
    weights: list[dict[str, list[float]]] = []
    bad_epochs = bad_weights = 0
    for e in epochs_in[:MAX_EPOCHS]:
        n = _count(e.get("epoch")) if isinstance(e, dict) else None
        w = e.get("weights") if isinstance(e, dict) else None
        if n is None or not isinstance(w, dict) or (numbers and n <= numbers[-1]):
            bad_epochs += 1
            continue
        row = {}
        for name, ws in w.items():
            c = choices.get(name)
            if c is None or not isinstance(ws, list) or len(ws) != len(c.values):
                continue
            read = [_number(x) for x in ws]
            if all(x is not None for x in read):
                row[name] = [float(x) for x in read if x is not None]
        bad_weights += len(choices) - len(row)
        numbers.append(n)
        weights.append(row)
    if len(epochs_in) > MAX_EPOCHS:
        notes.append(f"the weights artifact: {len(epochs_in):,} epochs; the first "
                     f"{MAX_EPOCHS:,} are read.")  # fmt: skip
    if bad_epochs:
        notes.append(f"the weights artifact: {bad_epochs:,} malformed epochs left out.")
    if bad_weights:
        notes.append(f"the weights artifact: {bad_weights:,} malformed weight lists left "
                     "out (gaps in the lines).")  # fmt: skip
    return _Weights(tuple(choices.values()), tuple(numbers), tuple(weights))


# --- what the weights say ------------------------------------------------------------


def skip_strength(values: tuple[str, ...], weights: list[float], relaxation: str) -> float:
    """How strongly an edge keeps a skip: under softmax ``1 - weight of none`` (the largest
    weight without a ``none`` value); under sigmoid the largest gate of a kind but none."""
    if relaxation == "sigmoid":
        return max((w for v, w in zip(values, weights, strict=True) if v != NONE), default=0.0)
    if NONE in values:
        return 1.0 - weights[values.index(NONE)]
    return max(weights)


def winner(values: tuple[str, ...], weights: list[float], relaxation: str) -> str:
    """The value the derivation would pick (a sigmoid ``none`` counts as 0.5)."""
    strengths = [
        SIGMOID_NONE if relaxation == "sigmoid" and v == NONE else w
        for v, w in zip(values, weights, strict=True)
    ]
    return values[max(range(len(values)), key=lambda i: strengths[i])]


def _thinned(count: int) -> list[int]:
    """At most :data:`MAX_POINTS` indexes of ``range(count)``, evenly spread, the last kept."""
    if count <= MAX_POINTS:
        return list(range(count))
    step = (count - 1) / (MAX_POINTS - 1)
    return sorted({round(i * step) for i in range(MAX_POINTS)} | {count - 1})


# --- figures -------------------------------------------------------------------------


def _edge_figure(k: int, found: _Weights, relaxation: str) -> Plot:
    import plotly.graph_objects as go

    pid, title = f"plot-oneshot-{k}-weights", f"Run {k}: skip strength of each edge"
    how = (
        "the largest gate of a kind other than none; the dashed line is none's 0.5, below "
        "which the edge is dropped"
        if relaxation == "sigmoid"
        else "1 minus the weight of none (the largest weight where none is no option)"
    )
    caption = (
        f"Each line is one candidate skip edge: its strength after each supernet epoch "
        f"({relaxation}: {how}). Hover names the kind that wins at that epoch."
    )
    edges = [c for c in found.choices if c.role == "edge"]
    if not edges:
        return Plot(pid, title, caption, note="This run relaxed no skip edge.")
    if not found.epochs:
        return Plot(pid, title, caption, note="The weights artifact holds no readable epoch.")
    note = None
    if len(edges) > MAX_ROWS:
        last = found.weights[-1]

        def final(c: _Choice) -> float:
            w = last.get(c.name)
            return skip_strength(c.values, w, relaxation) if w else -1.0

        kept = set(sorted(edges, key=lambda c: -final(c))[:MAX_ROWS])
        note = f"{len(edges):,} edges: the {MAX_ROWS} strongest at the last epoch are drawn."
        edges = [c for c in edges if c in kept]
    pick = _thinned(len(found.epochs))
    if len(pick) < len(found.epochs):
        thin = f"{len(found.epochs):,} epochs: {len(pick)} of them are drawn."
        note = f"{note} {thin}" if note else thin
    fig = go.Figure()
    for c in edges:
        y: list[float | None] = []
        hover = []
        label = html.escape(_name(c.name))
        for i in pick:
            w = found.weights[i].get(c.name)
            if w is None:
                y.append(None)
                hover.append(f"{label}: no weights")
                continue
            y.append(round(skip_strength(c.values, w, relaxation), 5))
            kind = html.escape(_name(winner(c.values, w, relaxation)))
            hover.append(f"{label}<br>epoch {found.epochs[i]}: {kind} wins")
        fig.add_scatter(
            x=[found.epochs[i] for i in pick],
            y=y,
            mode="lines+markers" if len(pick) <= 30 else "lines",
            name=label,
            text=hover,
            hovertemplate="%{text}<br>strength %{y:.3f}<extra></extra>",
        )
    if relaxation == "sigmoid":
        fig.add_hline(y=SIGMOID_NONE, line_dash="dash", line_color="#57606a")
    fig.update_layout(**_LAYOUT, xaxis_title="supernet epoch", yaxis_title="skip strength",
                      showlegend=len(edges) <= 20)  # fmt: skip
    fig.update_yaxes(range=[-0.02, 1.02])
    return Plot(pid, title, caption, fig, note)


def _ops_figure(k: int, found: _Weights, relaxation: str) -> Plot | None:
    """The final epoch's weights of each op choice as a heatmap; None without op choices."""
    import plotly.graph_objects as go

    ops = [c for c in found.choices if c.role == "op"]
    if not ops:
        return None
    pid, title = f"plot-oneshot-{k}-ops", f"Run {k}: final weights of each op choice"
    kind = "gate" if relaxation == "sigmoid" else "weight"
    caption = (
        f"Each row is one op choice, each column one candidate op: its {kind} after the "
        "last supernet epoch (blank where the choice has no such op)."
    )
    if not found.epochs:
        return Plot(pid, title, caption, note="The weights artifact holds no readable epoch.")
    last = found.weights[-1]
    ops = [c for c in ops if c.name in last]
    if not ops:
        return Plot(pid, title, caption, note="No op choice has weights at the last epoch.")
    note = None
    if len(ops) > MAX_ROWS:
        note = f"{len(ops):,} op choices: the first {MAX_ROWS} are drawn."
        ops = ops[:MAX_ROWS]
    columns = list(dict.fromkeys(v for c in ops for v in c.values))[:MAX_VALUES]
    z = [
        [round(last[c.name][c.values.index(v)], 5) if v in c.values else None for v in columns]
        for c in ops
    ]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[html.escape(_name(v)) for v in columns],
            y=[html.escape(_name(c.name)) for c in ops],
            zmin=0,
            zmax=1,
            colorscale="Blues",
            colorbar={"title": {"text": kind}},
            hovertemplate="%{y}: %{x} %{z:.3f}<extra></extra>",
        )
    )
    height = min(2400, max(240, 80 + 18 * len(ops)))
    fig.update_layout(**{**_LAYOUT, "height": height}, xaxis_title="op",
                      yaxis={"autorange": "reversed", "type": "category"})  # fmt: skip
    return Plot(pid, title, caption, fig, note)


def _skips_figure(k: int, skips: list[int | None], val: list[float | None]) -> Plot:
    import plotly.graph_objects as go

    pid, title = f"plot-oneshot-{k}-skips", f"Run {k}: skips kept and supernet accuracy"
    caption = (
        "The number of skips the derivation would keep after each supernet epoch (left "
        "axis) and the supernet's own validation accuracy (right axis). A skip count "
        "that keeps climbing while accuracy stalls is the collapse signature of DARTS: "
        "parameter-free skips win the weights without making the network better."
    )
    if not any(s is not None for s in skips) and not any(v is not None for v in val):
        return Plot(pid, title, caption, note="The run records no per-epoch skips or accuracy.")
    fig = go.Figure()
    fig.add_scatter(
        x=list(range(1, len(skips) + 1)),
        y=skips,
        mode="lines+markers",
        name="skips kept",
        line={"color": "#d1242f", "width": 2.5, "shape": "hv"},
    )
    fig.add_scatter(
        x=list(range(1, len(val) + 1)),
        y=val,
        mode="lines+markers",
        name="supernet validation accuracy",
        line={"color": "#1f6feb", "width": 2},
        yaxis="y2",
    )
    fig.update_layout(
        **_LAYOUT,
        xaxis_title="supernet epoch",
        yaxis={"title": {"text": "skips kept"}, "rangemode": "tozero"},
        yaxis2={"title": {"text": "validation accuracy"}, "overlaying": "y", "side": "right"},
        legend={"orientation": "h", "y": 1.12},
    )
    return Plot(pid, title, caption, fig)


# --- the table -----------------------------------------------------------------------


def _derived_trials(study: optuna.Study) -> dict[int, list[FrozenTrial]]:
    """The trials of each run (user attribute ``oneshot: k``), in number order."""
    found: dict[int, list[FrozenTrial]] = {}
    for t in study.get_trials(deepcopy=False):
        k = _count(t.user_attrs.get("oneshot"))
        if k is not None:
            found.setdefault(k, []).append(t)
    return found


def _search_value(trial: FrozenTrial) -> str:
    """The derived network's validation accuracy trained from scratch, as text."""
    if trial.state == TrialState.COMPLETE and trial.values:
        value = _number(trial.values[0])
        return "n/a" if value is None else f"{value:.4f}"
    last = None
    if trial.intermediate_values:
        last = _number(trial.intermediate_values[max(trial.intermediate_values)])
    last = last if last is not None else _number(trial.user_attrs.get("val_accuracy"))
    if last is None:
        return "n/a"
    return f"{last:.4f} (when {trial.state.name.lower()})"


def _fixed4(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 120 else f"{value:.0f} s ({value / 60:.1f} min)"


def _table(k: int, rows: list[tuple[str, str, str]]) -> str:
    body = "".join(
        f'<tr data-key="{key}"><th>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>'
        for key, label, value in rows
    )
    return f'<table class="oneshot" id="oneshot-table-{k}"><tbody>{body}</tbody></table>'


# --- the section ---------------------------------------------------------------------


def _run(k: int, record: dict[str, Any], trials: list[FrozenTrial],
         retrains: dict[int, dict[str, Any]],
         store: ArtifactFolders) -> tuple[str, list[Plot]]:  # fmt: skip
    """Run ``k``'s part of the section (notes, table, figures) and the figures to draw."""
    notes: list[str] = []
    settings = record.get("settings")
    if not isinstance(settings, dict):
        notes.append("settings: not recorded or malformed.")
        settings = {}
    relaxation = settings.get("relaxation")
    if relaxation not in RELAXATIONS:
        notes.append("relaxation: not recorded or unknown; the weights are read as softmax.")
        relaxation = None
    val = _series(record, "val_accuracy", _number, notes)
    skips = _series(record, "skips", _count, notes)
    epochs = _count(settings.get("epochs"))
    seconds = _number(record.get("seconds"))
    kept = _count(record.get("skips_kept"))
    final_val = next((v for v in reversed(val) if v is not None), None)

    plots: list[Plot] = []
    wnotes: list[str] = []
    artifact = record.get("weights_artifact")
    raw = store.read(artifact, MAX_WEIGHTS_BYTES)
    found = _weights_artifact(raw, wnotes)
    pid = f"plot-oneshot-{k}-weights"
    weights_title = f"Run {k}: skip strength of each edge"
    if found is None:
        if wnotes:
            why = wnotes[0]
        elif artifact is None:
            why = "the run records no weights artifact."
        elif as_artifact_id(artifact) is None:
            why = f"weights_artifact {brief(artifact)} is not an artifact id."
        else:
            why = (
                f"the weights artifact {artifact} is not in {store} or is larger than "
                f"{MAX_WEIGHTS_BYTES >> 20} MB (pass --artifacts with the folder the search "
                "wrote)."
            )
        plots.append(Plot(pid, weights_title, "", note=f"No weights figure: {why}"))
    else:
        notes += wnotes
        plots.append(_edge_figure(k, found, relaxation or "softmax"))
        ops = _ops_figure(k, found, relaxation or "softmax")
        if ops is not None:
            plots.append(ops)
    plots.append(_skips_figure(k, skips, val))

    trial = trials[0] if trials else None
    if len(trials) > 1:
        others = ", ".join(str(t.number) for t in trials[1:6])
        notes.append(f"trials {others} also name run {k}; trial {trials[0].number} is shown.")
    retrain = retrains.get(trial.number) if trial is not None else None
    rows = [
        ("relaxation", "relaxation", relaxation or "unknown"),
        ("epochs", "supernet epochs", str(epochs) if epochs is not None else str(len(val))),
        ("seconds", "supernet wall time", _seconds(seconds) if seconds is not None else "n/a"),
        ("supernet_val", "supernet final validation accuracy", _fixed4(final_val)),
        ("skips_kept", "skips kept", str(kept) if kept is not None else "n/a"),
        ("trial", "derived trial", str(trial.number) if trial is not None else "not found"),
    ]
    if trial is not None:
        rows += [
            ("state", "its state", trial.state.name),
            ("search_value", "its accuracy trained from scratch", _search_value(trial)),
        ]
        if retrain is not None:
            scores = f"{retrain['val_mean']:.4f} ± {retrain['val_std']:.4f}"
            rows.append(("retrained", "retrained validation (mean ± std)", scores))
    choices = _count(record.get("choices"))
    if choices is not None:
        rows.append(("choices", "relaxed choices", str(choices)))

    parts = [f'<section class="oneshot-run" id="oneshot-run-{k}"><h3>Run {k}</h3>']
    if notes:
        items = "".join(f"<li>{html.escape(n)}</li>" for n in notes[:20])
        parts.append(f'<div class="note" id="oneshot-{k}-notes">Parts of this record are '
                     f"malformed:<ul>{items}</ul></div>")  # fmt: skip
    parts.append(_table(k, rows))
    for plot in plots:
        parts.append(_plot_html(plot))
    parts.append("</section>")
    return "".join(parts), [p for p in plots if p.figure is not None]


def _plot_html(plot: Plot) -> str:
    body = f"<h4>{html.escape(plot.title)}</h4>"
    if plot.note is not None or plot.figure is None:
        body += f'<p class="note" id="{plot.id}-note">{html.escape(plot.note or "")}</p>'
    if plot.figure is not None:
        body += f'<div class="plot" id="{plot.id}"></div>'
    if plot.caption:
        body += f'<p class="caption">{html.escape(plot.caption)}</p>'
    return body


def oneshot_section(study: optuna.Study, store: ArtifactFolders | None = None) -> OneShotSection:
    """The "One-shot runs" section of the study's one-shot records (the most recent
    :data:`MAX_SHOWN`, newest first); empty (no section) when the study has none."""
    runs = oneshot_runs(study)
    if not runs:
        return OneShotSection()
    store = store or ArtifactFolders()
    trials = _derived_trials(study)
    retrains = retrained(study)
    head = '<section id="section-oneshot"><h2>One-shot runs</h2>'
    intro = (
        '<p class="caption">Each <code>--strategy oneshot</code> run trained a supernet '
        "that mixes every candidate skip kind per edge and every candidate op, derived a "
        "network from its architecture weights and trained that network from scratch as "
        "an ordinary trial.</p>"
    )
    if len(runs) > MAX_SHOWN:
        intro += (
            f'<p class="note" id="oneshot-more-note">{len(runs)} one-shot runs: the '
            f"{MAX_SHOWN} most recent are shown.</p>"
        )
    parts, plots = [], []
    for k, record in reversed(runs[-MAX_SHOWN:]):
        text, drawn = _run(k, record, trials.get(k, []), retrains, store)
        parts.append(text)
        plots += drawn
    return OneShotSection(f"{head}{intro}{''.join(parts)}</section>", plots)
