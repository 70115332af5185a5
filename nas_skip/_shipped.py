"""Where the files that ship beside the code live.

In a checkout they sit at the repository root, as DESIGN.md lays it out
(``search_spaces/``, ``dashboards/``); a wheel carries them inside the package
(``pyproject.toml`` maps them there), so an installed nas-skip finds them too.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def shipped(name: str) -> Path:
    """The folder ``name`` of an installed wheel, else of the checkout."""
    inside = _PACKAGE / name
    return inside if inside.is_dir() else _PACKAGE.parent / name
