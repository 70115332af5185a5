"""The exception hierarchy: every error a user can cause is a :class:`NasSkipError`.

This module imports nothing heavy so that every part of the package (the pure-data
genotype included) can raise these errors.
"""

from __future__ import annotations


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


class GenotypeWarning(UserWarning):
    """A genotype was accepted after a repair, such as pruning dead nodes."""
