"""scripts/bench_train.py on tiny synthetic data: the trainer and the plain loop agree."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from nas_skip.data._base import Dataset

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_train.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """The benchmark script, imported as a module."""
    spec = importlib.util.spec_from_file_location("bench_train", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_train"] = module
    spec.loader.exec_module(module)
    return module


def random_dataset(shape: tuple[int, ...], classes: int, n: int) -> Dataset:
    """Random inputs and labels: the timing and agreement checks need no signal."""
    gen = torch.Generator().manual_seed(0)
    tensors = []
    for count in (n, n // 4, n // 4):
        tensors += [
            torch.randn(count, *shape, generator=gen),
            torch.randint(0, classes, (count,), generator=gen),
        ]
    return Dataset("random", "vector" if len(shape) == 1 else "image", shape, classes, *tensors)


def test_mlp_case_matches_the_plain_loop_exactly(bench: ModuleType) -> None:
    data = random_dataset((40,), 10, 300)
    g = bench.mlp_genotype(40, 10)
    out = bench.bench_case("mlp", g, bench.HandMLP(40, 10), data, epochs=3)
    # same weights, same batches, same ops: the per-epoch losses are bitwise equal
    assert out["mlp_loss_max_rel_diff"] == 0.0 and out["mlp_max_abs_diff"] == 0.0
    assert out["ratio_mlp"] > 0 and out["mlp_epochs_timed"] == 2


def test_resnet_case_matches_the_plain_loop_exactly(bench: ModuleType) -> None:
    data = random_dataset((3, 32, 32), 8, 64)
    g = bench.resnet_genotype((3, 32, 32), 8)
    out = bench.bench_case("res", g, bench.HandResNet8(8), data, epochs=2)
    assert out["res_loss_max_rel_diff"] == 0.0 and out["res_max_abs_diff"] == 0.0
    assert out["ratio_res"] > 0
