"""``nas-skip --import MODULE``: a user's ops on the command line."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import chain, nas_skip_cli

OPS = """
from torch import nn

import nas_skip


class Doubler(nn.Module):
    def __init__(self, in_shape):
        super().__init__()

    def forward(self, x):
        return 2 * x


nas_skip.register_op("doubler", Doubler, doc="twice the input")
"""


def test_an_imported_module_s_ops_validate_build_and_export(tmp_path: Path) -> None:
    (tmp_path / "my_ops.py").write_text(OPS)
    head = {"id": "h", "op": "linear_head", "classes": 3}
    doc = chain([8], {"id": "a", "op": "linear_relu", "features": 8}, {"id": "d", "op": "doubler"},
                head)  # fmt: skip
    (tmp_path / "g.json").write_text(json.dumps(doc))
    unknown = nas_skip_cli("show", "g.json", cwd=tmp_path)
    assert unknown.returncode == 2 and "unknown op 'doubler'" in unknown.stderr
    done = nas_skip_cli("--import", "my_ops", "export", "--genotype", "g.json", "--out", "out",
                        cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    source = (tmp_path / "out" / "model.py").read_text()
    assert "from my_ops import Doubler" in source and "doubler: my_ops.Doubler" in source


def test_a_module_that_does_not_import_is_one_error_line(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("raise RuntimeError('no GPU here')\n")
    for module, message in (("nosuch", "--import nosuch: ModuleNotFoundError: No module "),
                            ("broken", "--import broken: RuntimeError: no GPU here"),
                            ("../x", "--import: '../x' is not a module name")):  # fmt: skip
        done = nas_skip_cli("--import", module, "spaces", cwd=tmp_path)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.startswith(f"error: {message}"), done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
