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
# Commands still to come: spaces, train, search, dashboard, report (DESIGN.md, "CLI").


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
    rows = costs(g)
    total_params = sum(r.params for r in rows)
    total_flops = sum(r.flops for r in rows)
    table = Table(title=g.name or str(genotype), show_footer=True, header_style="bold")
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
