"""``nas-skip retrain``: confirm a search's best trial with a longer budget and several seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from nas_skip.cli._app import app
from nas_skip.cli._common import StorageOption, StudyOption, _console


@app.command()
def retrain(
    study: StudyOption,
    storage: StorageOption = None,
    trial: Annotated[
        int | None, typer.Option("--trial", metavar="N", help="Retrain this trial, not the best.")
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            "--epochs", metavar="N", help="Epochs per seed [the search's budget, at least 40]."
        ),
    ] = None,
    seeds: Annotated[
        int, typer.Option("--seeds", metavar="N", help="Runs, with seeds 0 .. N-1.")
    ] = 3,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="DIR",
            help="Where the best seed's model goes [runs/retrain/STUDY/trial-N].",
        ),
    ] = None,
    threads: Annotated[
        int, typer.Option("--threads", metavar="N", help="Torch threads per run.")
    ] = 1,
    data_dir: Annotated[
        str | None,
        typer.Option("--data-dir", metavar="DIR", help="Local files of cifar10 / mnist."),
    ] = None,
    compile: Annotated[
        bool, typer.Option("--compile", help="torch.compile each run (pays for long runs).")
    ] = False,
) -> None:
    """Train a trial again under several seeds; store and print validation and test scores
    as mean +- std, and export the best seed's model."""
    from nas_skip.dashboard import default_storage
    from nas_skip.searching._retrain import retrain as run_retrain

    done = run_retrain(storage or default_storage(), study, trial, epochs, seeds, threads,
                       data_dir, out, compile=compile)  # fmt: skip
    r = done.record
    metric = {"mIoU": "mIoU", "bpc": "bpc"}.get(r["metric"], "acc")
    table = Table(title=f"{study}: retrained", header_style="bold")
    for name in ("trial", "search", f"val {metric}", f"test {metric}", "seeds", "epochs"):
        table.add_column(name, justify="right")
    table.add_row(
        str(done.trial.number),
        f"{r['search_value']:.4f}",
        f"{r['val_mean']:.4f} ± {r['val_std']:.4f}",
        f"{r['test_mean']:.4f} ± {r['test_std']:.4f}",
        str(len(r["seeds"])),
        str(r["epochs"]),
    )
    console = _console()
    console.print(table)
    each = ", ".join(f"{v:.4f}" for v in r["val"])
    console.print(f"val {metric} per seed: {each}; best seed {r['best_seed']}", soft_wrap=True)
    console.print(f"weights of seed {r['best_seed']}: {done.out_dir}", soft_wrap=True)
    for path in done.files:
        console.print(f"wrote {path}", soft_wrap=True)
