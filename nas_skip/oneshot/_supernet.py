"""The supernet: a relaxed space's graph with every candidate present, mixed by weights.

Each node of the relaxation's genotype is computed in its topological order as the
compiled network computes it (base inputs concatenated after alignment, additive inputs
combined into the base, then the op), except at the mixed elements:

- a **mixed edge** ``i -> j`` adds ``sum_k w_k * delta_k`` to node ``j``'s base, where
  ``delta_k`` is what kind ``k`` would add, all of the base's shape: ``add`` the aligned
  source ``s``; ``scaled`` ``alpha * s``; ``gated`` ``(1 - g) * (s - base)`` with ``g =
  sigmoid(W s + b)`` (so that ``base + delta`` is the highway mix); ``concat`` a learned
  linear map ``P s`` (a concatenation followed by the consumer's first linear layer is
  that layer applied to the base plus a linear map of the source, so ``P s`` is what a
  concat contributes, at the base's width); ``none`` nothing;
- a **mixed node** outputs ``sum_o w_o * op_o(x)``, each op's output aligned to the
  node's shape (zero-padded or projected where an op keeps its input's channels).

A node's mixed skips together weigh at most one input: their weighted sum is divided
by their total weight (that of every kind but ``none``) where it exceeds 1, and under the
sigmoid relaxation a choice's gates likewise by their sum. Summed, the three hop-window
skips of every layer compound over a deep chain (``m_j = l_j + m_{j-1} + m_{j-2} +
m_{j-3}`` grows geometrically): a 16-layer ``deep_mlp`` supernet overflowed to NaN in its
first epoch under sigmoid gates starting at 0.5, and averaging the skips *with* the base
instead damped the stream until nothing trained (validation 0.19 after 8 epochs, against
0.37 summed; measured). Kept to one input, the stream grows as a residual network's
does. A skip that wins alone counts fully; records and derivation read the raw weights.

The weights ``w`` are the softmax of a choice's architecture parameters (DARTS) or their
independent sigmoids (Fair DARTS). A choice repeated in several cells shares its weights.
Ops are compiled as the network compiles them (one-node genotypes through
:func:`nas_skip.build`), alignments from the same registry templates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from nas_skip.genotype import Genotype
from nas_skip.merges import MERGES, Shortcut, make_shortcut
from nas_skip.oneshot._relax import NONE, RELAXATIONS, MixedChoice, Relaxation


def _op_module(op: str, in_shape: tuple[int, ...], params: Mapping[str, Any]) -> nn.Module:
    """One op as the compiled network builds it: a one-node genotype through ``build``."""
    from nas_skip.compile import build

    g = Genotype.from_json({
        "schema": 1,
        "input": {"shape": list(in_shape)},
        "nodes": [{"id": "node", "op": op, **params}],
        "edges": [{"src": "input", "dst": "node"}],
        "output": "node",
    })  # fmt: skip
    return build(g, class_name="Op")


class _Align(nn.Module):
    """A :class:`~nas_skip.merges.Shortcut` as a module (identity, zero-pad, projection)."""

    def __init__(self, shortcut: Shortcut) -> None:
        super().__init__()
        namespace = {"torch": torch, "nn": nn, "F": F}
        # registry templates and checked numbers only, as build() compiles them
        self.m = eval(shortcut.module, namespace) if shortcut.module else None  # noqa: S307
        expr = shortcut.call("m", "x") if shortcut.steps else "x"
        self.fn: Callable[[Any, torch.Tensor], torch.Tensor] = eval(  # noqa: S307
            f"lambda m, x: {expr}", namespace
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self.m, x)


def _linear(shape: tuple[int, ...], bias: bool) -> nn.Module:
    """A 1x1 map on the feature axis of a (C,), (C, L) or (C, H, W) tensor."""
    c = shape[0]
    if len(shape) == 1:
        return nn.Linear(c, c, bias=bias)
    conv = nn.Conv1d if len(shape) == 2 else nn.Conv2d
    return conv(c, c, 1, bias=bias)


class _Gate(nn.Module):
    """g = sigmoid(W s + b), b starting at the gated kind's bias (highway)."""

    def __init__(self, shape: tuple[int, ...], bias: float) -> None:
        super().__init__()
        self.w = _linear(shape, bias=True)
        nn.init.constant_(self.w.bias, bias)  # type: ignore[arg-type]

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.w(s))


class _Candidates(nn.Module):
    """The modules one mixed edge's kinds need, at the base's shape."""

    def __init__(self, values: tuple[str, ...], shape: tuple[int, ...]) -> None:
        super().__init__()
        self.values = values
        if "scaled" in values:
            init = MERGES["scaled"].params["init"].default
            self.alpha = nn.Parameter(torch.tensor(float(init or 1.0)))
        if "gated" in values:
            self.gate = _Gate(shape, float(MERGES["gated"].params["bias"].default or 0.0))
        if "concat" in values:
            self.proj = _linear(shape, bias=False)

    def forward(self, base: torch.Tensor | None, s: torch.Tensor,
                w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """The weighted contributions to ``base`` (None: a node whose every input is
        mixed, which starts at zero) and their mass, the weight of every kind but none."""
        out = torch.zeros_like(s)
        mass = torch.zeros((), device=s.device)
        for k, value in enumerate(self.values):
            if value == NONE:
                continue
            if value in ("add", "seq"):
                delta = s
            elif value == "scaled":
                delta = self.alpha * s
            elif value == "gated":
                g = self.gate(s)
                delta = (1 - g) * (s if base is None else s - base)
            else:  # concat
                delta = self.proj(s)
            out = out + w[k] * delta
            mass = mass + w[k]
        return out, mass


class _FixedAdd(nn.Module):
    """A fixed additive edge (add, scaled, gated) as the compiled network combines it."""

    def __init__(self, kind: str, shape: tuple[int, ...], params: Mapping[str, Any]) -> None:
        super().__init__()
        self.kind = kind
        if kind == "scaled":
            self.alpha = nn.Parameter(torch.tensor(float(params.get("init", 1.0))))
        if kind == "gated":
            self.gate = _Gate(shape, float(params.get("bias", -2.0)))

    def forward(self, base: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        if self.kind == "scaled":
            return base + self.alpha * s
        if self.kind == "gated":
            g: torch.Tensor = self.gate(s)
            return g * base + (1 - g) * s
        return base + s


class _MixedOp(nn.Module):
    """The candidate ops of one mixed node, each aligned to the node's output shape."""

    def __init__(self, choice: MixedChoice, in_shape: tuple[int, ...], out_shape: tuple[int, ...],
                 params: Mapping[str, Any], where: str) -> None:  # fmt: skip
        from nas_skip.ops import OPS

        super().__init__()
        self.skip = [op == "zero" for op in choice.ops]  # contributes nothing
        ops, aligns = [], []
        for op in choice.ops:
            declared = OPS[op].params
            kept = {k: v for k, v in params.items() if k in declared}
            module = _op_module(op, in_shape, kept)
            shape = OPS[op].shape(in_shape, {**{k: p.default for k, p in declared.items()},
                                             **kept})  # fmt: skip
            ops.append(module)
            aligns.append(_Align(_shortcut(tuple(shape), out_shape, f"{where} op {op}")))
        self.ops = nn.ModuleList(ops)
        self.aligns = nn.ModuleList(aligns)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor | None = None
        for k, (op, align) in enumerate(zip(self.ops, self.aligns, strict=True)):
            if self.skip[k]:
                continue
            y = w[k] * align(op(x))
            out = y if out is None else out + y
        assert out is not None  # a choice has an op besides 'none'
        return out


def _shortcut(src: tuple[int, ...], dst: tuple[int, ...], where: str) -> Shortcut:
    """The alignment of ``src`` to ``dst``: zero-pad or identity where it fits, else a
    projection (as validation repairs an edge)."""
    from nas_skip.errors import GenotypeError

    try:
        return make_shortcut(src, dst, "auto", where)
    except GenotypeError:
        return make_shortcut(src, dst, "projection", where)


class SuperNet(nn.Module):
    """The relaxation's supernet.

    Args:
        relaxation: the relaxed space (:func:`nas_skip.oneshot.relax`).
        mode: "softmax" (DARTS) or "sigmoid" (Fair DARTS).
        seed: seeds the architecture parameters' small random start (and the weights,
            through ``torch.manual_seed``, when the caller has not seeded them).

    ``arch`` holds one parameter vector per relaxed choice (in ``relaxation.choices``
    order); :meth:`weight_parameters` are all the others. :meth:`select` pins every
    choice to one value (a sampled network inside the supernet, for inherited accuracy).
    """

    def __init__(self, relaxation: Relaxation, mode: str = "softmax") -> None:
        super().__init__()
        if mode not in RELAXATIONS:
            raise ValueError(f"mode must be one of {', '.join(RELAXATIONS)}, got {mode!r}")
        self.relaxation, self.mode = relaxation, mode
        g = relaxation.genotype
        self.order = g.order[1:]
        self.output = g.output
        index = {c.name: k for k, c in enumerate(relaxation.choices)}
        self.arch = nn.ParameterList(
            [nn.Parameter(1e-3 * torch.randn(len(c.values))) for c in relaxation.choices]
        )
        self._selected: list[torch.Tensor] | None = None
        # per choice, 1 for each value with an output (not 'none'), as a buffer
        self._something = [torch.tensor([float(v != NONE) for v in c.values])
                           for c in relaxation.choices]  # fmt: skip
        edge_choice = {e: index[c.name] for c in relaxation.choices for e in c.edges}
        node_choice = {n: index[c.name] for c in relaxation.choices for n in c.nodes}
        # per node: (base [(src, align)], additive [(src, align, module, choice or -1)], op)
        self.plans: list[tuple[str, list[Any], list[Any], int]] = []
        modules = nn.ModuleDict()
        for i, node_id in enumerate(self.order):
            plan = g.plans[node_id]
            base, additive = [], []
            for k, m in enumerate(plan.base):
                key = f"n{i}b{k}"
                modules[key] = _Align(m.shortcut)
                mixed = edge_choice.get((m.edge.src, m.edge.dst), -1)
                if mixed >= 0:  # a node whose every input is a mixed edge: it starts at zero
                    cand = _Candidates(relaxation.choices[mixed].values, plan.merged)
                    modules[key + "m"] = cand
                    additive.append((m.edge.src, key, key + "m", mixed))
                else:
                    base.append((m.edge.src, key))
            for k, m in enumerate(plan.additive):
                key = f"n{i}a{k}"
                modules[key] = _Align(m.shortcut)
                mixed = edge_choice.get((m.edge.src, m.edge.dst), -1)
                params = g.edge_params.get((m.edge.src, m.edge.dst), {})
                if mixed >= 0:
                    modules[key + "m"] = _Candidates(relaxation.choices[mixed].values, plan.merged)
                else:
                    modules[key + "m"] = _FixedAdd(m.edge.kind, plan.merged, params)
                additive.append((m.edge.src, key, key + "m", mixed))
            params = g.node_params[node_id]
            choice = node_choice.get(node_id, -1)
            if choice >= 0:
                modules[f"n{i}op"] = _MixedOp(relaxation.choices[choice], plan.merged, plan.out,
                                              params, f"node {node_id!r}")  # fmt: skip
            else:
                modules[f"n{i}op"] = _op_module(g.node(node_id).op, plan.merged, params)
            self.plans.append((node_id, base, additive, choice))
        self.parts = modules

    # --- weights ------------------------------------------------------------------------------
    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter but the architecture's."""
        arch = {id(p) for p in self.arch}
        return [p for p in self.parameters() if id(p) not in arch]

    def mixing(self) -> list[torch.Tensor]:
        """Each choice's weights: softmax or sigmoid of its parameters (or the selection)."""
        if self._selected is not None:
            return self._selected
        if self.mode == "softmax":
            return [torch.softmax(a, 0) for a in self.arch]
        out = []
        for a, some in zip(self.arch, self._something, strict=True):
            g = torch.sigmoid(a)
            out.append(g / torch.clamp((g * some.to(g.device)).sum(), min=1.0))
        return out

    def weights(self) -> dict[str, list[float]]:
        """Each choice's softmax weights or sigmoid gates now, by name (for records and
        derivation)."""
        with torch.no_grad():
            squash = torch.sigmoid if self.mode == "sigmoid" else lambda a: torch.softmax(a, 0)
            return {c.name: [round(float(v), 6) for v in squash(a)]
                    for c, a in zip(self.relaxation.choices, self.arch, strict=True)}  # fmt: skip

    def zero_one_loss(self) -> torch.Tensor:
        """Fair DARTS's zero-one loss: ``-mean((sigmoid(a) - 0.5)^2)`` over the gates of
        every value but ``none`` (low when each gate is near 0 or 1)."""
        gates = [torch.sigmoid(a)[[k for k, v in enumerate(c.values) if v != NONE]]
                 for a, c in zip(self.arch, self.relaxation.choices, strict=True)]  # fmt: skip
        return -torch.cat(gates).sub(0.5).pow(2).mean()

    def select(self, params: Mapping[str, Any] | None) -> None:
        """Pin every choice to ``params``' value (one-hot weights); None: mix again."""
        if params is None:
            self._selected = None
            return
        device = self.arch[0].device
        pinned = []
        for c in self.relaxation.choices:
            w = torch.zeros(len(c.values), device=device)
            w[c.values.index(str(params[c.name]))] = 1.0
            pinned.append(w)
        self._selected = pinned

    # --- forward ------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.mixing()
        values: dict[str, torch.Tensor] = {"input": x}
        parts = self.parts
        for i, (node_id, base, additive, choice) in enumerate(self.plans):
            inputs = [parts[key](values[src]) for src, key in base]
            h: torch.Tensor | None
            if not inputs:
                h = None
            elif len(inputs) == 1:
                h = inputs[0]
            else:
                h = torch.cat(inputs, 1)
            mixed_sum: torch.Tensor | None = None
            mass: torch.Tensor | None = None
            for src, key, mkey, mixed in additive:
                s = parts[key](values[src])
                if mixed >= 0:
                    delta, m = parts[mkey](h, s, w[mixed])
                    mixed_sum = delta if mixed_sum is None else mixed_sum + delta
                    mass = m if mass is None else mass + m
                else:
                    assert h is not None
                    h = parts[mkey](h, s)
            if mixed_sum is not None and mass is not None:  # skips together weigh <= 1
                mixed_sum = mixed_sum / torch.clamp(mass, min=1.0)
                h = mixed_sum if h is None else h + mixed_sum
            assert h is not None
            op = parts[f"n{i}op"]
            values[node_id] = op(h, w[choice]) if choice >= 0 else op(h)
        return values[self.output]
