"""The exception hierarchy: every error a user can cause is a :class:`NasSkipError`.

This module imports nothing heavy so that every part of the package (the pure-data
genotype included) can raise these errors.
"""

from __future__ import annotations

import re
import reprlib

#: how much of a value an error message shows: a short prefix of each string and number,
#: the first items of each list or mapping, two levels deep
_BRIEF = reprlib.Repr()
_BRIEF.maxlevel = 2
_BRIEF.maxtuple = _BRIEF.maxlist = _BRIEF.maxdict = _BRIEF.maxset = _BRIEF.maxfrozenset = 6
_BRIEF.maxstring = _BRIEF.maxother = 60
_BRIEF.maxlong = 40


def brief(value: object) -> str:
    """``repr(value)`` for an error message, bounded whatever the input: a YAML alias bomb
    or a 5,000-digit integer reads as a short prefix, never as megabytes (or a crash)."""
    try:
        text = _BRIEF.repr(value)
    except ValueError:  # an int too long for str() (sys.set_int_max_str_digits)
        digits = int(value.bit_length() * 0.30103) if isinstance(value, int) else 0
        return f"<an integer of about {digits} digits>" if digits else f"<{type(value).__name__}>"
    return text if len(text) <= 200 else text[:197] + "..."


#: what a terminal must not be sent raw: C0 and C1 controls but tab and newline (ESC starts
#: an escape sequence), lone surrogates (they cannot be encoded: printing them crashes), and
#: the bidirectional overrides (they reorder what the rest of the line shows)
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def printable(text: str) -> str:
    """``text`` with every character a terminal must not be sent raw written as its Python
    escape (``\\x1b``, ``\\ud800``), as :func:`repr` writes it: a file path, study or space
    name printed to the user can neither drive the terminal nor crash the print."""
    return _UNPRINTABLE.sub(lambda m: repr(m.group())[1:-1], text)


class NasSkipError(Exception):
    """Root of every error nas-skip raises on bad user input.

    The message is one line that names the file, key, node or edge at fault and, where
    there is a closed set of choices, the allowed values. The CLI prints it as
    ``error: <message>`` and exits non-zero, without a traceback.
    """


class GenotypeError(NasSkipError, ValueError):
    """A genotype breaks a rule of the schema: bad structure, op, kind, align or shape.

    ``edge`` is the (src, dst) pair at fault where the error is about an edge's alignment,
    so that a search space can repair its sample (for example with a projection).
    """

    def __init__(self, message: str, *, edge: tuple[str, str] | None = None) -> None:
        super().__init__(message)
        self.edge = edge


class NasSkipWarning(UserWarning):
    """Root of the warnings nas-skip gives a user; the CLI prints each as one line
    ``warning: <message>``."""


class GenotypeWarning(NasSkipWarning):
    """A genotype was accepted after a repair, such as pruning dead nodes."""


class SkippedTrialWarning(NasSkipWarning):
    """A stored trial could not be read (a missing or invalid genotype, a ``duplicate_of``
    that names no original) and was left out, as ``nas-skip report`` does."""
