"""What each process of a search imports (issue 16): the heavy packages only where used.

``import nas_skip`` and ``import nas_skip.cli`` load none of them; the parent of a
``--workers 2`` search only waits and shows progress, so it loads no torch either; a
search worker loads torch but not matplotlib (its SVG drawings are sized from the label
font's metrics, :mod:`nas_skip.draw._font`) nor optuna-dashboard (notes are written
without it). ``scripts/bench_memory.py`` measures what that saves.
"""

from __future__ import annotations

import json
import random
import string
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import optuna
import pytest
from helpers import blobs, write_space

from nas_skip.draw._font import label_extent
from nas_skip.draw._layout import _label, matplotlib_extent
from nas_skip.spaces import list_spaces, load_space

#: never loaded by importing nas_skip or its command line, nor by a search's parent
HEAVY = ("torch", "torchvision", "matplotlib", "optuna_dashboard", "plotly", "pandas",
         "pyarrow", "ray", "scipy", "sklearn")  # fmt: skip
#: loaded by a training worker for torch, never for its drawings or notes
NOT_IN_A_WORKER = ("matplotlib", "optuna_dashboard", "plotly", "pandas", "pyarrow", "ray",
                   "sklearn", "torchvision")  # fmt: skip


def loaded_after(code: str, cwd: Path | None = None) -> list[str]:
    """The modules of :data:`HEAVY` a fresh interpreter holds after running ``code``."""
    script = code + "\nimport sys\nprint(__import__('json').dumps(sorted(m for m in "
    script += f"{HEAVY!r} if m in sys.modules)))\n"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=cwd, timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("module", ["nas_skip", "nas_skip.cli", "nas_skip.searching",
                                    "nas_skip.train", "nas_skip.data",
                                    "nas_skip.searching._local"])  # fmt: skip
def test_importing_loads_no_heavy_package(module: str) -> None:
    assert loaded_after(f"import {module}") == []


def _search(tmp_path: Path, workers: int) -> str:
    """A script that runs ``nas-skip search`` of a tiny space in its own process (its
    workers, when several, in theirs), on an .npz file: numpy reads it (the space's
    digits would load scikit-learn for its data)."""
    space = write_space(tmp_path)
    (x, y), (xv, yv) = blobs(240, 0), blobs(60, 1)
    np.savez(tmp_path / "blobs.npz", x_train=x, y_train=y, x_val=xv, y_val=yv)
    args = ["search", "--space", str(space), "--dataset", str(tmp_path / "blobs.npz"),
            "--trials", "4", "--epochs", "1", "--workers", str(workers), "--keep", "1",
            "--seed", "0", "--storage", _storage(tmp_path), "--artifacts",
            str(tmp_path / "artifacts")]  # fmt: skip
    return textwrap.dedent(f"""
        from nas_skip.cli import main
        try:
            main({args!r})
        except SystemExit as exc:
            assert not exc.code, exc.code
    """)


def _storage(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 's.db'}"


def _study(tmp_path: Path) -> optuna.Study:
    (name,) = optuna.get_all_study_names(_storage(tmp_path))
    return optuna.load_study(study_name=name, storage=_storage(tmp_path))


@pytest.mark.slow  # two worker processes start torch
def test_the_parent_of_a_two_worker_search_loads_no_heavy_package(tmp_path: Path) -> None:
    assert loaded_after(_search(tmp_path, 2), cwd=tmp_path) == []
    trials = _study(tmp_path).trials
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials) >= 4


def test_a_search_worker_draws_and_notes_without_matplotlib_or_the_dashboard(
    tmp_path: Path,
) -> None:
    loaded = loaded_after(_search(tmp_path, 1), cwd=tmp_path)  # trials run in this process
    assert "torch" in loaded
    assert not set(loaded) & set(NOT_IN_A_WORKER), loaded
    study = _study(tmp_path)
    assert all("topology_artifact" in t.user_attrs for t in study.trials)
    # --keep 1: a trial kept its weights while it was the best; a better one removed them
    # and rewrote its note to say so
    uploaded = sum("weights_artifact" in t.user_attrs for t in study.trials)
    assert uploaded >= 2
    import optuna_dashboard

    notes = [optuna_dashboard.get_note(optuna.trial.Trial(study, t._trial_id))
             for t in study.trials]  # fmt: skip
    assert sum("**weights removed**" in n for n in notes) == uploaded - 1
    assert sum("**weights kept**" in n for n in notes) == 1


# --- labels sized from the font's metrics -------------------------------------------------
def _labels() -> list[str]:
    """Labels of genotypes of every shipped space, and random printable ASCII ones."""
    labels = set()
    for name in list_spaces():
        space = load_space(name)
        for seed in range(3):
            g = space.sample(optuna.trial.FixedTrial(_choices(space, seed)))
            labels.update(_label(g, n) for n in g.order)
    rng = random.Random(0)
    alphabet = string.printable[:95]
    for _ in range(400):
        lines = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))
                 for _ in range(rng.randint(1, 4))]  # fmt: skip
        labels.add("\n".join(lines))
    return sorted(labels)


def _choices(space: object, seed: int) -> dict[str, object]:
    """A full set of choices for ``space``, as a random sampler picks them."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed))
    trial = study.ask()
    space.sample(trial)  # type: ignore[attr-defined]
    return dict(trial.params)


def test_label_sizes_from_the_font_metrics_are_matplotlib_s() -> None:
    """If this fails after a matplotlib upgrade: python scripts/make_font_metrics.py."""
    import matplotlib

    measured = 0
    for label in _labels():
        extent = label_extent(label)
        if extent is None:  # a ligature or a $: matplotlib's, and so the same
            continue
        measured += 1
        assert extent == matplotlib_extent(label), (label, matplotlib.__version__)
    assert measured > 300


@pytest.mark.parametrize("label", ["diff\n64", "profile", "café", "x²", "$x$", "l1\nrelu\n8"])
def test_labels_the_metrics_do_not_cover_are_measured_by_matplotlib(label: str) -> None:
    from nas_skip.draw._layout import text_size

    if label == "l1\nrelu\n8":
        assert label_extent(label) is not None
    else:
        assert label_extent(label) is None
    width, height = text_size(label)
    assert width > 0.12 and height > 0.12


# --- notes rewritten without optuna-dashboard ---------------------------------------------
@pytest.mark.parametrize("where", ["memory", "sqlite"])
def test_a_rewritten_note_reads_back_in_optuna_dashboard(where: str, tmp_path: Path) -> None:
    """In memory (Optuna's API) and in SQLite (the trial's note keys and version read in
    SQL, not every note of the study)."""
    import optuna_dashboard

    from nas_skip.searching import make_storage
    from nas_skip.searching._describe import NOTE_CHUNK, rewrite_note

    storage = make_storage(f"sqlite:///{tmp_path / 'n.db'}") if where == "sqlite" else None
    study = optuna.create_study(storage=storage)
    other = study.ask()  # a neighbour (trial id 0 beside 10, 1 beside 11 ...)
    optuna_dashboard.save_note(other, "the neighbour's note")
    trial = study.ask()
    for _ in range(10):
        study.ask()
    key = f"dashboard:{trial._trial_id}:note_ver"
    rewrite_note(study, trial._trial_id, "x" * (2 * NOTE_CHUNK + 1))  # 3 chunks, version 1
    assert optuna_dashboard.get_note(trial) == "x" * (2 * NOTE_CHUNK + 1)
    optuna_dashboard.save_note(trial, "y" * (NOTE_CHUNK + 1))  # version 2, 2 chunks
    rewrite_note(study, trial._trial_id, "short")  # version 3; the old chunks blanked
    assert optuna_dashboard.get_note(trial) == "short"
    assert study._storage.get_study_system_attrs(study._study_id)[key] == 3
    assert optuna_dashboard.get_note(other) == "the neighbour's note"
