"""Search your own tabular data: a CSV made from scikit-learn's wine dataset, searched
with the built-in objective (train each sampled network, score it on validation).

    .venv/bin/python examples/own_data.py            # about a minute on 2 cores

The same from the command line:

    nas-skip search --space deep_mlp --dataset runs/own_data/wine.csv --target cultivar

The table's last column (here named with ``target=``) holds the labels; the features are
standardised with the training split's statistics, and the validation and test splits
are carved from the table with a fixed seed (the first line printed says so).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from sklearn.datasets import load_wine

import nas_skip
from nas_skip.data import dataset_info, dataset_name, load_dataset


def write_csv(folder: Path) -> Path:
    """wine.csv: 178 wines, 13 chemical measurements, the cultivar (a word) last."""
    wine = load_wine(as_frame=True)
    frame = wine.frame.rename(columns={"target": "cultivar"})
    frame["cultivar"] = frame["cultivar"].map(dict(enumerate(wine.target_names)))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "wine.csv"
    frame.to_csv(path, index=False)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/own_data"))
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    csv = write_csv(args.out)
    name = dataset_name(str(csv), target="cultivar")  # the file, with its label column
    print(dataset_info(name).summary())
    storage = f"sqlite:///{args.out / 'study.db'}"
    study = nas_skip.search("deep_mlp", name, trials=args.trials, epochs=args.epochs,
                            workers=args.workers, seed=0, storage=storage,
                            artifacts=str(args.out / "artifacts"), progress=False)  # fmt: skip
    best = nas_skip.best(study)
    model = nas_skip.load_model(study, best, artifacts=args.out / "artifacts")
    data = load_dataset(name, "vector")
    with torch.no_grad():
        test = (model(data.x_test).argmax(1) == data.y_test).float().mean().item()
    print(f"best trial {best.number}: validation accuracy {best.values[0]:.3f}, "
          f"test accuracy {test:.3f}, {best.user_attrs['params']:,} parameters")  # fmt: skip
    print(f"next: nas-skip dashboard --storage {storage} "
          f"--artifacts {args.out / 'artifacts'}")  # fmt: skip


if __name__ == "__main__":
    main()
