"""register_op: a user's own ops in genotypes, space files, build, export and cost counts."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import torch
from helpers import chain, import_source
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from user_ops import ScaledTanh, gated_conv

from nas_skip import Genotype, GenotypeError, NasSkipError, build, export_code
from nas_skip._user_ops import (
    OpRegistrationError,
    _unregister,
    ensure_registered,
    register_op,
    registered_ops,
)
from nas_skip.genotype import costs
from nas_skip.ops import OPS, Param
from nas_skip.spaces import SpaceError, load_space

torch.set_num_threads(1)


@pytest.fixture
def user_ops() -> Iterator[None]:
    """scaled_tanh (vector, measured costs) and gated_conv (image, declared shape)."""
    register_op(
        "scaled_tanh",
        ScaledTanh,
        params={"features": (int, 1, 4096), "scale": Param(float, 0.0, 10.0, default=1.0)},
        shape=lambda s, p: (p["features"],),
        domain="vector",
        doc="linear, scaled tanh",
    )
    register_op(
        "gated_conv",
        gated_conv,
        params={"channels": (int, 1, 512)},
        shape=lambda s, p: (p["channels"], *s[1:]),
        domain="image",
        count=lambda i, o, p: (2 * (i[0] * p["channels"] + p["channels"]), 0),
    )
    yield
    for name in ("scaled_tanh", "gated_conv", "plugin_doubler"):
        _unregister(name)


def vector_genotype(scale: float = 0.5) -> Genotype:
    return Genotype.from_json(
        chain(
            [9],
            {"id": "a", "op": "scaled_tanh", "features": 7, "scale": scale},
            {"id": "b", "op": "linear_relu", "features": 7},
            {"id": "c", "op": "scaled_tanh", "features": 7},
            {"id": "head", "op": "linear_head", "classes": 3},
            edges=[{"src": "a", "dst": "c", "kind": "add"}],
        )
    )


def test_a_user_op_builds_runs_and_is_counted_like_torch(user_ops: None) -> None:
    g = vector_genotype()
    model = build(g)
    x = torch.randn(4, 9)
    y = model(x)
    assert y.shape == (4, 3)
    y.pow(2).mean().backward()
    assert all(p.grad is not None for p in model.parameters())
    assert sum(c.params for c in costs(g)) == sum(p.numel() for p in model.parameters())
    with FlopCounterMode(display=False) as counter:
        model(torch.randn(1, 9))
    assert sum(c.flops for c in costs(g)) == counter.get_total_flops()
    assert model.a.scale == 0.5 and model.c.scale == 1.0  # the default filled in


def test_export_imports_the_factory_and_gives_the_same_outputs(
    user_ops: None, tmp_path: Path
) -> None:
    g = vector_genotype()
    torch.manual_seed(0)
    built = build(g)
    source = export_code(g)
    assert "from user_ops import ScaledTanh\n" in source
    assert "Ops from outside nas-skip, imported from their modules:" in source
    assert "    scaled_tanh: user_ops.ScaledTanh" in source
    assert "self.a = ScaledTanh((9,), features=7, scale=0.5)" in source
    tree = ast.parse(source)
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert modules == {"torch", "user_ops"}
    exported = import_source(source, tmp_path).Net()
    exported.load_state_dict(built.state_dict())
    x = torch.randn(2, 9)
    assert torch.equal(built(x), exported(x))


def test_a_declared_shape_and_count_are_used(user_ops: None) -> None:
    g = Genotype.from_json(
        chain(
            [3, 8, 8],
            {"id": "g", "op": "gated_conv", "channels": 5},
            {"id": "head", "op": "gap_linear", "classes": 2},
        )
    )
    assert g.shapes["g"] == (5, 8, 8)
    assert costs(g)[0].params == 2 * (3 * 5 + 5)  # the declared rule, not a measurement
    assert build(g)(torch.randn(2, 3, 8, 8)).shape == (2, 2)


def test_out_of_range_and_unknown_parameters_name_the_node(user_ops: None) -> None:
    with pytest.raises(GenotypeError, match=r"^node 'a': parameter 'scale' must be a number "):
        vector_genotype(scale=11.0)
    doc = chain([9], {"id": "a", "op": "scaled_tanh"})
    with pytest.raises(GenotypeError, match=r"^node 'a': op 'scaled_tanh' needs parameter"):
        Genotype.from_json(doc)
    doc = chain([3, 8, 8], {"id": "a", "op": "scaled_tanh", "features": 2})
    with pytest.raises(GenotypeError, match=r"^node 'a': op 'scaled_tanh' takes vector input"):
        Genotype.from_json(doc)


def test_a_wrong_shape_rule_is_caught_naming_the_node() -> None:
    register_op("bad_shape", ScaledTanh, params={"features": (int, 1, 99)})  # shape: same
    try:
        g = Genotype.from_json(chain([9], {"id": "t", "op": "bad_shape", "features": 4}))
        with pytest.raises(GenotypeError, match=r"^node 't': op 'bad_shape': its module returns "):
            costs(g)
        register_op(
            "bad_rule", ScaledTanh, shape=lambda s, p: 1 / 0, params={"features": (int, 1, 9)}
        )
        doc = chain([9], {"id": "u", "op": "bad_rule", "features": 4})
        with pytest.raises(
            GenotypeError, match=r"^node 'u': op 'bad_rule': its shape rule failed"
        ):
            Genotype.from_json(doc)
    finally:
        _unregister("bad_shape")
        _unregister("bad_rule")


def test_a_space_file_lists_a_user_op_and_needs_no_dataset(user_ops: None, tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(
        "name: mine\ndomain: vector\nfamily: chain\n"
        "skeleton: {depth: 2, width: [8], ops: [scaled_tanh, linear_relu], hop_window: 1,\n"
        "           kinds: [none, add]}\n"
    )
    with pytest.raises(SpaceError, match=r"names no dataset; give one"):
        load_space(path)
    space = load_space(path, "digits")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    ops = set()
    for _ in range(8):
        g = space.sample(study.ask())
        ops |= {g.node(n).op for n in g.order[1:]}
        build(g)(torch.randn(2, *g.input_shape))
    assert "scaled_tanh" in ops
    path.write_text(path.read_text().replace("scaled_tanh", "no_such_op"))
    with pytest.raises(SpaceError, match=r"skeleton.ops\[0\]: unknown op 'no_such_op' \(ops: "):
        load_space(path, "digits")


def local_factory() -> None:
    class Inner(nn.Module):
        pass

    with pytest.raises(OpRegistrationError, match=r"defined inside a function or is a lambda"):
        register_op("inner", Inner)


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("relu", {}, r"^register_op\('relu'\): 'relu' is a built-in op; choose another name$"),
        ("Gate", {}, r"an op name is lowercase letters"),
        ("x", {"params": {"id": (int, 1, 2)}}, r"parameter 'id': 'id' and 'op' are a node's"),
        ("x", {"params": {"w": (str, 1, 2)}}, r"parameter 'w': type must be int or float"),
        ("x", {"params": {"w": (int, 3, 2)}}, r"parameter 'w': needs low <= high"),
        ("x", {"params": {"w": 5}}, r"parameter 'w': give a Param or a tuple"),
        ("x", {"domain": "audio"}, r"domain 'audio' is not one of image, signal, vector, any"),
    ],
)
def test_registration_errors_are_one_line(name: str, kwargs: dict, message: str) -> None:
    with pytest.raises(OpRegistrationError, match=message) as info:
        register_op(name, ScaledTanh, **kwargs)
    assert "\n" not in str(info.value)
    assert "x" not in OPS


def test_factories_must_be_importable_by_name(user_ops: None) -> None:
    local_factory()
    with pytest.raises(OpRegistrationError, match=r"defined inside a function or is a lambda"):
        register_op("lam", lambda s: nn.Identity())
    with pytest.raises(OpRegistrationError, match=r"already registered with factory user_ops"):
        register_op("scaled_tanh", gated_conv)
    register_op("scaled_tanh", ScaledTanh)  # the same factory again: a module imported twice
    assert OPS["scaled_tanh"].source == ("user_ops", "ScaledTanh")


def test_export_refuses_a_factory_of_a_script_and_a_clashing_name(user_ops: None) -> None:
    main = sys.modules["__main__"]
    ScaledTanh.__module__ = "__main__"
    try:
        main.ScaledTanh = ScaledTanh  # type: ignore[attr-defined]
        register_op(
            "script_op",
            ScaledTanh,
            params={"features": (int, 1, 99)},
            shape=lambda s, p: (p["features"],),
            domain="vector",
        )
        g = Genotype.from_json(chain([9], {"id": "t", "op": "script_op", "features": 4}))
        assert build(g)(torch.randn(2, 9)).shape == (2, 4)  # in this process it imports
        with pytest.raises(
            NasSkipError,
            match=r"^op 'script_op': its factory ScaledTanh is "
            r"defined in a script \(__main__\)",
        ):
            export_code(g)
    finally:
        ScaledTanh.__module__ = "user_ops"
        del main.ScaledTanh  # type: ignore[attr-defined]
        _unregister("script_op")
    g = vector_genotype()
    with pytest.raises(NasSkipError, match=r"^op 'scaled_tanh': its factory's name 'ScaledTanh'"):
        export_code(g, class_name="ScaledTanh")


def test_workers_get_ops_by_importing_the_registering_module(user_ops: None) -> None:
    import user_ops_plugin

    records = registered_ops()
    plugin = [r for r in records if r.name == "plugin_doubler"]
    assert plugin and plugin[0].module == "user_ops_plugin"
    assert plugin[0].factory_module == "user_ops_plugin"
    # a fresh worker: the op is unknown until the module is imported again
    _unregister("plugin_doubler")
    del sys.modules["user_ops_plugin"]
    ensure_registered(records)
    assert OPS["plugin_doubler"].source == ("user_ops_plugin", "Doubler")
    ensure_registered(records)  # already there: nothing to do
    assert user_ops_plugin is not None
    _unregister("plugin_doubler")  # the module is imported: importing again registers nothing
    with pytest.raises(OpRegistrationError, match=r"did not register it; call register_op"):
        ensure_registered(plugin)


def test_the_genotype_package_still_imports_no_torch() -> None:
    code = (
        "import sys, json\n"
        "import nas_skip._user_ops, nas_skip.genotype\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'torch')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_worker_processes_import_the_modules_that_registered_ops(tmp_path: Path) -> None:
    """A search's workers are fresh processes: they import the plugin module themselves."""
    import importlib

    import user_ops_plugin

    from nas_skip.searching import SearchConfig, search

    importlib.reload(user_ops_plugin)  # registers plugin_doubler here (again, if a test undid it)

    space = tmp_path / "plug.yaml"
    space.write_text(
        "name: plug\ndomain: vector\ndataset: digits\nfamily: chain\n"
        "skeleton: {depth: 2, width: 8, ops: [plugin_doubler, linear_relu], hop_window: 1,"
        " kinds: [none, add]}\ntrain: {lr: 0.05, batch_size: 256}\n"
    )
    result = search(SearchConfig(space=str(space), trials=4, epochs=1, workers=2, seed=0,
                                 sampler="random", pruning=False,
                                 storage=f"sqlite:///{tmp_path / 's.db'}",
                                 artifacts=str(tmp_path / "a")), progress=False)  # fmt: skip
    trials = result.study.get_trials()
    assert result.finished >= 4 and result.failed == 0, [t.user_attrs for t in trials]
    assert any("plugin_doubler" in t.user_attrs["genotype"] for t in trials)
    assert len({t.user_attrs["worker"] for t in trials}) == 2
