"""Helpers the commands share: options, reading genotype files, formatting, the show report."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from nas_skip.errors import GenotypeError, NasSkipError, printable
from nas_skip.genotype import INPUT, Genotype, costs, human
from nas_skip.merges import MERGES

#: a table's label column, for the commands that take ``--dataset PATH``
TargetOption = Annotated[
    str | None,
    typer.Option("--target", metavar="COLUMN", help="A table's label column [the last]."),
]
#: the side an image folder's images are resized to, likewise
ImageSizeOption = Annotated[
    int | None,
    typer.Option("--image-size", metavar="N", help="An image folder's images, resized [32]."),
]


# --- a search's study: --study, --storage, --artifacts --------------------------------------
# Each is declared once here. The commands that word one differently (or put it under a
# help panel) pass their own help to the factory; the others use the aliases below.
def study_option(help: str = "Study name.", rich_help_panel: str | None = None) -> Any:
    """The ``--study NAME`` option, for an ``Annotated`` parameter."""
    return typer.Option("--study", metavar="NAME", help=help, rich_help_panel=rich_help_panel)


def storage_option(
    help: str = "Optuna storage URL or journal file [runs/nas_skip.db].",
    rich_help_panel: str | None = None,
) -> Any:
    """The ``--storage URL`` option, for an ``Annotated`` parameter."""
    return typer.Option("--storage", metavar="URL", help=help, rich_help_panel=rich_help_panel)


def artifacts_option(
    help: str = "The search's artifact folder [runs/artifacts].",
    rich_help_panel: str | None = None,
) -> Any:
    """The ``--artifacts DIR`` option, for an ``Annotated`` parameter."""
    return typer.Option("--artifacts", metavar="DIR", help=help, rich_help_panel=rich_help_panel)


#: the study a command reads (required)
StudyOption = Annotated[str, study_option()]
#: the study's Optuna storage
StorageOption = Annotated[str | None, storage_option()]
#: the search's artifact folder
ArtifactsOption = Annotated[Path | None, artifacts_option()]


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
    except ValueError:  # json's own limit: an integer of more than 4,300 digits
        raise NasSkipError(f"{path}: a number in the JSON has too many digits") from None
    except RecursionError:
        raise NasSkipError(f"{path}: the JSON is nested too deeply") from None
    try:
        return Genotype.from_json(doc)
    except GenotypeError as exc:
        raise GenotypeError(f"{path}: {exc}") from exc


def _shape(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape)


class _SafeConsole(Console):
    """A console that prints every string it is given (a line, a table's title or cell)
    through :func:`~nas_skip.errors.printable`: a name that holds an escape sequence or a
    lone surrogate reads escaped, and is measured as it reads."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(printable(text), **kwargs)


def _console() -> Console:
    # markup off: paths and ids are printed as they are, never read as rich markup
    return _SafeConsole(highlight=False, markup=False)


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
    table.add_column("FLOPs", justify="right", footer=human(total_flops))
    table.add_row(INPUT, "", _shape(g.shapes[INPUT]), "", "")
    for r in rows:
        table.add_row(r.id, r.op, _shape(r.shape), f"{r.params:,}", human(r.flops))
    kinds = Counter(e.kind for e in g.edges)
    by_kind = ", ".join(f"{kinds[k]} {k}" for k in MERGES if kinds[k])
    console = _console()
    console.print(table)
    for line in (
        f"params: {total_params:,} ({human(total_params)})",
        f"FLOPs:  {total_flops:,} ({human(total_flops)}) per sample",
        f"edges:  {len(g.edges)} ({by_kind})",
        f"hash:   {g.canonical_hash()}",
    ):
        console.print(line, soft_wrap=True)
    return console


def train_settings(**values: Any) -> dict[str, Any]:
    """The training flags a user gave (the ones left at None are the space's)."""
    return {key: value for key, value in values.items() if value is not None}
