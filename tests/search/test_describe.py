"""The dashboard note counts depth and skips in the space's layers, not in graph nodes."""

from __future__ import annotations

import optuna

from nas_skip.genotype import topology
from nas_skip.searching._describe import note
from nas_skip.spaces import load_space


def deep_mlp_15() -> tuple[optuna.trial.FixedTrial, dict]:
    """deep_mlp at depth 15 with every skip of its hop window (3) switched on."""
    params: dict = {"depth": 15, "width": 64}
    for j in range(15):
        params[f"op:l{j}"] = "linear_relu"
        for i in range(max(-1, j - 3), j):
            params[f"edge:{'stem' if i < 0 else f'l{i}'}->l{j}"] = "add"
    return optuna.trial.FixedTrial(params), params


def row(text: str) -> list[str]:
    """The cells of the note's table row: depth, nodes, parameters, FLOPs, longest skip."""
    line = next(ln for ln in text.splitlines() if ln.startswith("| ") and "depth" not in ln)
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_the_note_reads_the_depth_the_space_chose() -> None:
    space = load_space("deep_mlp")
    trial, params = deep_mlp_15()
    g = space.sample(trial)
    cells = row(note(3, g, space.attrs(params)))
    assert cells[0] == "15" and cells[4] == "3"  # depth 15, longest skip 3 = the window
    assert "add 42" in note(3, g, space.attrs(params))  # 15 + 14 + 13 in the window
    graph = topology(g)  # a genotype from no space: measured on its graph
    assert row(note(3, g, {}))[0] == str(graph["depth"]) != "15"


def test_the_note_says_whether_the_weights_are_kept() -> None:
    space = load_space("deep_mlp")
    trial, params = deep_mlp_15()
    g = space.sample(trial)
    kept = note(3, g, {"weights_artifact": "x"})
    assert "**weights kept**" in kept
    gone = note(3, g, {"weights_artifact": "x", "weights_removed": "no longer among the best 3"})
    assert "**weights removed**: no longer among the best 3" in gone
    assert "--trial 3 --retrain-epochs E" in gone and "weights kept" not in gone


def test_notes_written_without_reading_the_study_read_back_in_optuna_dashboard() -> None:
    """NoteWriter writes optuna-dashboard's format; its own reader and writer agree."""
    import optuna_dashboard

    from nas_skip.searching._describe import NOTE_CHUNK, NoteWriter

    space = load_space("deep_mlp")
    g = space.sample(deep_mlp_15()[0])
    study = optuna.create_study()
    other = study.ask()  # a neighbour whose note must stay as it is
    optuna_dashboard.save_note(other, "the neighbour's note")
    trial = study.ask()
    write = NoteWriter(trial)
    for reason in ("x" * (3 * NOTE_CHUNK), "", "y" * NOTE_CHUNK, "short"):  # 4, 1, 2, 1 chunks
        attrs = {"fail_reason": reason} if reason else {}
        write(g, attrs)
        assert optuna_dashboard.get_note(trial) == note(trial.number, g, attrs)
    assert write.version == 4
    optuna_dashboard.save_note(trial, "retrained")  # as export and retrain rewrite it later
    assert optuna_dashboard.get_note(trial) == "retrained"
    key = f"dashboard:{trial._trial_id}:note_ver"
    assert study._storage.get_study_system_attrs(study._study_id)[key] == 5  # counted on
    assert optuna_dashboard.get_note(other) == "the neighbour's note"
