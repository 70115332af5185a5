"""``make demo``: show, draw and export the shipped ResNet-20 genotype, then run the export.

Runs the ``nas-skip`` command line as a user would (``show --draw``, ``export``), imports
the exported ``model.py``, loads the weights of the in-process compiled module into it and
checks that both give the same output on a random batch.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import torch

from nas_skip import Genotype, build

ROOT = Path(__file__).resolve().parents[1]
GENOTYPE = Path("examples/genotypes/resnet20.json")
OUT = Path("runs/demo")


def nas_skip(*args: str) -> None:
    """Run one ``nas-skip`` command with this interpreter; stop the demo if it fails."""
    print(f"$ nas-skip {' '.join(args)}", flush=True)
    done = subprocess.run([sys.executable, "-m", "nas_skip.cli", *args], cwd=ROOT)
    if done.returncode:
        sys.exit(done.returncode)


def main() -> None:
    drawing, export_dir = OUT / "resnet20.svg", OUT / "export"
    nas_skip("show", str(GENOTYPE), "--draw", str(drawing))
    nas_skip("export", "--genotype", str(GENOTYPE), "--out", str(export_dir))

    spec = importlib.util.spec_from_file_location("demo_model", ROOT / export_dir / "model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.Net().eval()
    g = Genotype.from_json((ROOT / GENOTYPE).read_text())
    compiled = build(g).eval()
    net.load_state_dict(compiled.state_dict())  # trained weights would load the same way
    x = torch.randn(4, *g.input_shape)
    with torch.no_grad():
        y = net(x)
        same = torch.equal(y, compiled(x))
    expected = (4, *g.shapes[g.output])
    if tuple(y.shape) != expected or not same:
        sys.exit(f"demo failed: output {tuple(y.shape)} (expected {expected}), same={same}")
    print(f"\nforward pass: {tuple(x.shape)} -> {tuple(y.shape)}, equal to the compiled module's")
    print(f"drawing:       {drawing}")
    print(f"exported code: {export_dir / 'model.py'}")


if __name__ == "__main__":
    main()
