"""The study report: a trial table (CSV and Parquet) and one self-contained HTML page.

``write_report("sqlite:///runs/nas_skip.db", "deep_mlp-mnist1d", Path("report"))`` writes
``trials.csv``, ``trials.parquet`` and ``report.html``: the best-so-far curve, the Pareto
front (several objectives), accuracy against parameters, skip kinds by hop distance in
the top 10% against all trials, fANOVA parameter importances (:data:`FANOVA
<nas_skip.report._figures.FANOVA>`: the page says how they were computed), each one-shot
run's supernet (architecture weights and skip count per epoch, against its derived
network) and the top 5 drawings.
The page fetches nothing: it opens offline and can be mailed as one file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nas_skip.report import _figures as figures
from nas_skip.report._oneshot import oneshot_section
from nas_skip.report._page import architectures, render
from nas_skip.report._readable import readable
from nas_skip.report._table import objective_names, trial_frame
from nas_skip.searching._artifacts import ArtifactFolders
from nas_skip.searching._export import load_study
from nas_skip.searching._progress import top_trials

__all__ = ["ReportFiles", "trial_frame", "write_report"]

TOP_DRAWINGS = 5


@dataclass(frozen=True)
class ReportFiles:
    """What :func:`write_report` wrote."""

    csv: Path
    parquet: Path
    html: Path
    trials: int  # rows of the table: every trial of the study, whatever its state
    skipped: tuple[int, ...] = ()  # malformed trials left out (each one warned about)


def write_report(storage_url: str, study_name: str, out_dir: str | Path,
                 artifacts: str | Path | None = None) -> ReportFiles:  # fmt: skip
    """Write the study's trial table and report page into ``out_dir``.

    Args:
        storage_url: the Optuna storage URL (or journal file) the search wrote.
        study_name: the study.
        out_dir: the folder to write (created; files of the same names are replaced).
        artifacts: the artifact folder the search wrote (its ``--artifacts``), where the
            topology drawings and one-shot weights are read; None: ``runs/artifacts``. A
            drawing not found there is drawn again from the genotype; missing one-shot
            weights are a note in place of their figure.

    Returns:
        The paths written, as :class:`ReportFiles`.

    Raises:
        SearchError: no such study or storage, or the page template is missing.

    Warns:
        SkippedTrialWarning: once per malformed trial (no genotype, an invalid one, a bad
            ``duplicate_of``), which is left out of the table, the figures and the drawings.
    """
    study = readable(load_study(storage_url, study_name))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame = trial_frame(study)
    csv, parquet, page = out / "trials.csv", out / "trials.parquet", out / "report.html"
    frame.to_csv(csv, index=False)
    frame.to_parquet(parquet, index=False)

    names = objective_names(study)
    target = names[0]
    plots = [figures.best_so_far(study, target)]
    front = figures.pareto(study, names)
    if front is not None:
        plots.append(front)
    plots += [
        figures.accuracy_params(study, target),
        figures.skip_frequency(study),
        figures.importances(study, target),
    ]
    store = ArtifactFolders(artifacts)
    cards = architectures(study, top_trials(study, TOP_DRAWINGS), names, store)
    oneshot = oneshot_section(study, store)
    attrs = study.user_attrs
    subtitle = ", ".join(
        f"{key} {attrs[key]}" for key in ("space", "dataset", "epochs") if key in attrs
    )
    subtitle += f"{', ' if subtitle else ''}objectives {', '.join(names)}"
    html = render(study, plots, cards, subtitle, oneshot.html, oneshot.plots)
    page.write_text(html, encoding="utf-8")
    return ReportFiles(csv, parquet, page, len(frame), tuple(sorted(study.skipped)))
