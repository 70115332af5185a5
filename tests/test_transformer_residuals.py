"""scripts/transformer_residuals.py's parts: each named design is a valid genotype of the
shipped space, built as the paper writes it; steps to a target are read right."""

from __future__ import annotations

import math

import optuna
import pytest
from transformer_residuals import DESIGNS, design_params, steps_to, summarise

from nas_skip.spaces import load_space


@pytest.mark.parametrize("design", sorted(DESIGNS))
def test_each_design_is_a_genotype_of_the_space(design: str) -> None:
    g = load_space("transformer").sample(optuna.trial.FixedTrial(design_params(design, 3, 64, 4)))
    ops = [n.op for n in g.nodes]
    kinds = {e.kind for e in g.edges}
    norms = ops.count("layernorm") - 1  # the final norm aside
    if design == "rezero":
        assert norms == 0 and "scaled" in kinds and "add" not in kinds
    elif design.startswith("post_ln"):  # LN(x + F(x)): the norm is the residual node
        assert norms == 6 and all(g.node(f"b{j}_{s}_res").op == "layernorm"
                                  for j in (1, 2, 3) for s in ("attn", "mlp"))  # fmt: skip
    else:  # pre-LN: a norm before each sublayer
        assert norms == 6 and g.node("b1_attn_res").op == "identity"
    assert ("gated" in kinds) == (design == "gated")
    assert any(n.id.endswith("_dwa") for n in g.nodes) == (design == "denseformer")


def test_steps_to_a_target_interpolate_between_evaluations() -> None:
    history = [(100, 3.4), (200, 2.9), (300, 2.6)]
    assert steps_to(3.0, history) == pytest.approx(100 + 100 * (3.4 - 3.0) / (3.4 - 2.9))
    assert steps_to(2.5, history) is None
    # reached at the first evaluation: counted from the untrained log2(97) bits
    first = steps_to(6.0, [(100, 5.0)])
    assert first == pytest.approx(100 * (math.log2(97) - 6.0) / (math.log2(97) - 5.0))


def test_summaries_count_seeds_that_never_reached_the_target_or_diverged() -> None:
    runs = [
        {"design": "pre_ln", "depth": 4, "seed": 0, "val_bpc": 3.0, "steps_to_target": 200.0},
        {"design": "pre_ln", "depth": 4, "seed": 1, "val_bpc": 3.2, "steps_to_target": None},
        {"design": "pre_ln", "depth": 4, "seed": 2, "diverged": "training diverged"},
    ]
    row = summarise(runs, [4])["pre_ln@4"]
    assert row["val_bpc"] == 3.1 and row["val_bpc_std"] == pytest.approx(0.1414, abs=1e-4)
    assert row["reached"] == "1/3" and row["steps_to_target"] == 200 and row["diverged"] == 1
