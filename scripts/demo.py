"""``make demo``: a real small search, then its best architecture as standalone code.

1. ``nas-skip search`` of ``deep_mlp`` on ``mnist1d``: 20 trials, 2 local workers, the
   embedded SQLite storage (about 2 minutes on 2 cores; rerunning continues the study,
   which then has nothing left to do);
2. ``nas-skip export`` of the best trial: ``model.py`` with its trained ``weights.pt``;
3. the exported file is imported as a user would, its weights loaded, and its validation
   accuracy checked against the one the search stored (0.708 and 0.727 in two runs from
   a clean checkout; the published MLP figure is 0.68);
4. where the study, the exported model and the dashboard command are.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import torch

from nas_skip.data import load_dataset

ROOT = Path(__file__).resolve().parents[1]
STORAGE = "sqlite:///runs/nas_skip.db"
STUDY = "demo-deep_mlp-mnist1d"
OUT = Path("runs/demo/best")


def nas_skip(*args: str) -> None:
    """Run one ``nas-skip`` command with this interpreter; stop the demo if it fails."""
    print(f"$ nas-skip {' '.join(args)}", flush=True)
    done = subprocess.run([sys.executable, "-m", "nas_skip.cli", *args], cwd=ROOT)
    if done.returncode:
        sys.exit(done.returncode)


def main() -> None:
    nas_skip("search", "--space", "deep_mlp", "--dataset", "mnist1d", "--trials", "20",
             "--epochs", "8", "--workers", "2", "--seed", "0", "--study", STUDY)  # fmt: skip
    nas_skip("export", "--study", STUDY, "--out", str(OUT))

    spec = importlib.util.spec_from_file_location("demo_model", ROOT / OUT / "model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.Net().eval()
    net.load_state_dict(torch.load(ROOT / OUT / "weights.pt", weights_only=True))
    metrics = json.loads((ROOT / OUT / "metrics.json").read_text())
    data = load_dataset("mnist1d")
    with torch.no_grad():
        accuracy = (net(data.x_val).argmax(1) == data.y_val).float().mean().item()
    stored = metrics["values"]["accuracy"]
    if abs(accuracy - stored) > 1e-6:
        sys.exit(f"demo failed: the exported model scores {accuracy:.4f}, the search {stored:.4f}")
    print(f"\nthe exported model (trial {metrics['trial']}, {metrics['params']:,} parameters) "
          f"scores {accuracy:.4f} on mnist1d validation, as the search measured")  # fmt: skip
    print(f"study:          {STUDY} in {STORAGE}")
    print(f"exported model: {OUT / 'model.py'} with {OUT / 'weights.pt'}")
    print(f"dashboard:      .venv/bin/nas-skip dashboard --study {STUDY}")


if __name__ == "__main__":
    main()
