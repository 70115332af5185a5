"""Declarative search spaces (``search_spaces/*.yaml``) that sample genotypes from Optuna.

``trial.suggest_*`` is called here and nowhere else in nas-skip.
"""

from nas_skip.spaces._families import STRUCTURE_ATTRS, Structure
from nas_skip.spaces._schema import FAMILIES, Choice, Range, SpaceError, SpaceSpec, read_spec
from nas_skip.spaces._space import (
    ParamInfo,
    Space,
    list_spaces,
    load_space,
    load_spec,
    spaces_dir,
)

__all__ = [
    "FAMILIES",
    "STRUCTURE_ATTRS",
    "Choice",
    "ParamInfo",
    "Range",
    "Space",
    "SpaceError",
    "SpaceSpec",
    "Structure",
    "list_spaces",
    "load_space",
    "load_spec",
    "read_spec",
    "spaces_dir",
]
