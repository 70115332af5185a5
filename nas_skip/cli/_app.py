"""The typer app, its root options and the state the error policy reads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from nas_skip import __version__

ERROR_EXIT = 2  # the code click gives usage errors: one code for "your input is wrong"


#: the metavar of an option that names none, by its type (typer would print ``<str>``)
_METAVARS: dict[Any, str] = {int: "INT", float: "FLOAT", str: "TEXT", Path: "PATH"}


class _FlagsWithoutMetavar:
    """Help that shows a flag as a flag: typer would print ``<bool>`` beside each one (and
    beside ``--help``). An option that takes a value names it with its own metavar (URL,
    DIR, N), else with its type's (INT, PATH)."""

    params: list[Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if getattr(param, "is_flag", False):
                param.metavar = ""
            elif param.metavar is None and getattr(param, "param_type_name", "") == "option":
                annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
                param.metavar = _METAVARS.get(annotation, "VALUE")
            elif param.metavar is not None and param.param_type_name == "argument":
                # an argument's metavar (GENOTYPE, NAME) says what it takes: no <path> after it
                param.display_type_rich = lambda ctx: None

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.metavar = ""
        return option


class _Command(_FlagsWithoutMetavar, TyperCommand):
    pass


class _Group(_FlagsWithoutMetavar, TyperGroup):
    pass


class _Typer(typer.Typer):
    """A Typer whose commands are :class:`_Command` unless told otherwise."""

    def command(self, *args: Any, cls: Any = None, **kwargs: Any) -> Callable[..., Any]:
        return super().command(*args, cls=cls or _Command, **kwargs)


app = _Typer(
    name="nas-skip",
    help="Neural architecture search over skip-connection topologies.",
    no_args_is_help=True,
    add_completion=False,
    cls=_Group,
    # -h as well as --help, on the app and (inherited by their contexts) on every command
    context_settings={"help_option_names": ["-h", "--help"]},
    # markdown, not rich markup: a help text's "[runs/nas_skip.db]" stays as written
    # (rich would read it as a style tag and drop it)
    rich_markup_mode="markdown",
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
    imports: Annotated[
        list[str] | None,
        typer.Option(
            "--import",
            metavar="MODULE",
            help="Import a module of your own first (its register_op calls add ops), "
            "repeatable: nas-skip --import my_ops search ...",
        ),
    ] = None,
) -> None:
    _session.debug = debug
    for module in imports or ():
        import_user_module(module)


def import_user_module(module: str) -> None:
    """Import ``module`` (a dotted name; the current folder is on the path, as for
    ``python -m``), so that its top-level ``register_op`` calls add its ops.

    Raises:
        NasSkipError: it is no module name, or cannot be imported (the message says why).
    """
    import importlib
    import sys

    from nas_skip.errors import NasSkipError, brief

    if not all(part.isidentifier() for part in module.split(".")):
        raise NasSkipError(f"--import: {brief(module)} is not a module name (my_ops, pkg.ops)")
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")  # the current folder, as `python -m` has it
    try:
        importlib.import_module(module)
    except NasSkipError:
        raise
    except Exception as exc:  # noqa: BLE001 - a user's module may raise anything
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise NasSkipError(f"--import {module}: {type(exc).__name__}: {first}"[:300]) from None
