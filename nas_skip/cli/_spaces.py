"""Commands on spaces and single runs: ``spaces`` and ``train``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from nas_skip.cli._app import app
from nas_skip.cli._common import (
    ImageSizeOption,
    TargetOption,
    _console,
    _load_genotype,
    _print_genotype,
)
from nas_skip.errors import NasSkipError, brief
from nas_skip.genotype import Genotype, human

_ROWS = 200  # parameters listed by `nas-skip spaces NAME`


@app.command()
def spaces(
    name: Annotated[
        str | None,
        typer.Argument(help="A space's name or YAML path: show its parameters.", metavar="NAME"),
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option("--dataset", metavar="NAME", help="Bind this dataset, not the space's own."),
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", metavar="INT", help="Seed of the sample drawn.")
    ] = 0,
    draw: Annotated[
        Path | None,
        typer.Option("--draw", help="Draw the sample to FILE.svg or FILE.png.", metavar="FILE"),
    ] = None,
) -> None:
    """List the search spaces, or show one space's parameters and a random sample of it."""
    import optuna

    from nas_skip.searching._config import MAX_SEED
    from nas_skip.spaces import list_spaces, load_space

    if not 0 <= seed <= MAX_SEED:  # Optuna's RandomSampler seeds numpy
        raise NasSkipError(f"--seed: must be in [0, {MAX_SEED}], got {brief(seed)}")
    console = _console()
    if name is None:
        table = Table(title="search spaces", header_style="bold")
        for column in ("space", "domain", "dataset", "family", "params", "size"):
            table.add_column(column, justify="right" if column in ("params", "size") else "left")
        for space_name in list_spaces():
            space = load_space(space_name)
            n = len(space.parameters(include_train=False))
            size = f"10^{space.size_log10():.1f}"
            table.add_row(space_name, space.domain, space.dataset, space.spec.family, str(n), size)
        console.print(table)
        console.print(
            "params: searchable architecture choices at the largest depth; "
            "size: distinct choices (an upper bound on distinct architectures)"
        )
        return
    space = load_space(name, dataset)
    table = Table(title=f"{space.name} on {space.dataset}", header_style="bold")
    table.add_column("parameter")
    table.add_column("values")
    params = space.parameters()
    for p in params[:_ROWS]:
        table.add_row(p.name, p.describe())
    if len(params) > _ROWS:  # a deep space asks thousands: the table shows how they read
        table.add_row(f"... and {len(params) - _ROWS:,} more", "")
    console.print(table)
    console.print(f"{space.spec.description}; size 10^{space.size_log10():.1f}", soft_wrap=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed)).ask()
    g = space.sample(trial)
    hp = space.sample_train(trial)
    _print_genotype(g, f"a random sample (seed {seed})")
    console.print(
        "training: "
        + ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in hp.items()),
        soft_wrap=True,
    )
    if draw is not None:
        from nas_skip.draw import draw as draw_genotype

        console.print(f"drawing: {draw_genotype(g, draw)}", soft_wrap=True)


def _domain_of(g: Genotype) -> str:
    """The data a genotype takes: vectors, signals, images, images to per-pixel classes, or
    token ids."""
    if g.sequence:
        return "sequence"
    if len(g.input_shape) < 3:
        return "vector" if len(g.input_shape) == 1 else "signal"
    return "segmentation" if len(g.shapes[g.output]) == 3 else "image"


@app.command()
def train(
    genotype: Annotated[Path, typer.Argument(help="Genotype JSON file.", metavar="GENOTYPE")],
    dataset: Annotated[
        str,
        typer.Option(
            "--dataset",
            metavar="NAME|PATH",
            help="Dataset name, or an .npz, .csv, .parquet or image folder (nas-skip datasets).",
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", metavar="DIR", help="Folder for weights.pt, metrics.json.")
    ],
    epochs: Annotated[int, typer.Option("--epochs", metavar="N", help="Training epochs.")] = 10,
    lr: Annotated[float, typer.Option("--lr", metavar="FLOAT", help="Peak learning rate.")] = 0.05,
    batch_size: Annotated[int, typer.Option("--batch-size", metavar="N")] = 128,
    weight_decay: Annotated[float, typer.Option("--weight-decay", metavar="FLOAT")] = 5e-4,
    optimizer: Annotated[
        str, typer.Option("--optimizer", metavar="NAME", help="sgd or adamw.")
    ] = "sgd",
    grad_clip: Annotated[
        float | None,
        typer.Option("--grad-clip", metavar="FLOAT", help="Max gradient norm [none]."),
    ] = None,
    warmup_epochs: Annotated[
        float,
        typer.Option(
            "--warmup-epochs", metavar="EPOCHS", help="Linear lr warm-up (may be fractional)."
        ),
    ] = 0.0,
    seed: Annotated[int, typer.Option("--seed", metavar="INT")] = 0,
    threads: Annotated[int, typer.Option("--threads", metavar="N", help="torch threads.")] = 1,
    device: Annotated[
        str, typer.Option("--device", metavar="NAME", help="auto, cpu, cuda, cuda:N.")
    ] = "auto",
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", metavar="DIR", help="Local files of cifar10 / mnist."),
    ] = None,
    target: TargetOption = None,
    image_size: ImageSizeOption = None,
    compile: Annotated[
        bool, typer.Option("--compile", help="torch.compile the network (pays for long runs).")
    ] = False,
) -> None:
    """Train a genotype on a dataset; write weights.pt (a state_dict) and metrics.json."""
    from nas_skip.data import dataset_info, dataset_name, load_dataset
    from nas_skip.train import TrainConfig, train_to_dir

    g = _load_genotype(genotype)
    config = TrainConfig(
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        weight_decay=weight_decay,
        optimizer=optimizer,
        grad_clip=grad_clip,
        warmup_epochs=warmup_epochs,
        seed=seed,
        threads=threads,
        device=device,
        compile=compile,
    )
    dataset = dataset_name(dataset, target=target, image_size=image_size)
    console = _console()
    if Path(dataset).is_absolute():  # a file dataset
        console.print(dataset_info(dataset).summary(), soft_wrap=True)
    data = load_dataset(dataset, _domain_of(g), data_dir)
    result = train_to_dir(g, data, config, out, progress=True)
    score = "mIoU" if data.task == "segmentation" else "accuracy"
    bpc = ""
    if result.val_bpc is not None and result.test_bpc is not None:  # a language model
        bpc = f"   validation bpc: {result.val_bpc:.4f}   test bpc: {result.test_bpc:.4f}"
    for line in (
        f"validation {score}: {result.val_accuracy:.4f}   "
        f"test {score}: {result.test_accuracy:.4f}{bpc}",
        f"training error: {result.train_error:.4f}   train time: {result.train_seconds:.1f} s"
        if result.train_error is not None
        else f"train time: {result.train_seconds:.1f} s",
        f"params: {result.params:,}   FLOPs: {human(result.flops)}   "
        f"latency: {result.latency_ms:.2f} ms (batch 1)",
        f"wrote {out / 'weights.pt'}, {out / 'metrics.json'}, {out / 'genotype.json'}",
    ):
        console.print(line, soft_wrap=True)
