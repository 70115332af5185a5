"""How big a space is, with work that does not grow with the numbers in its file.

A dimension's values are counted in closed form (an integer range ``{low: 1, high:
10**12}`` is never enumerated); the number of architectures a space encodes is a formula
per family, summed over the values of its depth, never a build per combination of its
structural choices (three stages of depth 1..64 are 262,144 combinations); and
:func:`check_size` refuses at load a space whose largest network passes the builders'
bound (:data:`~nas_skip.spaces._families.MAX_CHOICES`), so that
everything after it (describing, sampling, validating) does bounded work.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from nas_skip.spaces._families import BUILDERS, STRUCTURAL, Picker, TooLarge
from nas_skip.spaces._schema import Choice, Dimension, Range, SpaceError

if TYPE_CHECKING:
    from nas_skip.spaces._space import Space


def values(dim: Dimension) -> Sequence[Any]:
    """The values of a discrete dimension, lazily (an integer range is a ``range``)."""
    if isinstance(dim, Choice):
        return dim.values
    assert isinstance(dim, Range) and dim.is_int
    return range(int(dim.low), int(dim.high) + 1, dim.step or 1)


def count(dim: Dimension) -> float:
    """How many values ``dim`` takes (``math.inf`` for a continuous range)."""
    if isinstance(dim, Range) and not dim.is_int:
        return math.inf
    return len(values(dim))


def largest(dim: Dimension) -> Any:
    """The largest value of a discrete dimension."""
    vals = values(dim)
    return vals[-1] if isinstance(vals, range) else max(vals)


def _log(dim: Dimension | Sequence[Any]) -> float:
    """log10 of the number of values of a dimension, or of a tuple of choices."""
    n = len(dim) if isinstance(dim, tuple) else count(dim)  # type: ignore[arg-type]
    return math.log10(n)


def _log_sum(terms: Iterable[float]) -> float:
    """log10(sum(10 ** t)) without overflow."""
    items = list(terms)
    top = max(items)
    if math.isinf(top):
        return top
    return top + math.log10(sum(10 ** (t - top) for t in items))


def _window(depth: int, hop: int) -> int:
    """Skip choices of ``depth`` layers, layer ``j`` taking one from each of the ``hop``
    before it (the run's input is layer -1): ``sum(min(hop, j + 1) for j < depth)``."""
    h = min(hop, depth)
    return h * (h + 1) // 2 + (depth - h) * h


def _layers_log(space: Space, depth: int) -> float:
    """log10 of the choices of one run of layers (``_families._layers``): an op per layer
    and a kind per skip of the hop window."""
    s = space.spec.skeleton
    hop = s["hop_window"] or depth + 1
    return depth * _log(s["ops"]) + _window(depth, hop) * _log(s["kinds"])


def _chain(space: Space) -> float:
    s = space.spec.skeleton
    per_depth = (_layers_log(space, d) for d in values(s["depth"]))
    return _log(s["width"]) + _log_sum(per_depth)


def _stages(space: Space) -> float:
    s = space.spec.skeleton
    k: int = s["stages"]
    per_stage = _log_sum(_layers_log(space, d) for d in values(s["depth"]))
    return _log(s["width"]) + (k - 1) * _log(s["shortcut"]) + k * per_stage


def _dense(space: Space) -> float:
    s = space.spec.skeleton
    # layer j of a block chooses a kind for each of the j earlier sources but the previous
    per_block = _log_sum(d * (d - 1) // 2 * _log(s["kinds"]) for d in values(s["layers"]))
    blocks: int = s["blocks"]
    return _log(s["growth"]) + _log(s["compression"]) + blocks * per_block


def _unet(space: Space) -> float:
    s = space.spec.skeleton
    # 2 * depth + 1 residual blocks (encoder, middle, decoder) and a long skip per level
    per_depth = (
        (2 * d + 1) * _log(s["short_kinds"]) + d * _log(s["long_kinds"])
        for d in values(s["depth"])
    )
    return _log(s["width"]) + _log_sum(per_depth)


def _cross_skips(depth: int, hop: int) -> int:
    """Cross-block skips of ``depth`` blocks: block ``j`` takes one from each output
    ``i`` with ``j - hop <= i <= j - 2`` (the embedding is output 0)."""
    m = min(depth, hop)
    return max(0, m * (m - 1) // 2) + max(0, depth - m) * max(0, hop - 1)


def _transformer(space: Space) -> float:
    s = space.spec.skeleton
    fixed = sum(_log(s[k]) for k in ("width", "heads", "norm", "dwa"))
    design = 2 * (_log(s["placements"]) + _log(s["residuals"]))
    per_depth = (_cross_skips(d, s["hop_window"]) * _log(s["skip_kinds"])
                 for d in values(s["depth"]))  # fmt: skip
    return fixed + design + _log_sum(per_depth)


#: log10 of the number of architectures, per family with structural choices; the others
#: (a fixed structure) are counted by building their one structure.
_FORMULAS: dict[str, Callable[[Space], float]] = {
    "chain": _chain,
    "stages": _stages,
    "dense": _dense,
    "unet": _unet,
    "transformer": _transformer,
}


def size_log10(space: Space) -> float:
    """log10 of the number of parameter combinations that encode an architecture of
    ``space`` (see :meth:`Space.size_log10`)."""
    formula = _FORMULAS.get(space.spec.family)
    if formula is not None:
        return formula(space)
    from nas_skip.spaces._space import _Recorder

    assert not STRUCTURAL[space.spec.family](space)
    rec = _Recorder({})
    BUILDERS[space.spec.family](Picker(rec), space)
    return sum(_log(p.dimension) for p in rec.params.values())


#: the skeleton keys that make a network larger, named when one is too large
_SIZE_KEYS = ("depth", "layers", "hop_window", "stages", "blocks", "cells_per_stage")


def check_size(space: Space) -> None:
    """Build ``space``'s largest network once, without validating it, and refuse the space
    if it asks more than :data:`~nas_skip.spaces._families.MAX_CHOICES` choices (every
    network of the space asks at most as many as its largest).

    Raises:
        SpaceError: naming the space file and the bound.
    """
    from nas_skip.spaces._space import _Recorder

    structural = STRUCTURAL[space.spec.family](space)
    rec = _Recorder({name: largest(dim) for name, dim in structural.items()})
    try:
        BUILDERS[space.spec.family](Picker(rec), space)
    except TooLarge as exc:
        skeleton = space.spec.skeleton
        keys = ", ".join(k for k in _SIZE_KEYS if skeleton.get(k) is not None)
        raise SpaceError(
            f"{space.spec.path}: skeleton: its largest network {exc} (lower {keys})"
        ) from None
