"""A real search of a transformer space: language modelling is minimised in bits per
character, recall maximised in accuracy; dedup, kept weights and export work unchanged."""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pytest
import torch
from helpers import import_source, write_space, write_transformer_space

import nas_skip
from nas_skip import NasSkipError, export_code
from nas_skip.data import load_dataset
from nas_skip.searching import retrain
from nas_skip.searching._export import trial_genotype

torch.set_num_threads(1)


def run(tmp_path: Path, dataset: str, **kw: object) -> optuna.Study:
    space = write_transformer_space(tmp_path, dataset)
    options: dict[str, object] = {"trials": 4, "epochs": 1, "seed": 0, "progress": False,
                                  "storage": f"sqlite:///{tmp_path / 's.db'}",
                                  "artifacts": str(tmp_path / "artifacts"), "keep": 1}  # fmt: skip
    return nas_skip.search(space, **{**options, **kw})


def test_a_language_model_search_minimises_bits_per_character(tmp_path: Path) -> None:
    study = run(tmp_path, "pydoc_lm")
    assert study.directions == [optuna.study.StudyDirection.MINIMIZE]
    assert study.user_attrs["objectives"] == ["bpc"] and study.metric_names == ["bpc"]
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 4
    for t in done:  # the value is the validation loss in bits
        assert t.values[0] == pytest.approx(t.user_attrs["val_loss"] / math.log(2))
        assert t.values[0] == t.user_attrs["val_bpc"] < math.log2(97)
    best = nas_skip.best(study)
    assert best.values[0] == min(t.values[0] for t in done if "duplicate_of" not in t.user_attrs)
    # the kept weights load into the exported code and give the stored validation loss
    model = nas_skip.load_model(study, artifacts=tmp_path / "artifacts")
    source = export_code(trial_genotype(best), class_name="CharGPT")
    net = import_source(source, tmp_path).CharGPT()
    net.load_state_dict(model.state_dict())
    data = load_dataset("pydoc_lm")
    with torch.no_grad():
        logits = net.eval()(data.x_val)
    loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), data.y_val).item()
    assert loss / math.log(2) == pytest.approx(best.user_attrs["val_bpc"], rel=1e-4)
    # retrained, it is scored in bits per character too, the best seed the lowest
    done = retrain(f"sqlite:///{tmp_path / 's.db'}", study.study_name, seeds=2, epochs=1,
                   out=tmp_path / "re", progress=False)  # fmt: skip
    assert done.metric == "bpc" and 0 < min(done.val) and max(done.val) < math.log2(97)
    assert done.val[done.record["best_seed"]] == min(done.val)
    assert json.loads((tmp_path / "re" / "metrics.json").read_text())["metric"] == "bpc"


def test_a_recall_search_maximises_accuracy_and_dedups(tmp_path: Path) -> None:
    # two designs (LayerNorm or RMSNorm): four trials train two networks, the others are
    # duplicates recorded with their originals' values
    path = write_transformer_space(tmp_path, "mqar")
    text = path.read_text().replace("{low: 1, high: 2}", "1").replace("[add, scaled]", "add")
    path.write_text(text.replace("[pre, post]", "pre").replace("hop_window: 2", "hop_window: 0"))
    study = nas_skip.search(path, trials=4, epochs=1, seed=0, progress=False, sampler="random",
                            storage=f"sqlite:///{tmp_path / 's.db'}",
                            artifacts=str(tmp_path / "artifacts"))  # fmt: skip
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE]
    assert study.user_attrs["objectives"] == ["accuracy"]
    for t in study.trials:
        assert "val_bpc" not in t.user_attrs and 0 <= t.values[0] <= 1
    by_number = {t.number: t for t in study.trials}
    twins = [t for t in study.trials if "duplicate_of" in t.user_attrs]
    assert len(twins) >= 2
    for t in twins:
        assert t.values == by_number[t.user_attrs["duplicate_of"]].values


def test_bpc_on_classification_data_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(NasSkipError, match="^--objectives: bpc is a language model's score"):
        nas_skip.search(write_space(tmp_path), trials=1, epochs=1, progress=False,
                        objectives=("bpc",), storage=f"sqlite:///{tmp_path / 's.db'}")  # fmt: skip
    assert (
        not (tmp_path / "s.db").exists()
        or optuna.get_all_study_summaries(f"sqlite:///{tmp_path / 's.db'}") == []
    )


def test_oneshot_is_refused_on_a_sequence_space(tmp_path: Path) -> None:
    with pytest.raises(NasSkipError, match="^--strategy oneshot: .* not sequences"):
        run(tmp_path, "pydoc_lm", strategy="oneshot")
