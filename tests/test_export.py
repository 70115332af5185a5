"""build and export_code: random valid DAGs build, run, and round-trip through exported code."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import chain, genotype_docs, import_source
from hypothesis import HealthCheck, given, settings

from nas_skip import Genotype, NasSkipError, build, export_code
from nas_skip.codegen import cut_nodes

torch.set_num_threads(1)


def round_trip(g: Genotype, tmp_path: Path) -> None:
    torch.manual_seed(0)
    built = build(g)
    source = export_code(g, class_name="Net")
    tree = ast.parse(source)
    imports = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imports |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert {i.split(".")[0] for i in imports} == {"torch"}
    exported = import_source(source, tmp_path).Net()
    assert list(exported.state_dict()) == list(built.state_dict())
    exported.load_state_dict(built.state_dict())
    x = torch.randint(0, 5, (2, *g.input_shape)) if g.sequence else torch.randn(2, *g.input_shape)
    for mode in ("train", "eval"):
        getattr(built, mode)()
        getattr(exported, mode)()
        a, b = built(x), exported(x)
        assert torch.equal(a, b)
    a.sum().backward()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(doc=genotype_docs(domain="vector"))
def test_random_vector_genotypes(doc: dict[str, Any], tmp_path: Path) -> None:
    round_trip(Genotype.from_json(doc), tmp_path)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(doc=genotype_docs(domain="image"))
def test_random_image_genotypes(doc: dict[str, Any], tmp_path: Path) -> None:
    round_trip(Genotype.from_json(doc), tmp_path)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(doc=genotype_docs(domain="signal"))
def test_random_signal_genotypes(doc: dict[str, Any], tmp_path: Path) -> None:
    round_trip(Genotype.from_json(doc), tmp_path)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(doc=genotype_docs(domain="sequence"))
def test_random_sequence_genotypes(doc: dict[str, Any], tmp_path: Path) -> None:
    round_trip(Genotype.from_json(doc), tmp_path)


def test_a_long_inline_merge_is_wrapped_one_term_a_line(tmp_path: Path) -> None:
    ids = ["first_branch_of_the_stage", "second_branch_of_the_stage", "merge_of_the_stage"]
    doc = chain(
        [2, 8],
        {"id": ids[0], "op": "conv1d_k3_bn_relu", "channels": 2},
        {"id": ids[1], "op": "conv1d_k5_bn_relu", "channels": 2},
        {"id": ids[2], "op": "identity"},
        edges=[
            {"src": ids[0], "dst": ids[2], "kind": "concat"},
            {"src": "input", "dst": ids[2], "kind": "scaled", "align": "projection"},
        ],
    )
    g = Genotype.from_json(doc)
    source = export_code(g)
    assert max(len(line) for line in source.splitlines()) <= 99
    assert f"        {ids[2]} = (\n            torch.cat([{ids[0]}, {ids[1]}], 1)\n" in source
    assert "            + self.alpha_input_merge_of_the_stage * self.proj_input_merge" in source
    round_trip(g, tmp_path)


def test_ids_that_clash_with_python_or_torch_are_mangled(tmp_path: Path) -> None:
    ids = [
        "forward",
        "training",
        "x",
        "self",
        "_modules",
        "torch",
        "F",
        "m",
        "s",
        "g",
        "Net",
        "nn",
        "super",
        "cuda",
        "state_dict",
    ]
    nodes = [{"id": i, "op": "linear", "features": 3} for i in ids]
    doc = chain(
        [3],
        *nodes,
        {"id": "gate_x_g", "op": "identity"},
        edges=[
            {"src": "x", "dst": "g", "kind": "gated"},
            {"src": "m", "dst": "gate_x_g", "kind": "scaled"},
        ],
    )
    g = Genotype.from_json(doc)
    round_trip(g, tmp_path)
    model = build(g)
    assert callable(model.forward) and isinstance(model.training, bool)


def test_a_node_named_genotype_does_not_clash_with_the_attribute_build_sets(
    tmp_path: Path,
) -> None:
    g = Genotype.from_json(chain([3], {"id": "genotype", "op": "linear", "features": 2}))
    model = build(g)  # it used to fail: 'genotype' was the node's module, then the genotype
    assert model.genotype is g and list(model.state_dict()) == [
        "genotype_.weight",
        "genotype_.bias",
    ]
    round_trip(g, tmp_path)


@pytest.mark.parametrize(
    "name",
    [
        "Block1",
        "Block12",
        "torch",
        "nn",
        "F",
        "super",
        "__name__",
        "__builtins__",
        "\uff54\uff4f\uff52\uff43\uff48",
        "\uff22lock1",
        "class",
        "1x",
        "my-net",
        "",
    ],
)
def test_a_class_name_the_file_defines_or_uses_is_refused(name: str) -> None:
    g = Genotype.from_json(chain([3], {"id": "a", "op": "relu"}))
    for make in (build, export_code):
        with pytest.raises(NasSkipError, match=r"^class_name \(--class-name\): .* not a usable"):
            make(g, class_name=name)


def test_a_class_name_beside_the_block_classes_builds() -> None:
    g = Genotype.from_json(repeated_blocks(2))
    assert "class Block1(nn.Module)" in export_code(g)
    for name in ("Block", "Net", "Block1x", "print"):
        model = build(g, class_name=name)
        assert type(model).__name__ == name
        model(torch.randn(2, 8))


def test_generated_code_contains_no_input_strings() -> None:
    doc = chain([3], {"id": "evil", "op": "linear", "features": 3})
    doc["name"] = "__import__('os').system('echo pwned')"
    source = export_code(Genotype.from_json(doc))
    assert "pwned" not in source and "__import__" not in source


def repeated_blocks(n: int) -> dict[str, Any]:
    """``n`` identical residual blocks (ReZero-style scaled skips) on 8-wide vectors."""
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    prev = "input"
    for i in range(n):
        nodes += [
            {"id": f"f{i}", "op": "linear_relu", "features": 8},
            {"id": f"o{i}", "op": "identity"},
        ]
        edges += [
            {"src": prev, "dst": f"f{i}"},
            {"src": f"f{i}", "dst": f"o{i}"},
            {"src": prev, "dst": f"o{i}", "kind": "scaled", "init": 0.0},
        ]
        prev = f"o{i}"
    return {"schema": 1, "input": {"shape": [8]}, "nodes": nodes, "edges": edges, "output": prev}


def test_repeated_blocks_become_one_class() -> None:
    g = Genotype.from_json(repeated_blocks(4))
    assert cut_nodes(g) == ["input", "o0", "o1", "o2", "o3"]
    source = export_code(g)
    assert source.count("class Block1(nn.Module)") == 1 and "Block2" not in source
    assert source.count("= Block1()") == 4
    assert "x = x" not in source
    keys = set(build(g).state_dict())
    assert {"o0.alpha1", "o0.fc1.0.weight", "o3.fc1.0.bias"} <= keys


def test_forward_is_straight_line_code() -> None:
    source = export_code(Genotype.from_json(chain([3], {"id": "a", "op": "relu"})))
    tree = ast.parse(source)
    forward = next(
        n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "forward"
    )
    assert not any(isinstance(n, ast.For | ast.While | ast.If) for n in ast.walk(forward))


def test_build_records_the_genotype_and_shows_generated_source_in_tracebacks() -> None:
    g = Genotype.from_json(chain([3], {"id": "a", "op": "linear", "features": 2}))
    model = build(g)
    assert model.genotype is g
    with pytest.raises(RuntimeError) as info:
        model(torch.randn(2, 5))
    frames = [f for f in info.traceback if "nas-skip generated" in str(f.path)]
    assert frames and "self.a(x)" in str(frames[-1].statement)
