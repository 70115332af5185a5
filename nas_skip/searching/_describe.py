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
    """Upload the topology drawing as an artifact of ``trial``; returns the artifact id."""
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
    trial.set_user_attr("topology_artifact", artifact_id)
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


def save_note(trial: optuna.Trial, g: Genotype, attrs: dict[str, Any]) -> None:
    """Write (or rewrite) the trial's optuna-dashboard note."""
    import optuna_dashboard

    optuna_dashboard.save_note(trial, note(trial.number, g, attrs))
