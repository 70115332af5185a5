"""The ``nas-skip`` command line: maps flags to library calls, and applies one error policy.

Error policy (:func:`main`): a :class:`NasSkipError`, a file that cannot be read or
written, or a name that is not text (bytes that are not UTF-8), prints one line
``error: <message>`` to stderr and exits with code 2, with no traceback; ``--debug``
re-raises it instead. What nas-skip prints shows control characters (an escape sequence's
ESC) and lone surrogates escaped (:func:`nas_skip.errors.printable`). Usage errors keep
typer's own report (also code 2). A :class:`NasSkipWarning` (such as pruned dead nodes,
or a trial a report skipped) prints one line ``warning: <message>``.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from typing import Any, TextIO

from nas_skip.cli import (  # noqa: F401  (they register)
    _datasets,
    _genotype,
    _report,
    _retrain,
    _search,
    _spaces,
)
from nas_skip.cli._app import ERROR_EXIT, _session, app
from nas_skip.errors import NasSkipError, NasSkipWarning, brief, printable

__all__ = ["app", "main"]


# --- entry point ---------------------------------------------------------------------------
def _one_line(message: object) -> str:
    # escaped first: a name in the message may hold an escape sequence or a lone surrogate
    return " ".join(printable(str(message)).splitlines())


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
    if issubclass(category, NasSkipWarning):
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
        except (NasSkipError, OSError, UnicodeEncodeError) as exc:
            if _session.debug:
                raise
            if isinstance(exc, OSError) and exc.filename is not None:
                message = f"{exc.filename}: {exc.strerror}"
            elif isinstance(exc, UnicodeEncodeError):
                # a name or path from the command line that is not text (bytes that are
                # not UTF-8), met by a database, a file or the terminal
                bad = exc.object[exc.start : exc.end]
                message = f"{brief(exc.object)}: holds {brief(bad)}, not {exc.encoding} text"
            else:
                message = str(exc)
            sys.stderr.write(f"error: {_one_line(message)}\n")
            sys.exit(ERROR_EXIT)
