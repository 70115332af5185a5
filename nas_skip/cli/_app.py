"""The typer app, its root options and the state the error policy reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer

from nas_skip import __version__

ERROR_EXIT = 2  # the code click gives usage errors: one code for "your input is wrong"

app = typer.Typer(
    name="nas-skip",
    help="Neural architecture search over skip-connection topologies.",
    no_args_is_help=True,
    add_completion=False,
    # --debug shows the plain Python traceback, the one to paste into a bug report
    pretty_exceptions_enable=False,
)


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
