"""The ``nas-skip`` command line, run as a user runs it: in a subprocess."""

from __future__ import annotations

import importlib.util
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import nas_skip_cli

import nas_skip
from nas_skip import Genotype, build
from nas_skip.genotype import costs


def small_doc() -> dict[str, Any]:
    """One residual block on 16x16 images: about 1.4M FLOPs, so the total reads "1.4M"."""
    return {
        "schema": 1,
        "name": "tiny_resnet",
        "input": {"shape": [3, 16, 16]},
        "nodes": [
            {"id": "c1", "op": "conv3x3_bn_relu", "channels": 16},
            {"id": "c2", "op": "conv3x3_bn", "channels": 16},
            {"id": "r", "op": "relu"},
            {"id": "head", "op": "gap_linear", "classes": 10},
        ],
        "edges": [
            {"src": "input", "dst": "c1"},
            {"src": "c1", "dst": "c2"},
            {"src": "c2", "dst": "r"},
            {"src": "c1", "dst": "r", "kind": "add"},
            {"src": "r", "dst": "head"},
        ],
        "output": "head",
    }


def write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture
def small(tmp_path: Path) -> Path:
    return write(tmp_path / "small.json", small_doc())


def test_version() -> None:
    done = nas_skip_cli("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"nas-skip {nas_skip.__version__}"


def test_show_prints_nodes_totals_edges_and_hash(small: Path) -> None:
    done = nas_skip_cli("show", small)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    g = Genotype.from_json(small.read_text())
    rows = {line.split("│")[1].strip() for line in done.stdout.splitlines() if "│" in line}
    assert {"input", "c1", "c2", "r", "head", "total"} <= rows
    params = sum(c.params for c in costs(g))
    flops = sum(c.flops for c in costs(g))
    assert 1_000_000 < flops < 10_000_000
    lines = dict(line.split(":", 1) for line in done.stdout.splitlines() if ":" in line)
    assert lines["params"].strip() == f"{params:,} ({params / 1000:.1f}K)"
    assert lines["FLOPs"].strip() == f"{flops:,} ({flops / 1e6:.1f}M) per sample"
    assert lines["edges"].strip() == "5 (4 seq, 1 add)"
    assert lines["hash"].strip() == g.canonical_hash()
    total = next(line for line in done.stdout.splitlines() if "total" in line)
    assert f"{params:,}" in total and f"{flops / 1e6:.1f}M" in total


@pytest.mark.parametrize("suffix", [".svg", ".png"])
def test_show_draws(tmp_path: Path, small: Path, suffix: str) -> None:
    picture = tmp_path / "pictures" / f"small{suffix}"
    done = nas_skip_cli("show", small, "--draw", picture)
    assert done.returncode == 0, done.stderr
    assert f"drawing: {picture}" in done.stdout
    data = picture.read_bytes()
    if suffix == ".png":
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        return
    text = "".join(ET.fromstring(data).itertext())
    for node_id in ("input", "c1", "c2", "r", "head"):
        assert node_id in text
    again = tmp_path / "again.svg"
    assert nas_skip_cli("show", small, "--draw", again).returncode == 0
    assert again.read_bytes() == data  # the same picture, byte for byte, in a new process


@pytest.mark.parametrize("class_name", ["Net", "TinyResNet"])
def test_export_writes_a_loadable_model(tmp_path: Path, small: Path, class_name: str) -> None:
    out = tmp_path / "new" / "export"
    done = nas_skip_cli("export", "--genotype", small, "--out", out, "--class-name", class_name)
    assert done.returncode == 0, done.stderr
    assert f"wrote {out / 'model.py'}" in done.stdout
    assert f"wrote {out / 'genotype.json'}" in done.stdout
    assert f"from model import {class_name}" in done.stdout
    assert 'torch.load("weights.pt", weights_only=True)' in done.stdout
    g = Genotype.from_json(small.read_text())
    assert Genotype.from_json((out / "genotype.json").read_text()) == g
    spec = importlib.util.spec_from_file_location(f"exported_{class_name}", out / "model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = getattr(module, class_name)()
    assert list(net.state_dict()) == list(build(g).state_dict())
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 10)


def test_export_needs_a_source(tmp_path: Path) -> None:
    done = nas_skip_cli("export", "--out", tmp_path)
    assert done.returncode == 2
    assert "--genotype" in done.stderr
    assert "Traceback" not in done.stderr


def test_dead_node_warns_in_one_line(tmp_path: Path) -> None:
    doc = small_doc()
    doc["nodes"].append({"id": "dead", "op": "relu"})
    doc["edges"].append({"src": "c1", "dst": "dead"})
    done = nas_skip_cli("show", write(tmp_path / "dead.json", doc))
    assert done.returncode == 0
    assert done.stderr.splitlines() == [
        "warning: pruned dead nodes (not on a path from input to output): dead"
    ]
    assert not re.search(r"│ dead\b", done.stdout)


def _edit(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], list[object]]:
    def args(tmp: Path) -> list[object]:
        doc = small_doc()
        change(doc)
        return ["show", write(tmp / "bad.json", doc)]

    return args


def _text(content: bytes) -> Callable[[Path], list[object]]:
    def args(tmp: Path) -> list[object]:
        (tmp / "bad.json").write_bytes(content)
        return ["show", tmp / "bad.json"]

    return args


def _unwritable(tmp: Path) -> list[object]:
    (tmp / "a_file").write_text("")
    return ["export", "--genotype", write(tmp / "g.json", small_doc()), "--out", tmp / "a_file/x"]


ERRORS: dict[str, tuple[Callable[[Path], list[object]], str]] = {
    "missing file": (lambda tmp: ["show", tmp / "missing.json"], "missing.json: no such file"),
    "folder": (lambda tmp: ["show", tmp], "cannot read"),
    "not utf-8": (_text(b"\xff\xfe\x00{"), "bad.json: not UTF-8"),
    "invalid json": (_text(b'{"schema": 1,'), "bad.json: not valid JSON"),
    "unknown op": (
        _edit(lambda d: d["nodes"][0].update(op="conv9x9")),
        "bad.json: node 'c1': unknown op 'conv9x9' (ops: ",
    ),
    "cycle": (
        _edit(lambda d: d["edges"].append({"src": "r", "dst": "c1"})),
        "bad.json: edges form a cycle: ",
    ),
    "draw suffix": (
        lambda tmp: ["show", write(tmp / "g.json", small_doc()), "--draw", tmp / "g.pdf"],
        "g.pdf: cannot draw to a file with '.pdf' (suffixes: .png, .svg)",
    ),
    "class name": (
        lambda tmp: [
            "export",
            "--genotype",
            write(tmp / "g.json", small_doc()),
            "--out",
            tmp,
            "--class-name",
            "1x",
        ],  # fmt: skip
        "'1x' is not a usable Python class name",
    ),
    "class name of a block": (
        lambda tmp: [
            "export",
            "--genotype",
            write(tmp / "g.json", small_doc()),
            "--out",
            tmp,
            "--class-name",
            "Block1",
        ],  # fmt: skip
        "class_name (--class-name): 'Block1' is not a usable Python class name",
    ),
    "unwritable": (_unwritable, "a_file"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_errors_are_one_line(tmp_path: Path, case: str) -> None:
    make_args, expected = ERRORS[case]
    done = nas_skip_cli(*make_args(tmp_path))
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("error: ")
    assert expected in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    doc = small_doc()
    doc["edges"].append({"src": "r", "dst": "c1"})
    done = nas_skip_cli("--debug", "show", write(tmp_path / "cycle.json", doc))
    assert done.returncode not in (0, 2)
    assert "Traceback (most recent call last)" in done.stderr
    assert "GenotypeError: " in done.stderr and "cycle" in done.stderr
