"""The ``nas-skip`` command line: maps flags to library calls, and applies one error policy.

Error policy (:func:`main`): a :class:`NasSkipError`, or a file that cannot be read or
written, prints one line ``error: <message>`` to stderr and exits with code 2, with no
traceback; ``--debug`` re-raises it instead. Usage errors keep typer's own report (also
code 2). A :class:`GenotypeWarning` (such as pruned dead nodes) prints one line
``warning: <message>``.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.console import Console
from rich.table import Table

from nas_skip import __version__
from nas_skip.errors import GenotypeError, GenotypeWarning, NasSkipError
from nas_skip.genotype import INPUT, Genotype, costs
from nas_skip.merges import MERGES

ERROR_EXIT = 2  # the code click gives usage errors: one code for "your input is wrong"

app = typer.Typer(
    name="nas-skip",
    help="Neural architecture search over skip-connection topologies.",
    no_args_is_help=True,
    add_completion=False,
    # --debug shows the plain Python traceback, the one to paste into a bug report
    pretty_exceptions_enable=False,
)
# Commands still to come: search, dashboard, report (DESIGN.md, "CLI").


@dataclass
class _Session:
    debug: bool = False


_session = _Session()  # set by the root callback, read by main's error policy


def _print_version(value: bool) -> None:
    if value:
        print(f"nas-skip {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of an error, not one line.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    _session.debug = debug


# --- helpers: reading files and formatting numbers ---------------------------------------
def _load_genotype(path: Path) -> Genotype:
    """Read and validate a genotype file; every failure is a NasSkipError naming ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NasSkipError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise NasSkipError(f"{path}: not UTF-8 text, so not a genotype JSON file") from None
    except OSError as exc:
        raise NasSkipError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NasSkipError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    try:
        return Genotype.from_json(doc)
    except GenotypeError as exc:
        raise GenotypeError(f"{path}: {exc}") from exc


def _human(n: float) -> str:
    """``40_812_032`` -> ``"40.8M"`` (powers of 1000, one decimal)."""
    units = ["", "K", "M", "G", "T", "P"]
    value, i = float(n), 0
    while abs(value) >= 999.95 and i < len(units) - 1:
        value, i = value / 1000, i + 1
    return f"{n:g}" if i == 0 else f"{value:.1f}{units[i]}"


def _shape(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape)


def _console() -> Console:
    # markup off: paths and ids are printed as they are, never read as rich markup
    return Console(highlight=False, markup=False)


# --- commands ------------------------------------------------------------------------------
def _print_genotype(g: Genotype, title: str) -> Console:
    """The ``show`` report: a table of nodes and costs, then totals, edges and hash."""
    rows = costs(g)
    total_params = sum(r.params for r in rows)
    total_flops = sum(r.flops for r in rows)
    table = Table(title=title, show_footer=True, header_style="bold")
    table.add_column("node", footer="total")
    table.add_column("op")
    table.add_column("output shape")
    table.add_column("params", justify="right", footer=f"{total_params:,}")
    table.add_column("FLOPs", justify="right", footer=_human(total_flops))
    table.add_row(INPUT, "", _shape(g.shapes[INPUT]), "", "")
    for r in rows:
        table.add_row(r.id, r.op, _shape(r.shape), f"{r.params:,}", _human(r.flops))
    kinds = Counter(e.kind for e in g.edges)
    by_kind = ", ".join(f"{kinds[k]} {k}" for k in MERGES if kinds[k])
    console = _console()
    console.print(table)
    for line in (
        f"params: {total_params:,} ({_human(total_params)})",
        f"FLOPs:  {total_flops:,} ({_human(total_flops)}) per sample",
        f"edges:  {len(g.edges)} ({by_kind})",
        f"hash:   {g.canonical_hash()}",
    ):
        console.print(line, soft_wrap=True)
    return console


@app.command()
def show(
    genotype: Annotated[Path, typer.Argument(help="Genotype JSON file.", metavar="GENOTYPE")],
    draw: Annotated[
        Path | None,
        typer.Option(
            "--draw", help="Also draw the topology to FILE.svg or FILE.png.", metavar="FILE"
        ),
    ] = None,
) -> None:
    """Validate a genotype and print its nodes, costs, edges and canonical hash."""
    g = _load_genotype(genotype)
    drawn = None
    if draw is not None:
        from nas_skip.draw import draw as draw_genotype  # matplotlib only when drawing

        drawn = draw_genotype(g, draw)
    console = _print_genotype(g, g.name or str(genotype))
    if drawn is not None:
        console.print(f"drawing: {drawn}", soft_wrap=True)


@app.command()
def export(
    out: Annotated[
        Path, typer.Option("--out", help="Folder to write model.py and genotype.json to.")
    ],
    # The source of the genotype. Exactly one source; later: --storage/--study/--trial.
    genotype: Annotated[
        Path | None,
        typer.Option("--genotype", help="Genotype JSON file.", rich_help_panel="Source"),
    ] = None,
    class_name: Annotated[
        str, typer.Option("--class-name", help="Name of the nn.Module class.")
    ] = "Net",
) -> None:
    """Write a genotype as a standalone PyTorch file (model.py) next to its JSON."""
    if genotype is None:
        raise typer.BadParameter(
            "missing (export needs a genotype source)", param_hint="'--genotype'"
        )
    g = _load_genotype(genotype)
    from nas_skip.export import export_code  # torch only when exporting

    source = export_code(g, class_name=class_name)  # before writing: a bad name writes nothing
    out.mkdir(parents=True, exist_ok=True)
    model_path, json_path = out / "model.py", out / "genotype.json"
    model_path.write_text(source, encoding="utf-8")
    json_path.write_text(g.dumps() + "\n", encoding="utf-8")
    params = sum(r.params for r in costs(g))
    console = _console()
    for line in (
        f"wrote {model_path} (class {class_name}, {params:,} parameters)",
        f"wrote {json_path}",
        f"load trained weights (a state_dict) with, from {out}:",
        "    import torch",
        f"    from model import {class_name}",
        f"    net = {class_name}()",
        '    net.load_state_dict(torch.load("weights.pt", weights_only=True))',
    ):
        console.print(line, soft_wrap=True)


@app.command()
def spaces(
    name: Annotated[
        str | None, typer.Argument(help="A space's name or YAML path: show its parameters.")
    ] = None,
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="Bind this dataset, not the space's own.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the sample drawn.")] = 0,
    draw: Annotated[
        Path | None,
        typer.Option("--draw", help="Draw the sample to FILE.svg or FILE.png.", metavar="FILE"),
    ] = None,
) -> None:
    """List the search spaces, or show one space's parameters and a random sample of it."""
    import optuna

    from nas_skip.spaces import list_spaces, load_space

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
    for p in space.parameters():
        table.add_row(p.name, p.describe())
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
    """The data a genotype takes: vectors, images, or images to per-pixel classes."""
    if len(g.input_shape) == 1:
        return "vector"
    return "segmentation" if len(g.shapes[g.output]) == 3 else "image"


@app.command()
def train(
    genotype: Annotated[Path, typer.Argument(help="Genotype JSON file.", metavar="GENOTYPE")],
    dataset: Annotated[str, typer.Option("--dataset", help="Dataset name (see DATASETS).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for weights.pt, metrics.json.")],
    epochs: Annotated[int, typer.Option("--epochs", help="Training epochs.")] = 10,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate.")] = 0.05,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 128,
    weight_decay: Annotated[float, typer.Option("--weight-decay")] = 5e-4,
    optimizer: Annotated[str, typer.Option("--optimizer", help="sgd or adamw.")] = "sgd",
    seed: Annotated[int, typer.Option("--seed")] = 0,
    threads: Annotated[int, typer.Option("--threads", help="torch threads.")] = 1,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N.")] = "auto",
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Local files of cifar10 / mnist.")
    ] = None,
) -> None:
    """Train a genotype on a dataset; write weights.pt (a state_dict) and metrics.json."""
    from nas_skip.data import load_dataset
    from nas_skip.train import TrainConfig, train_to_dir

    g = _load_genotype(genotype)
    config = TrainConfig(
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        weight_decay=weight_decay,
        optimizer=optimizer,
        seed=seed,
        threads=threads,
        device=device,
    )
    data = load_dataset(dataset, _domain_of(g), data_dir)
    result = train_to_dir(g, data, config, out, progress=True)
    score = "mIoU" if data.task == "segmentation" else "accuracy"
    console = _console()
    for line in (
        f"validation {score}: {result.val_accuracy:.4f}   "
        f"test {score}: {result.test_accuracy:.4f}",
        f"training error: {result.train_error:.4f}   train time: {result.train_seconds:.1f} s",
        f"params: {result.params:,}   FLOPs: {_human(result.flops)}   "
        f"latency: {result.latency_ms:.2f} ms (batch 1)",
        f"wrote {out / 'weights.pt'}, {out / 'metrics.json'}, {out / 'genotype.json'}",
    ):
        console.print(line, soft_wrap=True)


# --- entry point ---------------------------------------------------------------------------
def _one_line(message: object) -> str:
    return " ".join(str(message).splitlines())


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
    _default: Any = warnings.showwarning,
) -> None:
    # our own warnings are for the user: one line, no source location
    if issubclass(category, GenotypeWarning):
        sys.stderr.write(f"warning: {_one_line(message)}\n")
    else:
        _default(message, category, filename, lineno, file, line)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the ``nas-skip`` command line with its error policy (see the module docstring).

    Args:
        argv: the arguments; ``None`` reads ``sys.argv``.

    Raises:
        SystemExit: always, with the command's exit code.
    """
    _session.debug = False
    with warnings.catch_warnings():  # restores showwarning for in-process callers
        warnings.showwarning = _show_warning
        try:
            app(args=list(argv) if argv is not None else None, prog_name="nas-skip")
        except (NasSkipError, OSError) as exc:
            if _session.debug:
                raise
            if isinstance(exc, OSError) and exc.filename is not None:
                message = f"{exc.filename}: {exc.strerror}"
            else:
                message = str(exc)
            sys.stderr.write(f"error: {_one_line(message)}\n")
            sys.exit(ERROR_EXIT)


if __name__ == "__main__":
    main()
