"""Merge kinds and alignment: how a node combines its incoming edges (pure data, no torch).

See DESIGN.md, "Merge semantics" and "Alignment". :data:`MERGES` holds one
:class:`MergeSpec` per edge kind; :func:`make_shortcut` is the one place that decides how a
source tensor is made to fit its target: identity, zero-pad (subsample / nearest upsample /
pad features) or projection (strided 1x1 conv + BN, transposed conv + BN, or linear). Image
(C, H, W) and signal (C, L) tensors are aligned alike, with 2-D or 1-D modules.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nas_skip.errors import GenotypeError
from nas_skip.ops import Param, Shape, _atom

EdgeParams = Mapping[str, Any]

#: How a source shape is brought to its target shape.
ALIGNS = ("auto", "zero_pad", "projection")


@dataclass(frozen=True)
class MergeSpec:
    """One edge kind.

    ``role`` is "base" (concatenated into the node's base), "additive" (combined into the
    base after alignment) or "drop" (removed at compile time). For additive kinds with
    weights, ``module(shape, params, features_last)`` is the constructor expression of the
    edge's module or parameter (``features_last``: a sequence's (L, W) shape), ``init(ref,
    params)`` extra ``__init__`` lines, and ``combine(base, s, ref, params)`` the forward
    statements that update the variable ``base`` with the aligned source variable ``s``.
    """

    name: str
    role: str
    doc: str
    params: Mapping[str, Param] = field(default_factory=dict)
    module: Callable[[Shape, EdgeParams, bool], str | None] = lambda s, p, last: None
    init: Callable[[str, EdgeParams], list[str]] = lambda ref, p: []
    combine: Callable[[str, str, str, EdgeParams], list[str]] = lambda b, s, r, p: []
    count: Callable[[Shape, EdgeParams, bool], tuple[int, int]] = lambda s, p, last: (0, 0)
    attr: str = "merge"


def _positions(s: Shape) -> int:
    """Spatial positions of a (C, *spatial) shape: H * W, L, or 1 for a vector."""
    n = 1
    for d in s[1:]:
        n *= d
    return n


def _gate_module(s: Shape, p: EdgeParams, features_last: bool) -> str:
    if features_last or len(s) == 1:  # a vector, or a sequence's (L, W)
        return f"nn.Linear({s[-1]}, {s[-1]})"
    return f"nn.Conv{len(s) - 1}d({s[0]}, {s[0]}, 1)"


def _gate_count(s: Shape, p: EdgeParams, features_last: bool) -> tuple[int, int]:
    c, positions = (s[-1], s[0]) if features_last and len(s) == 2 else (s[0], _positions(s))
    return c * c + c, 2 * c * c * positions


MERGES: dict[str, MergeSpec] = {
    m.name: m
    for m in [
        MergeSpec("seq", "base", "sequential input (concatenated if several)"),
        MergeSpec("concat", "base", "dense skip: concatenated on the feature axis"),
        MergeSpec(
            "add",
            "additive",
            "residual skip: base + s",
            combine=lambda b, s, r, p: [f"{b} = {b} + {s}"],
        ),
        MergeSpec(
            "scaled",
            "additive",
            "learned-scale skip: base + alpha * s (init 0 on the branch: ReZero)",
            params={"init": Param(float, -10.0, 10.0, default=1.0, doc="initial alpha")},
            module=lambda s, p, last: f"nn.Parameter(torch.tensor({float(p['init'])!r}))",
            combine=lambda b, s, r, p: [f"{b} = {b} + {r} * {s}"],
            count=lambda s, p, last: (1, 0),
            attr="alpha",
        ),
        MergeSpec(
            "gated",
            "additive",
            "highway gate: g = sigmoid(W s + b); g * base + (1 - g) * s",
            params={"bias": Param(float, -20.0, 20.0, default=-2.0, doc="gate bias")},
            module=_gate_module,
            init=lambda r, p: [f"nn.init.constant_({r}.bias, {float(p['bias'])!r})"],
            combine=lambda b, s, r, p: [
                f"g = torch.sigmoid({r}({s}))",
                f"{b} = g * {b} + (1 - g) * {s}",
            ],
            count=_gate_count,
            attr="gate",
        ),
        MergeSpec("none", "drop", "no connection (a searchable skip switched off)"),
    ]
}


@dataclass(frozen=True)
class Shortcut:
    """How one edge's source is aligned: ``resolved`` is identity, zero_pad or projection."""

    resolved: str
    out_shape: Shape
    module: str | None = None  # constructor expression (projection only)
    steps: tuple[str, ...] = ()  # forward templates applied in order, with {x} (and {m})
    params: int = 0
    flops: int = 0

    def call(self, m: str, x: str) -> str:
        """The forward expression that aligns ``x`` (with the module ``m``); an input with a
        top-level operator is parenthesised before a step subscripts or calls it."""
        for step in self.steps:
            x = step.format(x=_atom(x), m=m)
        return x


def _strides(a: int, b: int) -> tuple[int, float]:
    """The strides ``f`` with ``ceil(a / f) == b``, as the interval ``[low, high]``.

    ``ceil(a / f) == b`` iff ``b - 1 < a / f <= b``: ``f >= ceil(a / b)`` and, for ``b > 1``,
    ``f <= (a - 1) // (b - 1)``; for ``b == 1`` every ``f >= a`` works."""
    return -(-a // b), (a - 1) // (b - 1) if b > 1 else math.inf


def _spatial(src: Shape, dst: Shape) -> tuple[str, int] | None:
    """("same" | "down" | "up", factor) taking src's (H, W) or (L,) to dst's, or None.

    One factor serves every spatial axis, as one strided op downsamples them all. The
    factor is found in closed form (intervals of strides intersected across the axes), so
    the work does not grow with the sizes: a length of 10**12 costs what a length of 8 does.
    """
    s, d = src[1:], dst[1:]
    if s == d:
        return "same", 1
    if all(a >= b for a, b in zip(s, d, strict=True)):
        # the smallest stride f >= 2 with ceil(s / f) == d on every axis (several strided
        # ops compound their strides into one)
        bounds = [_strides(a, b) for a, b in zip(s, d, strict=True)]
        low = max(2, *(lo for lo, _ in bounds))
        if all(low <= hi for _, hi in bounds):
            return "down", low
    elif all(a <= b and b % a == 0 and b // a == d[0] // s[0] for a, b in zip(s, d, strict=True)):
        return "up", d[0] // s[0]
    return None


def _sequence_shortcut(
    src: Shape, dst: Shape, align: str, where: str, spatial_only: bool,
    edge: tuple[str, str] | None,
) -> Shortcut:  # fmt: skip
    """:func:`make_shortcut` for (L, W) sequences: the lengths must agree (sequence ops keep
    them), the features are zero-padded (``F.pad`` of the last axis) or projected by a
    linear map on each position."""
    if src[0] != dst[0]:
        raise GenotypeError(
            f"{where}: a sequence of length {src[0]} cannot be aligned to length {dst[0]} "
            "(sequence ops keep the length)",
            edge=edge,
        )
    c_src = src[1]
    c_dst = c_src if spatial_only else dst[1]
    out: Shape = (src[0], c_dst)
    if src == out and (align != "projection" or spatial_only):
        return Shortcut("identity", out)
    if align == "projection":
        return Shortcut(
            "projection", out, f"nn.Linear({c_src}, {c_dst}, bias=False)", ("{m}({x})",),
            c_src * c_dst, 2 * src[0] * c_src * c_dst,
        )  # fmt: skip
    _check_narrower(c_src, c_dst, align, where, edge)
    return Shortcut("zero_pad", out, None, (f"F.pad({{x}}, (0, {c_dst - c_src}))",))


def _check_narrower(c_src: int, c_dst: int, align: str, where: str,
                    edge: tuple[str, str] | None) -> None:  # fmt: skip
    """Zero-padding adds features: a wider source needs a projection."""
    if c_src > c_dst:
        raise GenotypeError(
            f"{where}: align '{align}' cannot zero-pad a source with {c_src} features into "
            f"{c_dst}; use align 'projection'",
            edge=edge,
        )


def make_shortcut(
    src: Shape,
    dst: Shape,
    align: str,
    where: str,
    spatial_only: bool = False,
    edge: tuple[str, str] | None = None,
    features_last: bool = False,
) -> Shortcut:
    """Decide how a tensor of shape ``src`` is made to fit ``dst`` (DESIGN.md, Alignment).

    Args:
        src: the source node's output shape.
        dst: the target shape (for ``spatial_only``, only its H and W or L matter).
        align: "auto", "zero_pad" or "projection".
        where: the edge, as named in error messages.
        spatial_only: align H and W but keep the source's features (concat inputs).
        edge: the (src, dst) pair, recorded on the error.
        features_last: shapes of rank 2 are a sequence's (L, W), not a signal's (C, L).

    Returns:
        The :class:`Shortcut`, whose ``out_shape`` is the aligned shape.

    Raises:
        GenotypeError: the shapes cannot be aligned this way.
    """
    if len(src) != len(dst):
        raise GenotypeError(
            f"{where}: cannot merge a rank-{len(src)} source {list(src)} into a rank-{len(dst)} "
            f"target {list(dst)}",
            edge=edge,
        )
    if features_last and len(src) == 2:
        return _sequence_shortcut(src, dst, align, where, spatial_only, edge)
    n = len(src) - 1  # spatial axes: 2 for an image (C, H, W), 1 for a signal (C, L), 0
    spatial = _spatial(src, dst)
    if spatial is None:
        raise GenotypeError(
            f"{where}: spatial size {list(src[1:])} cannot be aligned to {list(dst[1:])} "
            "(needs an integer down- or up-sampling factor)",
            edge=edge,
        )
    how, f = spatial
    c_src = src[0]
    c_dst = c_src if spatial_only else dst[0]
    out: Shape = (c_dst, *dst[1:])
    if src == out and align != "projection":
        return Shortcut("identity", out)
    if align == "projection":
        if n == 0:
            if spatial_only:
                return Shortcut("identity", out)
            return Shortcut(
                "projection",
                out,
                f"nn.Linear({c_src}, {c_dst}, bias=False)",
                ("{m}({x})",),
                c_src * c_dst,
                2 * c_src * c_dst,
            )
        bn = f"nn.BatchNorm{n}d({c_dst})"
        if how == "up":
            conv = f"nn.ConvTranspose{n}d({c_src}, {c_dst}, {f}, stride={f}, bias=False)"
            # FlopCounterMode counts a transposed conv over its input positions
            flops = 2 * c_src * c_dst * f**n * _positions(src)
            params = c_src * c_dst * f**n
        else:
            stride = f", stride={f}" if f != 1 else ""
            conv = f"nn.Conv{n}d({c_src}, {c_dst}, 1{stride}, bias=False)"
            flops = 2 * c_src * c_dst * _positions(out)
            params = c_src * c_dst
        return Shortcut(
            "projection", out, f"nn.Sequential({conv}, {bn})", ("{m}({x})",), params + 2 * c_dst,
            flops,
        )  # fmt: skip
    # zero_pad, or auto where shapes differ
    _check_narrower(c_src, c_dst, align, where, edge)
    steps: list[str] = []
    if how == "down":
        steps.append("{x}[:, :, " + ", ".join([f"::{f}"] * n) + "]")
    elif how == "up":
        steps.append(f'F.interpolate({{x}}, scale_factor={float(f)!r}, mode="nearest")')
    if c_dst > c_src:
        pad = "0, 0, " * n + f"0, {c_dst - c_src}"  # F.pad lists the last axis first
        steps.append(f"F.pad({{x}}, ({pad}))")
    return Shortcut("zero_pad", out, None, tuple(steps))
