"""Benchmark the memory of a search: peak RSS per process, and what importing costs (issue 16).

Prints one JSON line, every figure in MiB (peak = the kernel's ``VmHWM``, the process's
resident high-water mark, read when it exits):

- ``import_nas_skip`` / ``import_nas_skip_cli`` / ``import_torch``: the RSS of a fresh
  interpreter right after ``import nas_skip``, ``import nas_skip.cli`` or ``import torch``
  (``torch`` alone); ``torch_optimizer``: after ``import torch`` and making one AdamW,
  whose first ``add_param_group`` imports ``torch._dynamo`` (the floor of a training
  worker); ``python_bare`` with no import;
- ``deep_mlp_1_worker`` / ``resnet_macro_1_worker``: a one-worker search (``nas-skip
  search --space S --trials N --epochs 1``, local backend) runs its trials in the command's
  own process: its peak; for deep_mlp, side by side, ``plain_torch``: the peak of a bare
  PyTorch process (torch and numpy only) that trains the search's largest network
  (``largest_params``) for an epoch as nas-skip does (its exported code, AdamW, the trial's
  batch size and rates, gradient clipping, a validation pass): the worker's peak less it is
  what nas-skip adds;
- ``deep_mlp_2_workers``: ``--workers 2`` (one more trial): the peak of the parent (it only
  waits and shows progress) and of each worker process.

Every search runs ``--seed 0 --keep 1``: from the second kept trial on, a worker removes
weights and rewrites that trial's note. A worker's peak depends on the networks it trains
(AdamW holds 16 bytes a parameter), so it varies with ``--trials`` and the seed.

Each search case also lists the heavy modules its processes had loaded when they exited
(``heavy``: torch, matplotlib, pandas, plotly, optuna_dashboard, ray, ...). The peak is
written by an ``atexit`` hook that a ``sitecustomize`` module in a temporary folder on
``PYTHONPATH`` installs in every Python process the search starts, workers included.

Goals: a deep_mlp worker under 400 MiB; the parent of ``--workers 2`` imports none of the
heavy modules. (The plain PyTorch process alone needs 337 MiB for a 0.67M-parameter
deep_mlp network and 459 MiB for a 6.65M one: torch, its optimizer machinery, the network.)

Usage: ``python scripts/bench_memory.py [--trials N] [--keep K] [--only CASE...]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

#: modules a search process should load only when it needs them
HEAVY = ["torch", "torchvision", "matplotlib", "pandas", "pyarrow", "plotly", "optuna_dashboard",
         "ray", "scipy", "sklearn", "numpy", "optuna", "sqlalchemy", "networkx",
         "PIL"]  # fmt: skip

#: installed as sitecustomize in every Python process of a search case
_HOOK = textwrap.dedent(
    """
    import atexit, json, os, sys

    def _nas_skip_bench_memory():
        fields = {}
        with open("/proc/self/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmHWM", "VmRSS"):
                    fields[key] = round(int(value.split()[0]) / 1024, 1)
        doc = {"pid": os.getpid(), "ppid": os.getppid(), "argv": sys.argv,
               "worker": "multiprocessing" in sys.modules
               and sys.modules["multiprocessing"].parent_process() is not None,
               "peak": fields.get("VmHWM"), "rss": fields.get("VmRSS"),
               "heavy": sorted(m for m in HEAVY if m in sys.modules)}
        with open(os.path.join(OUT, f"{os.getpid()}.json"), "w") as f:
            json.dump(doc, f)

    OUT = os.environ.get("NAS_SKIP_BENCH_MEMORY_OUT")
    HEAVY = json.loads(os.environ.get("NAS_SKIP_BENCH_MEMORY_HEAVY", "[]"))
    if OUT:
        atexit.register(_nas_skip_bench_memory)
    """
)


def _mib(kib: int) -> float:
    return round(kib / 1024, 1)


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    env.update(extra)
    return env


def after_import(statement: str) -> float:
    """The RSS (MiB) of a fresh interpreter right after ``statement``."""
    code = (
        f"{statement}\n"
        "for line in open('/proc/self/status'):\n"
        "    if line.startswith('VmRSS:'):\n"
        "        print(int(line.split()[1]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT, env=_env()).stdout  # fmt: skip
    return _mib(int(out.split()[-1]))


def _command() -> list[str]:
    # the console script, as a user runs it: spawned workers import its module again
    script = Path(sys.executable).parent / "nas-skip"
    return [str(script)] if script.exists() else [sys.executable, "-m", "nas_skip.cli"]


def search_case(space: str, trials: int, workers: int, keep: int) -> dict[str, Any]:
    """Peak RSS (MiB) of each process of ``nas-skip search`` (``parent`` is the command's
    own process, which runs the trials itself when ``workers`` is 1)."""
    with tempfile.TemporaryDirectory(prefix="nas-skip-bench-memory-") as tmp:
        hook, out = Path(tmp, "hook"), Path(tmp, "out")
        hook.mkdir()
        out.mkdir()
        (hook / "sitecustomize.py").write_text(_HOOK)
        path = os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH")) if p)
        env = _env(PYTHONPATH=path, NAS_SKIP_BENCH_MEMORY_OUT=str(out),
                   NAS_SKIP_BENCH_MEMORY_HEAVY=json.dumps(HEAVY))  # fmt: skip
        args = [*_command(), "search", "--space", space, "--trials", str(trials), "--epochs",
                "1", "--workers", str(workers), "--storage", f"sqlite:///{tmp}/study.db",
                "--artifacts", f"{tmp}/artifacts", "--keep", str(keep), "--seed", "0"]  # fmt: skip
        proc = subprocess.Popen(args, cwd=tmp, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip
        _, err = proc.communicate()
        docs = [json.loads(p.read_text()) for p in out.glob("*.json")]
        plain = plain_case(f"sqlite:///{tmp}/study.db", Path(tmp)) if proc.returncode == 0 else {}
    case: dict[str, Any] = {"exit": proc.returncode, **plain}
    if proc.returncode != 0:
        case["stderr"] = err.strip().splitlines()[-3:]
    parent = next((d for d in docs if d["pid"] == proc.pid), None)
    if parent is not None:
        case["parent"] = parent["peak"]
        case["parent_heavy"] = parent["heavy"]
    # a spawned worker's sys.argv is its parent's: multiprocessing tells it apart
    workers_docs = [d for d in docs if d["ppid"] == proc.pid and d["worker"]]
    if workers_docs:
        case["workers"] = sorted(d["peak"] for d in workers_docs)
        case["worker_heavy"] = sorted({m for d in workers_docs for m in d["heavy"]})
    others = [d for d in docs if d is not parent and d not in workers_docs]
    if others:
        case["others"] = [{"peak": d["peak"], "argv": d["argv"][:3]} for d in others]
    return case


#: a bare PyTorch process: the exported network, AdamW, one epoch as nas-skip trains it
_PLAIN = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import torch
    import torch.nn.functional as F

    folder, config = sys.argv[1], json.loads(sys.argv[2])
    sys.path.insert(0, folder)
    from model import Net

    torch.set_num_threads(1)
    data = np.load(f"{folder}/data.npz")
    x, y, x_val = (torch.from_numpy(data[k]) for k in ("x", "y", "x_val"))
    torch.manual_seed(0)
    net = Net()
    opt = torch.optim.AdamW(net.parameters(), lr=config["lr"],
                            weight_decay=config["weight_decay"])
    net.train()
    size = config["batch_size"]
    for i in torch.randperm(len(x)).split(size):
        loss = F.cross_entropy(net(x[i]), y[i], label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(net.parameters()), 1.0)
        opt.step()
    net.eval()
    with torch.no_grad():
        for batch in x_val.split(64):
            net(batch)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            print(int(line.split()[1]))
    """
)


def plain_case(storage: str, tmp: Path) -> dict[str, Any]:
    """The search's largest network trained for an epoch by a bare PyTorch process (its
    exported code, AdamW, the trial's batch size and rates): ``largest_params`` and
    ``plain_torch``, that process's peak (MiB). A worker's peak less this is what nas-skip
    adds to training the same network."""
    import numpy as np
    import optuna

    from nas_skip.codegen import generate_source
    from nas_skip.data import load_dataset
    from nas_skip.genotype import Genotype

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials = optuna.load_study(study_name=None, storage=storage).trials
    largest = max((t for t in trials if "params" in t.user_attrs),
                  key=lambda t: t.user_attrs["params"], default=None)  # fmt: skip
    if largest is None:
        return {}
    genotype = Genotype.from_json(largest.user_attrs["genotype"])
    if genotype.name != "deep_mlp":
        return {}
    (tmp / "model.py").write_text(generate_source(genotype, "Net", for_export=True))
    data = load_dataset("mnist1d")
    np.savez(tmp / "data.npz", x=data.x_train.numpy(), y=data.y_train.numpy(),
             x_val=data.x_val.numpy())  # fmt: skip
    config = {k: largest.params[f"train:{k}"] for k in ("lr", "weight_decay", "batch_size")}
    args = [sys.executable, "-c", _PLAIN, str(tmp), json.dumps(config)]
    out = subprocess.run(args, capture_output=True, text=True, check=True, env=_env()).stdout
    peak = _mib(int(out.split()[-1]))
    return {"largest_params": largest.user_attrs["params"], "plain_torch": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4, help="trials per search [4]")
    parser.add_argument(
        "--keep",
        type=int,
        default=1,
        help="--keep K of each search [1: later trials remove weights]",
    )
    parser.add_argument("--only", nargs="*", help="case names to run")
    args = parser.parse_args()
    cases: dict[str, Any] = {
        "python_bare": lambda: after_import("pass"),
        "import_nas_skip": lambda: after_import("import nas_skip"),
        "import_nas_skip_cli": lambda: after_import("import nas_skip.cli"),
        "import_torch": lambda: after_import("import torch"),
        "torch_optimizer": lambda: after_import(
            "import torch; torch.optim.AdamW([torch.zeros(1, requires_grad=True)])"
        ),
        "deep_mlp_1_worker": lambda: search_case("deep_mlp", args.trials, 1, args.keep),
        "deep_mlp_2_workers": lambda: search_case("deep_mlp", args.trials + 1, 2, args.keep),
        "resnet_macro_1_worker": lambda: search_case("resnet_macro", args.trials, 1, args.keep),
    }
    result = {name: run() for name, run in cases.items() if not args.only or name in args.only}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
