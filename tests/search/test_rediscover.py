"""scripts/rediscover_skips.py: its reading of skips, its spaces, and a small real run."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import optuna
import pytest
from optuna.distributions import CategoricalDistribution

from nas_skip.spaces import load_space

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "rediscover_skips.py"


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rediscover_skips", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["rediscover_skips"] = module
    spec.loader.exec_module(module)
    return module


def trial(edges: dict[str, str]) -> optuna.trial.FrozenTrial:
    kinds = CategoricalDistribution(["none", "add", "concat", "gated", "scaled"])
    return optuna.trial.create_trial(params=edges, distributions=dict.fromkeys(edges, kinds),
                                     value=0.5)  # fmt: skip


def test_skips_are_read_in_layers_with_the_stem_at_minus_one(script: ModuleType) -> None:
    t = trial({"edge:stem->l0": "add", "edge:l0->l2": "concat", "edge:l1->l2": "none",
               "edge:l3->l4": "scaled"})  # fmt: skip
    assert sorted(script.skips(t)) == [(1, "add"), (1, "scaled"), (2, "concat")]
    assert script.has_residual(t)
    # 2 of its 5 layers (l0 and l4; depth from the trial's own choice) have one
    with_depth = trial({"edge:stem->l0": "add", "edge:l3->l4": "scaled", "edge:l1->l2": "gated"})
    with_depth.params["depth"] = 5
    assert script.residual_layers(with_depth) == pytest.approx(2 / 5)
    assert not script.has_residual(trial({"edge:l0->l2": "add", "edge:l1->l2": "gated"}))


def test_the_deep_and_plain_spaces(script: ModuleType, tmp_path: Path) -> None:
    deep = load_space(script.deep_space(tmp_path, 16, 32, None))
    plain = load_space(script.deep_space(tmp_path, 16, 32, ["none"]))
    assert deep.spec.skeleton["depth"].low == 16 and deep.spec.skeleton["depth"].high == 32
    assert "add" in deep.spec.skeleton["kinds"] and plain.spec.skeleton["kinds"] == ("none",)
    # the same recipe as deep_mlp: only the architecture differs
    assert deep.spec.train == plain.spec.train == load_space("deep_mlp").spec.train


def test_a_small_run_reports_every_figure(script: ModuleType, tmp_path: Path) -> None:
    args = argparse.Namespace(seeds=1, trials=2, epochs=1, workers=1, low=2, high=3,
                              storage=None)  # fmt: skip
    out = script.run(args, tmp_path)
    assert out["depth"] == [2, 3] and len(out["per_seed"]) == 1
    row = out["per_seed"][0]
    assert 0.0 < row["skips"] <= 1.0 and 0.0 < row["plain"] <= 1.0
    assert out["best_uses_skips"] == float(bool(row["best_skips"]))
    assert 0.0 <= out["top10_hop1_residual"] <= 1.0
    assert 0.0 <= out["top10_residual_layers"] <= 1.0 and 0.0 <= out["all_residual_layers"] <= 1
