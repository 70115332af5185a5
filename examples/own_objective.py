"""Your own objective: train each sampled network with your recipe and loss, on Ray.

    .venv/bin/python examples/own_objective.py       # about a minute on 2 cores

nas-skip samples the networks (``deep_mlp``'s skip topologies and hyperparameters),
dedupes them, draws them, keeps the best ones' weights and records everything in the
study; the function below only trains and scores a model it is handed. It runs in Ray's
workers: Ray ships it there by value, as it ships trainables, so it may live in a script
or a notebook.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812

import nas_skip

EPOCHS = 12


def focal_loss(logits: torch.Tensor, y: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Cross-entropy that down-weights the examples the network already gets right."""
    logp = F.log_softmax(logits, dim=1).gather(1, y[:, None]).squeeze(1)
    return (-((1 - logp.exp()) ** gamma) * logp).mean()


def objective(model: torch.nn.Module, data: Any, hparams: dict[str, Any], report: Any) -> float:
    """AdamW with the trial's learning rate and weight decay, focal loss; returns the
    validation accuracy, reported each epoch so that Ray's ASHA can stop poor trials."""
    opt = torch.optim.AdamW(model.parameters(), lr=hparams["lr"],
                            weight_decay=hparams["weight_decay"])  # fmt: skip
    batch = int(hparams["batch_size"])
    generator = torch.Generator().manual_seed(0)
    accuracy = 0.0
    for epoch in range(1, EPOCHS + 1):
        model.train()
        order = torch.randperm(len(data.x_train), generator=generator)
        for i in range(0, len(order), batch):
            idx = order[i : i + batch]
            loss = focal_loss(model(data.x_train[idx]), data.y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            accuracy = (model(data.x_val).argmax(1) == data.y_val).float().mean().item()
        report(epoch, accuracy)
    return accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/own_objective"))
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--backend", default="ray", choices=["ray", "local"])
    args = parser.parse_args()

    storage = f"sqlite:///{(args.out / 'study.db').resolve()}"
    args.out.mkdir(parents=True, exist_ok=True)
    study = nas_skip.search("deep_mlp", "digits", trials=args.trials, epochs=EPOCHS,
                            backend=args.backend, workers=2, objective=objective, seed=0,
                            storage=storage, artifacts=str(args.out / "artifacts"),
                            progress=False)  # fmt: skip
    best = nas_skip.best(study)
    model = nas_skip.load_model(study, best, artifacts=args.out / "artifacts")
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    print(f"{len(done)} complete, {len(study.trials) - len(done)} pruned or failed; "
          f"best trial {best.number}: validation accuracy {best.values[0]:.3f}, "
          f"{sum(p.numel() for p in model.parameters()):,} parameters")  # fmt: skip
    print(f"next: nas-skip dashboard --storage {storage} --artifacts {args.out / 'artifacts'}")


if __name__ == "__main__":
    main()
