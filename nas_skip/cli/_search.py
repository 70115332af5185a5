"""``nas-skip search``: flags to a SearchConfig, a search, and what to do next."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nas_skip.cli._app import app
from nas_skip.cli._common import (
    ImageSizeOption,
    StorageOption,
    TargetOption,
    _console,
    artifacts_option,
    storage_option,
    study_option,
    train_settings,
)
from nas_skip.errors import NasSkipError, brief

_RAY = "Ray backend"
_TRAIN = "Training (fixes the space's train: entry for every trial)"
_ONESHOT = "One-shot (--strategy oneshot)"


@app.command()
def search(
    space: Annotated[
        str, typer.Option("--space", metavar="NAME|PATH", help="Space name or YAML path.")
    ],
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            metavar="NAME|PATH",
            help="Dataset name, or an .npz, .csv, .parquet or image folder (default: the "
            "space's; see nas-skip datasets).",
        ),
    ] = None,
    target: TargetOption = None,
    image_size: ImageSizeOption = None,
    trials: Annotated[
        int, typer.Option("--trials", metavar="N", help="Finished trials the study should reach.")
    ] = 20,
    epochs: Annotated[
        int | None, typer.Option("--epochs", metavar="N", help="Training epochs per trial [10].")
    ] = None,
    evaluator: Annotated[
        str,
        typer.Option(
            "--evaluator",
            metavar="NAME",
            help="train, nb201-cifar10, nb201-cifar100 or nb201-imagenet16.",
        ),
    ] = "train",
    backend: Annotated[
        str, typer.Option("--backend", metavar="NAME", help="local or ray.")
    ] = "local",
    storage: StorageOption = None,
    study: Annotated[str | None, study_option("Study name [SPACE-DATASET].")] = None,
    sampler: Annotated[
        str | None,
        typer.Option(
            "--sampler",
            metavar="NAME",
            help="local-search, tpe, random, nsga2 or evolution [local-search; nsga2 for MO].",
        ),
    ] = None,
    objectives: Annotated[
        str, typer.Option("--objectives", metavar="LIST", help="accuracy[,params|latency|flops].")
    ] = "accuracy",
    seed: Annotated[
        int | None, typer.Option("--seed", metavar="INT", help="Sampler seed.")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", metavar="N", help="Trials at once.")] = 1,
    pruning: Annotated[
        bool, typer.Option("--pruning/--no-pruning", help="Stop unpromising trials early.")
    ] = True,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", metavar="SECONDS", help="Seconds after which no trial starts."),
    ] = None,
    keep: Annotated[
        int, typer.Option("--keep", metavar="K", help="Keep the weights of the best K.")
    ] = 3,
    artifacts: Annotated[str | None, artifacts_option("Artifact folder [runs/artifacts].")] = None,
    data_dir: Annotated[
        str | None,
        typer.Option("--data-dir", metavar="DIR", help="Local files of cifar10 / mnist."),
    ] = None,
    optimizer: Annotated[
        str | None,
        typer.Option("--optimizer", metavar="NAME", help="sgd or adamw.", rich_help_panel=_TRAIN),
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option("--lr", metavar="FLOAT", help="Peak learning rate.", rich_help_panel=_TRAIN),
    ] = None,
    weight_decay: Annotated[
        float | None, typer.Option("--weight-decay", metavar="FLOAT", rich_help_panel=_TRAIN)
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", metavar="N", rich_help_panel=_TRAIN)
    ] = None,
    grad_clip: Annotated[
        float | None,
        typer.Option(
            "--grad-clip", metavar="FLOAT", help="Max gradient norm.", rich_help_panel=_TRAIN
        ),
    ] = None,
    warmup_epochs: Annotated[
        float | None,
        typer.Option(
            "--warmup-epochs", metavar="EPOCHS", help="Linear lr warm-up.", rich_help_panel=_TRAIN
        ),
    ] = None,
    train_error: Annotated[
        bool,
        typer.Option(
            "--train-error/--no-train-error",
            help="Also measure each trial's error on the whole training split.",
            rich_help_panel=_TRAIN,
        ),
    ] = False,
    device: Annotated[
        str,
        typer.Option(
            "--device",
            metavar="DEVICE",
            help="auto: local workers round-robin over the visible GPUs, a Ray trial on "
            "the GPU Ray gave it, else the CPU; or cpu, cuda, cuda:N.",
        ),
    ] = "auto",
    compile: Annotated[
        bool,
        typer.Option(
            "--compile",
            help="torch.compile each trial's network: tens of seconds per trial, faster "
            "epochs; for long trials only.",
        ),
    ] = False,
    population: Annotated[
        int, typer.Option("--population", metavar="N", help="Evolution, NSGA-II.")
    ] = 20,
    tournament: Annotated[int, typer.Option("--tournament", metavar="N", help="Evolution.")] = 5,
    cpus_per_trial: Annotated[
        float, typer.Option("--cpus-per-trial", metavar="FLOAT", rich_help_panel=_RAY)
    ] = 1.0,
    gpus_per_trial: Annotated[
        float,
        typer.Option(
            "--gpus-per-trial",
            metavar="FLOAT",
            help="Fractional: 0.25 packs 4.",
            rich_help_panel=_RAY,
        ),
    ] = 0.0,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            metavar="ADDRESS",
            help="auto: join a running cluster.",
            rich_help_panel=_RAY,
        ),
    ] = None,
    strategy: Annotated[
        str,
        typer.Option(
            "--strategy",
            metavar="NAME",
            help="trials (train each sampled network) or oneshot (one supernet, then the "
            "network it derives, trained as a trial).",
        ),
    ] = "trials",
    relaxation: Annotated[
        str,
        typer.Option(
            "--relaxation",
            metavar="NAME",
            rich_help_panel=_ONESHOT,
            help="softmax (DARTS) or sigmoid (Fair DARTS gates).",
        ),
    ] = "softmax",
    max_skips: Annotated[
        int | None,
        typer.Option(
            "--max-skips",
            metavar="K",
            rich_help_panel=_ONESHOT,
            help="Keep at most the K strongest skips (P-DARTS).",
        ),
    ] = None,
    supernet_epochs: Annotated[
        int | None,
        typer.Option(
            "--supernet-epochs",
            metavar="N",
            rich_help_panel=_ONESHOT,
            help="Supernet epochs [--epochs].",
        ),
    ] = None,
    arch_lr: Annotated[
        float,
        typer.Option(
            "--arch-lr",
            metavar="FLOAT",
            rich_help_panel=_ONESHOT,
            help="Adam's learning rate on the architecture weights.",
        ),
    ] = 3e-3,
    fix: Annotated[
        list[str] | None,
        typer.Option(
            "--fix",
            metavar="NAME=VALUE",
            rich_help_panel=_ONESHOT,
            help="Fix a choice (depth=16); repeatable. Others not relaxed take "
            "the largest structure and mid-range training values.",
        ),
    ] = None,
    log_file: Annotated[
        Path | None,
        typer.Option(
            "--log-file",
            metavar="PATH",
            help="Append one JSON line per finished trial, then a summary line.",
        ),
    ] = None,
) -> None:
    """Search a space for the best skip topology; rerunning continues the study."""
    from nas_skip.data import dataset_info, dataset_name
    from nas_skip.searching import SearchConfig, summary_table
    from nas_skip.searching import search as run_search

    if dataset is not None:
        dataset = dataset_name(dataset, target=target, image_size=image_size)
    elif target is not None or image_size is not None:
        raise NasSkipError("--target and --image-size need --dataset PATH (a table or a folder)")
    config = SearchConfig(
        space=space,
        dataset=dataset,
        trials=trials,
        epochs=epochs,
        evaluator=evaluator,
        backend=backend,
        storage=storage,
        study=study,
        sampler=sampler,
        objectives=tuple(o.strip() for o in objectives.split(",") if o.strip()),
        seed=seed,
        workers=workers,
        cpus_per_trial=cpus_per_trial,
        gpus_per_trial=gpus_per_trial,
        ray_address=ray_address,
        timeout=timeout,
        pruning=pruning,
        keep=keep,
        artifacts=artifacts,
        data_dir=data_dir,
        population=population,
        tournament=tournament,
        train=train_settings(
            optimizer=optimizer,
            lr=lr,
            weight_decay=weight_decay,
            batch_size=batch_size,
            grad_clip=grad_clip,
            warmup_epochs=warmup_epochs,
        ),  # fmt: skip
        train_error=train_error,
        device=device,
        compile=compile,
        strategy=strategy,
        relaxation=relaxation,
        max_skips=max_skips,
        supernet_epochs=supernet_epochs,
        arch_lr=arch_lr,
        fix=_fixed(fix or []),
    )
    console = _console()
    if config.dataset is not None and Path(config.dataset).is_absolute():  # a file dataset
        console.print(dataset_info(config.dataset).summary(), soft_wrap=True)
    result = run_search(config, log_file=log_file)
    if result.stale:
        console.print(f"marked {result.stale} trials of a dead run FAIL", soft_wrap=True)
    console.print(summary_table(result.study, result.objectives))
    console.print(
        f"{result.finished} finished ({result.duplicates} duplicates, {result.pruned} pruned "
        f"of which {result.diverged} diverged), "
        f"{result.failed} failed; study {result.study_name!r} in {result.storage_url}",
        soft_wrap=True,
    )
    if result.interrupted:
        console.print("interrupted: rerun the same command to continue", soft_wrap=True)
    store = f" --storage {result.storage_url}" if storage else ""
    console.print("next:", soft_wrap=True)
    console.print(f"  nas-skip dashboard{store} --study {result.study_name}", soft_wrap=True)
    console.print(
        f"  nas-skip export{store} --study {result.study_name} --out {Path('runs') / 'best'}",
        soft_wrap=True,
    )
    if config.evaluator == "train":
        console.print(f"  nas-skip retrain{store} --study {result.study_name} --seeds 3",
                      soft_wrap=True)  # fmt: skip
    if config.strategy == "oneshot":
        console.print(f"  nas-skip report{store} --study {result.study_name} --out "
                      f"{Path('runs') / 'report'}", soft_wrap=True)  # fmt: skip
    if result.interrupted:
        raise typer.Exit(130)


def _fixed(items: list[str]) -> dict[str, str]:
    """``--fix NAME=VALUE`` flags as a mapping (values are read by the choice's type)."""
    out = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name.strip() or not value.strip():
            raise NasSkipError(f"--fix: expected NAME=VALUE (depth=16), got {brief(item)}")
        out[name.strip()] = value.strip()
    return out


@app.command()
def dashboard(
    storage: Annotated[
        str | None, storage_option("Optuna storage URL [the search's runs/nas_skip.db].")
    ] = None,
    study: Annotated[str | None, study_option("Print this study's URL.")] = None,
    host: Annotated[
        str, typer.Option("--host", metavar="ADDRESS", help="Address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", metavar="PORT", help="Port to listen on.")] = 8080,
    artifacts: Annotated[
        list[Path] | None,
        artifacts_option("Artifact folder to serve, repeatable [runs/artifacts]."),
    ] = None,
) -> None:
    """Watch searches in optuna-dashboard (with the trials' artifacts); Ctrl-C stops it."""
    import time

    from nas_skip.dashboard import default_storage, serving, study_url, unserved
    from nas_skip.searching._artifacts import ArtifactFolders
    from nas_skip.searching._reading import open_existing

    url = storage or default_storage()
    console = _console()
    with serving(url, host, port, artifacts, study) as base:  # its page made ready first
        opened = open_existing(url)
        page = study_url(opened, base, study)
        for line in unserved(opened, ArtifactFolders(artifacts)):
            console.print(f"note: {line}", soft_wrap=True)
        console.print(f"optuna-dashboard on {url}", soft_wrap=True)
        console.print(f"open {page}   (Ctrl-C stops it)", soft_wrap=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            console.print("stopped", soft_wrap=True)
