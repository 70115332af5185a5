"""Built modules trace: ``torch.jit.trace`` and ``torch.export`` give the eager outputs.

Also a smoke run of ``scripts/bench_compile.py --quick`` (one JSON line with its keys).
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from nas_skip import Genotype, build

ROOT = Path(__file__).resolve().parent.parent

#: A vector genotype with gated, scaled, concat and projection edges (and a long skip).
VECTOR_DOC = {
    "schema": 1,
    "input": {"shape": [16]},
    "nodes": [
        {"id": "stem", "op": "linear_relu", "features": 32},
        {"id": "f", "op": "linear_relu", "features": 32},
        {"id": "rz", "op": "identity"},
        {"id": "dense", "op": "layernorm_linear_relu", "features": 24},
        {"id": "t", "op": "linear_relu", "features": 24},
        {"id": "hw", "op": "identity"},
        {"id": "head", "op": "linear_head", "classes": 5},
    ],
    "edges": [
        {"src": "input", "dst": "stem"},
        {"src": "stem", "dst": "f"},
        {"src": "stem", "dst": "rz"},
        {"src": "f", "dst": "rz", "kind": "scaled", "init": 0.5},
        {"src": "rz", "dst": "dense"},
        {"src": "stem", "dst": "dense", "kind": "concat"},
        {"src": "dense", "dst": "t"},
        {"src": "t", "dst": "hw"},
        {"src": "dense", "dst": "hw", "kind": "gated", "bias": -1.0},
        {"src": "hw", "dst": "head"},
        {"src": "input", "dst": "head", "kind": "add", "align": "projection"},
    ],
    "output": "head",
}


def _model(name: str) -> tuple[nn.Module, tuple[int, ...]]:
    if name == "resnet20":
        text = (ROOT / "examples/genotypes/resnet20.json").read_text(encoding="utf-8")
        g = Genotype.from_json(text)
    else:
        g = Genotype.from_json(VECTOR_DOC)
    torch.manual_seed(0)
    model = build(g).eval()  # eval: batch-norm statistics are constants, not updated
    return model, g.input_shape


@pytest.mark.parametrize("name", ["resnet20", "vector"])
def test_jit_trace_matches_eager(name: str) -> None:
    model, shape = _model(name)
    x, other = torch.randn(3, *shape), torch.randn(5, *shape)
    with warnings.catch_warnings():
        # TorchScript is deprecated upstream; the warning is not what this test checks
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(model, x)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), model(x))
        # a new batch size and new values: nothing was baked into the trace
        torch.testing.assert_close(traced(other), model(other))


@pytest.mark.parametrize("name", ["resnet20", "vector"])
def test_torch_export_matches_eager(name: str) -> None:
    model, shape = _model(name)
    x = torch.randn(2, *shape)
    program = torch.export.export(model, (x,))
    other = torch.randn(2, *shape)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(other), model(other))


def test_bench_compile_quick_prints_one_json_line() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts/bench_compile.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stdout
    figures = json.loads(lines[0])
    keys = {
        "torch",
        "threads",
        "ratio_fwd_bwd",
        "fwd_bwd_built_ms",
        "fwd_bwd_hand_ms",
        "build_200_ms",
        "build_200_warm_ms",
        "ratio_transformer",
    }
    assert keys <= set(figures)
    assert figures["threads"] == 1
    assert figures["max_abs_diff"] <= 1e-4 and figures["transformer_max_abs_diff"] <= 1e-4
    assert figures["ratio_fwd_bwd"] > 0 and figures["build_200_ms"] > 0
