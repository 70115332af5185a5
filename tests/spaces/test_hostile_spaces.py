"""Hostile space files: large numbers in a small file load and describe fast, or are refused.

Loading, describing (``parameters``, ``size_log10``) and sampling a space do work that
grows with the network the space builds, never with the range of a number in its file:
each test holds a file that hung, ran for minutes or crashed before.
"""

from __future__ import annotations

import math
from itertools import product
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from helpers import finishes, nas_skip_cli

from nas_skip.spaces import Space, SpaceError, list_spaces, load_space
from nas_skip.spaces._families import BUILDERS, MAX_CHOICES, STRUCTURAL, Picker
from nas_skip.spaces._size import values
from nas_skip.spaces._space import _Recorder, spaces_dir

optuna.logging.set_verbosity(optuna.logging.WARNING)


def space_file(tmp_path: Path, base: str, name: str | None = None, **skeleton: Any) -> Path:
    """A copy of shipped space ``base`` with some skeleton keys replaced."""
    doc = yaml.safe_load((spaces_dir() / f"{base}.yaml").read_text())
    doc["name"] = name or f"{base}_hostile"
    doc["skeleton"].update(skeleton)
    path = tmp_path / f"{doc['name']}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def size_by_enumeration(space: Space) -> float:
    """log10 of the architectures, one build per combination of the structural choices (how
    ``size_log10`` counted before: 262,144 builds for three stages of depth 1..64)."""
    structural = STRUCTURAL[space.spec.family](space)
    names = list(structural)
    terms = []
    for choice in product(*(list(values(structural[n])) for n in names)):
        rec = _Recorder(dict(zip(names, choice, strict=True)))
        BUILDERS[space.spec.family](Picker(rec), space)
        params = rec.params.values()
        terms.append(sum(math.log10(p.size) for p in params if p.name not in structural))
    top = max(terms)
    return top + math.log10(sum(10 ** (t - top) for t in terms))


VARIANTS: dict[str, list[dict[str, Any]]] = {
    "deep_mlp": [
        {"depth": {"low": 1, "high": 6}, "hop_window": 1},
        {"depth": [2, 5, 9], "hop_window": 4, "kinds": ["add"]},
        {"depth": {"low": 1, "high": 9, "step": 4}, "hop_window": 20},
    ],
    "conv1d": [
        {"depth": {"low": 1, "high": 4}, "hop_window": 2, "stages": 2},
        {"depth": [1, 3], "shortcut": ["projection"], "width": 8},
    ],
    "resnet_macro": [{"depth": {"low": 2, "high": 3}, "stages": 4}],
    "densenet": [{"layers": {"low": 1, "high": 4}, "blocks": 2, "compression": 0.5}],
    "unet": [{"depth": [1, 3], "short_kinds": ["add"]}],
    "nb101_cell": [{"nodes": 5, "max_edges": 4}],
    "nb201": [{"ops": ["none", "skip_connect"], "stages": 2}],
    "transformer": [
        {"depth": {"low": 1, "high": 6}, "hop_window": 1},
        {"depth": [2, 5, 9], "hop_window": 4, "skip_kinds": ["add"], "dwa": ["scaled"]},
        {"depth": {"low": 1, "high": 9, "step": 4}, "hop_window": 20, "norm": ["rmsnorm"]},
    ],
}


@pytest.mark.parametrize("name", list_spaces())
def test_the_closed_form_size_equals_counting_every_structure(tmp_path: Path, name: str) -> None:
    spaces = [load_space(name)]
    spaces += [load_space(space_file(tmp_path, name, f"v{i}", **v)) for i, v in
               enumerate(VARIANTS[name])]  # fmt: skip
    for space in spaces:
        assert math.isclose(space.size_log10(), size_by_enumeration(space), abs_tol=1e-9)


@pytest.mark.parametrize(
    "base,key",
    [
        ("deep_mlp", "depth"),
        ("conv1d", "depth"),
        ("resnet_macro", "depth"),
        ("densenet", "layers"),
        ("transformer", "depth"),
    ],  # fmt: skip
)
def test_a_depth_of_1_to_64_loads_and_describes_at_once(
    tmp_path: Path, base: str, key: str
) -> None:
    wider = {"hop_window": 8} if base == "transformer" else {}
    path = space_file(tmp_path, base, **{key: {"low": 1, "high": 64}}, **wider)

    def describe() -> tuple[int, float]:
        space = load_space(path)
        return len(space.parameters()), space.size_log10()

    result = finishes(describe, seconds=10)
    assert isinstance(result, tuple)
    n, size = result
    assert 64 < n <= MAX_CHOICES and math.isfinite(size) and size > 64


def test_a_deep_space_samples_in_one_validation(tmp_path: Path) -> None:
    # three stages of 64 layers, each taking skips from every earlier layer: 6,000 choices
    # and hundreds of repaired alignments (one validation each took two minutes)
    space = load_space(space_file(tmp_path, "conv1d", depth=64))
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    g = finishes(lambda: space.sample(trial), seconds=60)
    assert not isinstance(g, SpaceError)
    assert len(g.nodes) > 3 * 64 and any(e.align == "projection" for e in g.edges)


@pytest.mark.parametrize(
    "base,skeleton",
    [
        ("deep_mlp", {"depth": {"low": 1, "high": 10**6}}),
        ("deep_mlp", {"depth": 10**12, "hop_window": 10**12}),
        ("conv1d", {"depth": {"low": 1, "high": 10**6}}),
        ("conv1d", {"depth": 140}),  # 140 layers a stage, each with a skip from every other
        ("densenet", {"layers": {"low": 1, "high": 10**6}}),
        ("densenet", {"layers": 90}),
        ("unet", {"depth": {"low": 1, "high": 10**12}}),
    ],
)
def test_an_absurd_depth_is_refused_at_load(
    tmp_path: Path, base: str, skeleton: dict[str, Any]
) -> None:
    path = space_file(tmp_path, base, **skeleton)
    error = finishes(lambda: load_space(path), seconds=10)
    assert isinstance(error, SpaceError)
    assert str(error).startswith(str(path)) or "do not halve evenly" in str(error)


@pytest.mark.parametrize(
    "base,key,most",
    [
        ("resnet_macro", "stages", 16),
        ("densenet", "blocks", 16),
        ("nb201", "stages", 16),
        ("nb201", "cells_per_stage", 64),
        ("nb101_cell", "cells_per_stage", 64),
    ],  # fmt: skip
)
def test_a_repeat_count_is_bounded_before_anything_is_built(
    tmp_path: Path, base: str, key: str, most: int
) -> None:
    path = space_file(tmp_path, base, **{key: 10**9})
    error = finishes(lambda: load_space(path), seconds=5)
    assert isinstance(error, SpaceError)
    assert f"skeleton.{key}: must be at most {most}, got 1000000000" in str(error)


@pytest.mark.parametrize("base", ["nb201", "nb101_cell"])
def test_the_most_repeated_cells_still_sample_at_once(tmp_path: Path, base: str) -> None:
    path = space_file(tmp_path, base, stages=16, cells_per_stage=64, width=1)
    space = load_space(path)
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    doc = finishes(lambda: BUILDERS[space.spec.family](Picker(trial), space), seconds=10)
    assert isinstance(doc, dict) and len(doc["nodes"]) < 16 * 64 * 9 + 100


def test_a_huge_range_is_counted_not_enumerated(tmp_path: Path) -> None:
    path = space_file(tmp_path, "deep_mlp", width={"low": 1, "high": 2**53})
    space = finishes(lambda: load_space(path), seconds=10)
    assert isinstance(space, Space)
    width = next(p for p in space.parameters() if p.name == "width")
    assert width.size == 2**53
    assert 15.9 < space.size_log10() - load_space("deep_mlp").size_log10() + math.log10(3) < 16


@pytest.mark.parametrize(
    "text,message",
    [
        ("width: {low: 1, high: 1" + "0" * 400 + "}", "range [1, 1"),  # overflows samplers
        ("width: 1" + "0" * 5000, "too many digits"),
        ("width: " + "[" * 50_000 + "]" * 50_000, "nested too deeply"),
    ],
    ids=["huge", "digits", "nesting"],
)
def test_a_number_python_cannot_use_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = space_file(tmp_path, "deep_mlp")
    path.write_text(path.read_text().replace("width:", "old_width:").replace(
        "skeleton:\n", f"skeleton:\n  {text}\n"))  # fmt: skip
    error = finishes(lambda: load_space(path), seconds=10)
    assert isinstance(error, SpaceError) and message in str(error)


def test_the_cli_lists_and_shows_a_deep_space(tmp_path: Path, monkeypatch: Any) -> None:
    folder = tmp_path / "spaces"
    folder.mkdir()
    space_file(folder, "deep_mlp", "mlp64", depth={"low": 1, "high": 64})
    deep = space_file(folder, "conv1d", "conv64", depth={"low": 1, "high": 64})
    monkeypatch.setenv("NAS_SKIP_SPACES", str(folder))
    done = nas_skip_cli("spaces")
    assert done.returncode == 0, done.stderr
    assert "mlp64" in done.stdout and "conv64" in done.stdout
    done = nas_skip_cli("spaces", deep)
    assert done.returncode == 0, done.stderr
    assert "more" in done.stdout and "a random sample (seed 0)" in done.stdout


@pytest.mark.parametrize("depth", [{"low": 2, "high": 10**9}, [2, 129]])
def test_a_transformer_deeper_than_its_bound_is_refused_at_once(
    tmp_path: Path, depth: Any
) -> None:
    # its blocks ask no choice (hop_window 0), so the choice bound alone would not stop a
    # billion-block build; DenseFormer's averages would join every pair of them
    path = space_file(tmp_path, "transformer", depth=depth, hop_window=0, dwa=["scaled"])
    error = finishes(lambda: load_space(path), seconds=5)
    assert isinstance(error, SpaceError)
    assert "skeleton.depth: must be at most 128 blocks" in str(error)
