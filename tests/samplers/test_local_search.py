"""LocalSearchSampler on real Optuna studies: steps, restarts, dedup, resume, hostile attrs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.trial import FrozenTrial, Trial, TrialState
from scipy.stats import mannwhitneyu

from nas_skip.evaluators._nb201 import Table
from nas_skip.samplers import LocalSearchSampler, SamplerError
from nas_skip.samplers._local_search import PLAN_ATTR, read_plan
from nas_skip.searching import SearchConfig
from nas_skip.searching._samplers import make_sampler
from nas_skip.spaces import _nb201 as nb201
from nas_skip.spaces import load_space

optuna.logging.set_verbosity(optuna.logging.ERROR)


def one_max(trial: Trial) -> float:
    """12 categorical params with 4 choices; the value counts the params equal to "c"."""
    return float(sum(trial.suggest_categorical(f"op:{i}", list("abcd")) == "c" for i in range(12)))


def mixed(trial: Trial) -> float:
    """Categorical, integer and float parameters, and a depth that adds parameters."""
    depth = trial.suggest_int("depth", 1, 4)
    ops = [trial.suggest_categorical(f"op:{i}", ["conv", "pool"]) for i in range(depth)]
    lr = trial.suggest_float("train:lr", 1e-4, 1e-1, log=True)
    width = trial.suggest_int("width", 8, 64, step=8)
    return depth + ops.count("conv") - abs(np.log10(lr) + 2) + width / 64


def study_of(objective: Any, n: int, direction: str = "maximize", storage: Any = None,
             **kwargs: Any) -> optuna.Study:  # fmt: skip
    study = optuna.create_study(direction=direction, storage=storage,
                                sampler=LocalSearchSampler(**kwargs))  # fmt: skip
    study.optimize(objective, n_trials=n)
    return study


def plans(study: optuna.Study) -> list[dict[str, Any]]:
    out = []
    for t in study.trials:
        plan = read_plan(t)
        assert plan is not None
        out.append(plan)
    return out


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_startup_trials": 0}, "n_startup_trials must be an integer >= 1, got 0"),
        ({"patience": True}, "patience must be an integer >= 1, got True"),
        ({"max_candidates": 0}, "max_candidates must be an integer >= 1"),
        ({"alpha": 0.0}, "alpha must be a positive number, got 0.0"),
        ({"seed": -3}, "local-search seed must be a non-negative integer, got -3"),
    ],
)
def test_constructor_rejects_bad_settings(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(SamplerError, match=message):
        LocalSearchSampler(**kwargs)


def test_startup_is_random_then_each_step_changes_one_param_of_its_centre() -> None:
    study = study_of(mixed, 40, n_startup_trials=6, seed=1)
    steps = plans(study)
    assert [p["step"] for p in steps[:6]] == ["random"] * 6
    neighbours = [(t, p) for t, p in zip(study.trials, steps, strict=True)
                  if p["step"] == "neighbour"]  # fmt: skip
    assert len(neighbours) >= 25
    for t, p in neighbours:
        centre = study.trials[p["centre"]]
        assert centre.state == TrialState.COMPLETE and centre.number < t.number
        changed = {k for k in t.params.keys() | centre.params.keys()
                   if t.params.get(k) != centre.params.get(k)}  # fmt: skip
        # one parameter, or depth with the layers it adds or removes
        assert len(changed) == 1 or "depth" in changed, (changed, t.number)


def test_the_centre_is_the_best_trial_with_a_neighbour_left() -> None:
    study = study_of(one_max, 80, n_startup_trials=5, seed=2, patience=1000)

    def key(params: dict[str, Any]) -> str:
        return json.dumps(sorted(params.items()))

    def exhausted(t: FrozenTrial, held: set[str]) -> bool:
        moves = [{**t.params, name: v} for name in t.params for v in "abcd"
                 if v != t.params[name]]  # fmt: skip
        return all(key(m) in held for m in moves)

    checked = 0
    for t, p in zip(study.trials, plans(study), strict=True):
        if p["step"] != "neighbour":
            continue
        before = [s for s in study.trials[: t.number] if s.state == TrialState.COMPLETE]
        held = {key(s.params) for s in before}
        open_ = [s for s in before if not exhausted(s, held)]
        assert study.trials[p["centre"]].value == max(s.value for s in open_)
        checked += 1
    assert checked > 50


def test_it_never_proposes_what_the_study_holds_and_climbs() -> None:
    study = study_of(one_max, 80, seed=3)
    seen = [json.dumps(sorted(t.params.items())) for t in study.trials]
    assert len(seen) == len(set(seen))
    assert study.best_value >= 11  # 12 is the maximum; random search reaches about 6


def test_a_stalled_walk_restarts_with_random_trials() -> None:
    study = study_of(lambda t: one_max(t) * 0.0, 30, n_startup_trials=4, patience=5,
                     restart_trials=3, seed=4)  # fmt: skip
    walks = [p["walk"] for p in plans(study)]
    assert walks[:4] == [0] * 4 and max(walks) >= 2
    for k in range(1, max(walks) + 1):
        first = walks.index(k)
        assert [p["step"] for p in plans(study)[first : first + 3]] == ["random"] * 3


def test_minimize_walks_downhill() -> None:
    study = study_of(lambda t: -one_max(t), 60, direction="minimize", seed=5)
    assert study.best_value <= -10


def test_with_a_space_no_two_trials_are_isomorphic(tmp_path: Path) -> None:
    space = load_space("nb201", "cifar10")
    sampler = make_sampler(SearchConfig(space="nb201", seed=0, trials=60), space=space)
    assert isinstance(sampler, LocalSearchSampler)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    table = Table("cifar10")

    def objective(trial: Trial) -> float:
        g = space.sample(trial)
        trial.set_user_attr("hash", g.canonical_hash())
        return table.entry(nb201.cell_from_params(trial.params, nb201.NB201_OPS)).mean

    study.optimize(objective, n_trials=60)
    hashes = [t.user_attrs["hash"] for t in study.trials]
    assert len(hashes) == len(set(hashes))


def test_a_define_by_run_space_is_completed_by_the_space() -> None:
    space = load_space("deep_mlp")
    sampler = LocalSearchSampler(n_startup_trials=4, seed=6, space=space)
    study = optuna.create_study(direction="maximize", sampler=sampler)

    def objective(trial: Trial) -> float:
        g = space.sample(trial)  # raises if a choice were missing or stale
        space.sample_train(trial)
        return len(g.nodes) + float(trial.params.get("train:lr", 0))

    study.optimize(objective, n_trials=25)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    for t, p in zip(study.trials, plans(study), strict=True):
        if p["step"] == "neighbour":  # the trial took the completed plan as it stood
            assert t.params == p["params"]


def test_a_resumed_study_continues_exactly(tmp_path: Path) -> None:
    def run(splits: list[int]) -> list[tuple[Any, ...]]:
        url = f"sqlite:///{tmp_path / f'{len(splits)}.db'}"
        for n in splits:  # a new process, a new sampler, the same storage
            sampler = LocalSearchSampler(n_startup_trials=5, patience=6, seed=7)
            study = (
                optuna.load_study(study_name="s", storage=url, sampler=sampler)
                if n != splits[0]
                else optuna.create_study(
                    study_name="s", storage=url, direction="maximize", sampler=sampler
                )
            )
            study.optimize(one_max, n_trials=n)
        return [(sorted(t.params.items()), t.system_attrs[PLAN_ATTR]) for t in study.trials]

    assert run([30]) == run([8, 13, 9])


def test_hostile_plans_in_storage_are_ignored() -> None:
    # plans another process wrote: not JSON, not a plan, values that fit no distribution, a
    # huge walk number, megabytes; the trial falls back to random values and later trials
    # plan around it
    study = optuna.create_study(direction="maximize", sampler=LocalSearchSampler(seed=8))
    study.optimize(one_max, n_trials=6)
    hostile = ["[", "{}", json.dumps({"params": [], "walk": 1}),
               json.dumps({"params": {}, "walk": -1}),
               json.dumps({"params": {"op:0": [1], "op:1": "z"}, "walk": 10**30}),
               "x" * (2 << 20)]  # fmt: skip
    for raw in hostile:
        trial = study.ask()
        study._storage.set_trial_system_attr(trial._trial_id, PLAN_ATTR, raw)
        study.tell(trial, one_max(trial))
        assert all(v in "abcd" for v in trial.params.values())
    study.optimize(one_max, n_trials=10)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert len(study.trials) == 22


def test_several_objectives_are_refused_and_leave_no_running_trial() -> None:
    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=LocalSearchSampler())  # fmt: skip
    with pytest.raises(SamplerError, match=r"^LocalSearchSampler .*'nsga2'"):
        study.ask()
    assert [t.state for t in study.trials] == [TrialState.FAIL]


def test_the_default_sampler_beats_random_search_at_50_evaluations() -> None:
    # a statistical test on a fixed seed list: the table's mean accuracy of the cell each
    # run picks, local search against random search, one-sided Mann-Whitney U
    space = load_space("nb201", "cifar10")
    table = Table("cifar10")

    def best(sampler_name: str, seed: int) -> float:
        config = SearchConfig(space="nb201", evaluator="nb201-cifar10", trials=50, seed=seed,
                              sampler=sampler_name)  # fmt: skip
        study = optuna.create_study(direction="maximize",
                                    sampler=make_sampler(config, space=space))  # fmt: skip

        def objective(trial: Trial) -> float:
            space.ask(trial)
            cell = nb201.cell_from_params(trial.params, nb201.NB201_OPS)
            return table.draw(cell, seed + trial.number)[0]

        study.optimize(objective, n_trials=50)
        picked: FrozenTrial = study.best_trial
        return table.entry(nb201.cell_from_params(picked.params, nb201.NB201_OPS)).mean

    seeds = range(12)
    ours = [best("local-search", s) for s in seeds]
    rand = [best("random", s) for s in seeds]
    assert np.mean(ours) > np.mean(rand)
    assert mannwhitneyu(ours, rand, alternative="greater").pvalue < 0.01


def test_pruned_trials_count_towards_the_patience_and_teach_the_surrogate() -> None:
    def objective(trial: Trial) -> float:
        value = one_max(trial)
        if trial.number >= 4:  # every step is pruned after one low report
            trial.report(value / 2, 1)
            raise optuna.TrialPruned()
        return value

    study = study_of(objective, 24, n_startup_trials=4, patience=6, restart_trials=2, seed=9)
    walks = [p["walk"] for p in plans(study)]
    # the best is among the 4 complete trials; 6 pruned steps later the walk gives up, as
    # it would after 6 complete ones (counting COMPLETE trials only, it never would)
    assert 1 in walks and walks.index(1) <= 4 + 6


def test_a_walk_moves_the_architecture_more_than_the_learning_rate() -> None:
    def objective(trial: Trial) -> float:
        arch = sum(trial.suggest_categorical(f"op:{i}", list("abc")) == "c" for i in range(8))
        lr = trial.suggest_float("train:lr", 1e-4, 1e-1, log=True)
        return arch - abs(np.log10(lr) + 2)

    study = study_of(objective, 60, n_startup_trials=5, seed=10)
    moved = []
    for t, p in zip(study.trials, plans(study), strict=True):
        if p["step"] == "neighbour":
            centre = study.trials[p["centre"]]
            moved += [k for k in t.params if t.params[k] != centre.params[k]]
    # one parameter in nine is a training choice: the walk changes it about that often
    assert moved and moved.count("train:lr") / len(moved) < 0.3
    assert study.best_value >= 7
