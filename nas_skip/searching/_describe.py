"""What optuna-dashboard shows of each trial: its topology drawing and a markdown note.

The drawing (SVG: nodes with op and output shape, edges coloured and styled by kind, a
legend) is an Optuna artifact of the trial; the note (optuna-dashboard's notes) sums the
genotype up: depth, skips by kind, parameters, FLOPs, hash, and ``duplicate_of``. Depth
and skip hops are counted in the space's layers (the trial's ``depth``, ``skips`` and
``longest_skip`` attributes, see :class:`nas_skip.spaces.Structure`), not in nodes of the
compiled graph, which count merge and identity nodes too. Both are written where the
trial runs, so they work for both backends, Ray workers included.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import optuna

from nas_skip.genotype import Genotype, costs, human, topology
from nas_skip.searching._storage import StudyHandle
from nas_skip.spaces import Structure

DRAWING = "topology.svg"


def upload_drawing(trial: optuna.Trial, handle: StudyHandle, g: Genotype) -> str:
    """Upload the topology drawing as an artifact of ``trial``; returns the artifact id
    (the caller stores it as the ``topology_artifact`` attribute, with the others)."""
    from nas_skip.draw import to_svg

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / DRAWING
        path.write_text(to_svg(g), encoding="utf-8")
        artifact_id = optuna.artifacts.upload_artifact(
            artifact_store=handle.artifact_store,
            file_path=str(path),
            study_or_trial=trial,
            mimetype="image/svg+xml",
        )
    return artifact_id


#: the metrics a note shows, where the trial has them: (attribute, label, format)
_MEASURES = (
    ("val_bpc", "validation bpc", "{:.4f}"),  # a language model's
    ("val_accuracy", "validation", "{:.4f}"),
    ("test_accuracy", "test", "{:.4f}"),
    ("latency_ms", "latency", "{:.2f} ms"),
    ("train_seconds", "training", "{:.1f} s"),
)


def note(trial_number: int, g: Genotype, attrs: dict[str, Any]) -> str:
    """The markdown note of a trial from its genotype and user attributes.

    Depth, skips and the longest skip are the space's (``attrs``' ``depth`` and
    ``skips``); a genotype from no space is measured on its graph instead.
    """
    t = topology(g)
    rows = costs(g)
    params, flops = sum(r.params for r in rows), sum(r.flops for r in rows)
    kinds = [k.removeprefix("skips_") for k in t if k.startswith("skips_")]
    structure = Structure.from_attrs(attrs)
    if structure is not None:
        t.update(structure.features(kinds))
    skips = ", ".join(f"{k} {t['skips_' + k]}" for k in kinds)
    lines = [
        f"### Trial {trial_number}: `{g.canonical_hash()}`",
        "",
        "| depth | nodes | parameters | FLOPs | longest skip |",
        "|---|---|---|---|---|",
        f"| {t['depth']} | {t['nodes']} | {params:,} | {human(flops)} | {t['longest_skip']} |",
        "",
        f"**skips by kind**: {skips}",
    ]
    if "duplicate_of" in attrs:
        lines += ["", f"**duplicate of trial {attrs['duplicate_of']}**: not trained again"]
    if "weights_removed" in attrs:  # see nas_skip.searching._weights
        lines += ["", f"**weights removed**: {attrs['weights_removed']}; `nas-skip export "
                  f"--trial {trial_number} --retrain-epochs E` trains it again"]  # fmt: skip
    elif "weights_artifact" in attrs:
        lines += ["", f"**weights kept**: `nas-skip export --trial {trial_number}`"]
    if "nb201_arch" in attrs:
        lines += ["", f"**NAS-Bench-201 cell**: `{attrs['nb201_arch']}`"]
    shown = [(label, attrs[key], fmt) for key, label, fmt in _MEASURES if key in attrs]
    if "val_accuracy" in attrs:
        lines += ["", ", ".join(f"{label} {fmt.format(value)}" for label, value, fmt in shown)]
    for key in ("fail_reason", "pruned_reason"):
        if key in attrs:
            lines += ["", f"**{key.replace('_', ' ')}**: {attrs[key]}"]
    return "\n".join(lines) + "\n"


#: optuna-dashboard's note format (its ``_note`` module): a version and the body in
#: chunks of at most NOTE_CHUNK characters, as study system attributes; its reader reads
#: what :class:`NoteWriter` writes (tests/search/test_describe.py)
NOTE_CHUNK = 2045


def _note_keys(trial_id: int) -> tuple[str, str]:
    return f"dashboard:{trial_id}:note_ver", f"dashboard:{trial_id}:note_str:"


def _write_note(storage: optuna.storages.BaseStorage, study_id: int, trial_id: int,
                body: str, version: int, stale: int) -> int:  # fmt: skip
    """Write ``body`` as version ``version`` of a trial's note, blanking the chunks past its
    end of the ``stale`` written before; returns how many chunks the trial now has."""
    version_key, prefix = _note_keys(trial_id)
    parts = [body[i : i + NOTE_CHUNK] for i in range(0, len(body), NOTE_CHUNK)]
    storage.set_study_system_attr(study_id, version_key, version)
    for i, part in enumerate(parts):
        storage.set_study_system_attr(study_id, f"{prefix}{i}", part)
    for i in range(len(parts), stale):
        storage.set_study_system_attr(study_id, f"{prefix}{i}", "")
    return max(stale, len(parts))


class NoteWriter:
    """Writes one trial's optuna-dashboard note, as often as it changes, without reading
    the study.

    ``optuna_dashboard.save_note`` reads every system attribute of the study twice per
    call (every trial's note lives there), which made notes most of a trial's cost in a
    big study; a trial's notes are written by the one process that evaluates it, which
    knows the version and the chunks it wrote last.
    """

    def __init__(self, trial: optuna.Trial) -> None:
        self.trial = trial
        self.version = 0  # of the last note written here (0: none yet)
        self.chunks = 0  # chunks written so far: a shorter note blanks the rest

    def __call__(self, g: Genotype, attrs: dict[str, Any]) -> None:
        self.version += 1
        self.chunks = _write_note(self.trial.storage, self.trial.study._study_id,
                                  self.trial._trial_id, note(self.trial.number, g, attrs),
                                  self.version, self.chunks)  # fmt: skip


def rewrite_note(study: optuna.Study, trial_id: int, body: str) -> None:
    """Rewrite the optuna-dashboard note of a trial that another process may have written
    (a finished trial's whose weights were removed, a retrained one's): the next version,
    the old chunks beyond the new body blanked.

    What ``optuna_dashboard.save_note`` does, reading the trial's own note keys and version
    (``save_note`` reads every system attribute of the study twice: every trial's note),
    and without importing optuna-dashboard, which loads pandas, scikit-learn and scipy
    (about 150 MiB) into the search worker that calls this.
    """
    from nas_skip.searching._queries import StudyQueries

    queries = StudyQueries(study)
    version_key, prefix = _note_keys(trial_id)
    stale = len(queries.system_keys(prefix))
    version = queries.system_value(version_key)
    version = version if isinstance(version, int) and not isinstance(version, bool) else 0
    _write_note(study._storage, study._study_id, trial_id, body, version + 1, stale)
