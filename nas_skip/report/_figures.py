"""The report's plots: plotly figures built from the study and its trial table.

Each builder returns a :class:`Plot`: a figure, or a sentence saying why there is none
(too few trials, nothing to compare), so that a young or odd study still gets a page.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from nas_skip.report._table import facts_of, space_of, structure_of, trial_hops
from nas_skip.searching._storage import originals
from nas_skip.spaces import Space

if TYPE_CHECKING:
    import plotly.graph_objects as go

#: objectives whose values span orders of magnitude: drawn on a log axis
LOG_OBJECTIVES = ("params", "flops")
TOP_FRACTION = 0.1  # "top" in the skip-frequency plot: the best 10% of complete trials
#: fewer complete trials than this: no "top 10%" (its top would be a single trial)
MIN_TOP_TRIALS = 20
#: fewer complete trials than this: no fANOVA (a random forest fit to a handful of points
#: ranks parameters by noise); it also needs two parameters that vary
MIN_IMPORTANCE_TRIALS = 20
#: fANOVA's forest: Optuna's 64 trees, each at most 6 splits deep (64 leaves). Optuna's own
#: trees grow until each leaf is one trial, and the marginals over those leaves took 41 s
#: of a 2,000-trial report's 57 s (scripts/bench_report.py); trees of depth 6 rank the
#: parameters as the full trees do on studies whose answer is known, in about 1 s
FANOVA_TREES = 64
FANOVA_DEPTH = 6
FANOVA = f"fANOVA ({FANOVA_TREES} trees of depth at most {FANOVA_DEPTH}, seed 0)"
_LAYOUT = {"template": "plotly_white", "height": 420, "margin": {"t": 30, "r": 20}}


@dataclass(frozen=True)
class Plot:
    """One section of the page: a figure, or a note in its place."""

    id: str  # the figure div's id, stable for browser tests: ``plot-<name>``
    title: str
    caption: str
    figure: go.Figure | None = None
    note: str | None = None  # said instead of the figure, or above it


def complete(study: optuna.Study) -> list[FrozenTrial]:
    """The complete trials that have values, in number order."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return [t for t in done if t.values]


def _maximize(study: optuna.Study) -> bool:
    return study.directions[0] == StudyDirection.MAXIMIZE


def best_so_far(study: optuna.Study, target: str) -> Plot:
    """Each complete trial's first objective by trial number, and the running best."""
    import plotly.graph_objects as go

    pid, title = "plot-best-so-far", f"Best {target} so far"
    caption = (
        f"Each dot is a complete trial's {target}; the line is the best reached up to "
        "that trial. A line still climbing at the end says more trials may pay off."
    )
    done = complete(study)
    if not done:
        return Plot(pid, title, caption, note="No trial has completed yet.")
    pick = max if _maximize(study) else min
    numbers = [t.number for t in done]
    values = [t.values[0] for t in done]
    running = [pick(values[: i + 1]) for i in range(len(values))]
    fig = go.Figure()
    fig.add_scatter(
        x=numbers,
        y=values,
        mode="markers",
        name=f"trial {target}",
        marker={"color": "#9aa5b1", "size": 7},
    )
    fig.add_scatter(
        x=numbers,
        y=running,
        mode="lines",
        name="best so far",
        line={"color": "#1f6feb", "width": 2.5, "shape": "hv"},
    )
    fig.update_layout(**_LAYOUT, xaxis_title="trial number", yaxis_title=target)
    return Plot(pid, title, caption, fig)


def pareto(study: optuna.Study, names: list[str]) -> Plot | None:
    """Accuracy against the second objective, the Pareto front highlighted; None for a
    single-objective study."""
    import plotly.graph_objects as go

    if len(study.directions) < 2:
        return None
    target, other = names[0], names[1]
    pid, title = "plot-pareto", f"Pareto front: {target} vs {other}"
    caption = (
        f"Complete trials by {target} and {other}; the highlighted trials are the "
        f"Pareto front (no other trial is better in every objective: {', '.join(names)})."
    )
    done = complete(study)
    if not done:
        return Plot(pid, title, caption, note="No trial has completed yet.")
    front = {t.number for t in study.best_trials}
    rest = [t for t in done if t.number not in front]
    best = sorted((t for t in done if t.number in front), key=lambda t: t.values[1])
    fig = go.Figure()
    for group, name, style in (
        (rest, "other trials", {"color": "#9aa5b1", "size": 7}),
        (best, "Pareto front", {"color": "#d1242f", "size": 10}),
    ):
        fig.add_scatter(
            x=[t.values[1] for t in group],
            y=[t.values[0] for t in group],
            mode="markers" if group is rest else "lines+markers",
            name=name,
            marker=style,
            text=[f"trial {t.number}" for t in group],
            line={"shape": "hv", "dash": "dot"},
        )
    fig.update_layout(**_LAYOUT, xaxis_title=other, yaxis_title=target)
    if other in LOG_OBJECTIVES:
        fig.update_xaxes(type="log")
    return Plot(pid, title, caption, fig)


def _upper(name: str) -> str:
    """A name at the start of a sentence: ``accuracy`` -> ``Accuracy``; ``mIoU`` stays."""
    return name.capitalize() if name == name.lower() else name


def accuracy_params(study: optuna.Study, target: str) -> Plot:
    """Complete trials' first objective against their parameter count (log x), by depth."""
    import plotly.graph_objects as go

    pid, title = "plot-accuracy-params", f"{_upper(target)} vs parameters"
    caption = (
        f"{_upper(target)} of complete trials against their parameter count "
        "(log scale), coloured by depth: what the extra parameters buy."
    )
    points = [(t, t.user_attrs.get("params")) for t in complete(study)]
    points = [(t, p) for t, p in points if isinstance(p, (int, float)) and p > 0]
    if not points:
        return Plot(pid, title, caption, note="No complete trial has a parameter count.")
    space = space_of(study)
    depth = [_depth(t, space, study) for t, _ in points]
    fig = go.Figure(
        go.Scatter(
            x=[p for _, p in points],
            y=[t.values[0] for t, _ in points],
            mode="markers",
            text=[f"trial {t.number}" for t, _ in points],
            marker={
                "size": 9,
                "color": depth,
                "colorscale": "Viridis",
                "showscale": True,
                "colorbar": {"title": {"text": "depth"}},
            },
        )
    )
    fig.update_layout(**_LAYOUT, xaxis_title="parameters", yaxis_title=target)
    fig.update_xaxes(type="log")
    return Plot(pid, title, caption, fig)


def _depth(trial: FrozenTrial, space: Space | None, study: optuna.Study) -> int | None:
    """The trial's depth in its space's layers (graph levels for a genotype from no space)."""
    structure = structure_of(trial, space)
    if structure is not None:
        return structure.depth
    known = facts_of(trial, study)
    return None if known is None else known.features["depth"]


def _mean_hops(trials: list[FrozenTrial], space: Space | None,
               study: optuna.Study) -> dict[tuple[str, int], float]:  # fmt: skip
    """Skips of each (kind, hop) per architecture, averaged over ``trials``."""
    total: Counter[tuple[str, int]] = Counter()
    counted = 0
    for t in trials:
        found = trial_hops(t, space, study)
        if found is not None:
            total.update(found)
            counted += 1
    return {key: n / counted for key, n in total.items()} if counted else {}


def skip_frequency(study: optuna.Study) -> Plot:
    """Skips per architecture of each kind at each hop distance: top 10% vs all (the top
    only from :data:`MIN_TOP_TRIALS` complete trials on)."""
    import plotly.graph_objects as go

    pid, title = "plot-skip-hops", "Skip kinds by hop distance: top 10% vs all"
    # duplicates repeat their original's genotype: counting them would weigh re-samples
    done = [t for t in originals(study) if t.values]
    sign = -1.0 if _maximize(study) else 1.0
    ranked = sorted(done, key=lambda t: (sign * t.values[0], t.number))
    enough = len(ranked) >= MIN_TOP_TRIALS
    top = ranked[: math.ceil(TOP_FRACTION * len(ranked))] if enough else []
    hops = (
        "hop distance (how many of the space's layers apart the skip's ends are; "
        "1 = from the layer just before)"
    )
    caption = (
        f"Average number of skips of each kind at each {hops} per architecture, in the "
        f"best {len(top)} of {len(ranked)} complete trials and in all of them. A kind "
        "that is more frequent in the top than overall is one the search favours."
    )
    note = None
    if not enough:
        title = "Skip kinds by hop distance"
        caption = (
            f"Average number of skips of each kind at each {hops} per architecture, over "
            f"the {len(ranked)} complete trials."
        )
        note = (
            f"Too few complete trials ({len(ranked)}) to compare the top 10% with the rest: "
            f"it needs at least {MIN_TOP_TRIALS}, so that the top holds at least "
            f"{math.ceil(TOP_FRACTION * MIN_TOP_TRIALS)}. Shown: all trials only."
        )
    if not ranked:
        return Plot(pid, title, caption, note="No trial has completed yet.")
    space = space_of(study)
    everyone, best = _mean_hops(ranked, space, study), _mean_hops(top, space, study)
    keys = sorted(set(everyone) | set(best))
    if not keys:
        return Plot(pid, title, caption, note="No complete trial has a skip connection.")
    labels = [f"{kind} · hop {hop}" for kind, hop in keys]
    fig = go.Figure()
    if top:
        fig.add_bar(
            x=labels,
            y=[best.get(k, 0.0) for k in keys],
            name=f"top {len(top)}",
            marker_color="#1f6feb",
        )
    fig.add_bar(
        x=labels,
        y=[everyone.get(k, 0.0) for k in keys],
        name=f"all {len(ranked)}",
        marker_color="#9aa5b1",
    )
    fig.update_layout(
        **_LAYOUT,
        barmode="group",
        xaxis_title="skip kind · hop distance (layers)",
        yaxis_title="skips per architecture",
    )
    return Plot(pid, title, caption, fig, note)


def importances(study: optuna.Study, target: str) -> Plot:
    """fANOVA importance of each parameter for the first objective (:data:`FANOVA`), on
    every complete trial and the parameters they all have that vary; the caption says so
    with the counts."""
    import plotly.graph_objects as go
    from optuna.search_space import intersection_search_space

    pid, title = "plot-importances", f"Parameter importance for {target} (fANOVA)"
    caption = (
        f"How much of the variation in {target} each parameter explains, by {FANOVA}. "
        "Only parameters that every complete trial has are compared, so parameters that "
        "exist at some depths only are left out."
    )
    done = complete(study)
    if len(done) < MIN_IMPORTANCE_TRIALS:
        return Plot(
            pid,
            title,
            caption,
            note=(
                f"Too few complete trials ({len(done)}) to estimate importances: fANOVA "
                f"needs at least {MIN_IMPORTANCE_TRIALS}; with fewer its ranking is noise."
            ),
        )
    fitted = [t for t in done if math.isfinite(t.values[0])]  # as fANOVA leaves out others
    which_trials = f"all {len(done)} complete trials"
    if len(fitted) < len(done):
        which_trials = f"the {len(fitted)} complete trials whose {target} is finite"
    shared = intersection_search_space(fitted)  # also the same choices in every trial
    varying = sorted(p for p in shared if len({repr(t.params[p]) for t in fitted}) > 1)
    if len(varying) < 2:
        which = f"only {varying[0]} varies" if varying else "no parameter varies"
        return Plot(
            pid,
            title,
            caption,
            note=(
                f"Among the parameters every complete trial has, {which}: fANOVA needs "
                "at least two to compare."
            ),
        )
    caption = (
        f"How much of the variation in {target} each parameter explains: {FANOVA} fit "
        f"to {which_trials}, on the {len(varying)} parameters that every one of them has "
        "and that vary among them (parameters that exist at some depths only are left "
        "out)."
    )
    evaluator = optuna.importance.FanovaImportanceEvaluator(
        n_trees=FANOVA_TREES, max_depth=FANOVA_DEPTH, seed=0
    )
    try:
        # optuna marks the evaluators experimental, and fANOVA warns about the fit: kept
        # out of the console here (the report's numbers are on the page)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scores = optuna.importance.get_param_importances(
                study, evaluator=evaluator, params=varying, target=lambda t: t.values[0]
            )
    except (ValueError, RuntimeError) as exc:  # fANOVA's own "cannot" cases
        return Plot(pid, title, caption, note=f"fANOVA could not run: {exc}")
    if not scores:
        return Plot(pid, title, caption, note="fANOVA found no parameter to compare.")
    names = list(scores)[::-1]  # most important at the top of a horizontal bar chart
    fig = go.Figure(
        go.Bar(x=[scores[n] for n in names], y=names, orientation="h", marker_color="#1f6feb")
    )
    fig.update_layout(**_LAYOUT, xaxis_title="importance", yaxis_title=None)
    fig.update_layout(height=max(240, 60 + 28 * len(names)))
    return Plot(pid, title, caption, fig)
