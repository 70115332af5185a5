"""Per-node cost: parameters and FLOPs counted from shapes alone (no torch; a user op
registered without a cost rule is measured with torch, see :func:`nas_skip.register_op`).

A node's cost includes the modules of its incoming edges (gates, alphas, projections), as
the compiled module holds them. FLOPs follow PyTorch's FlopCounterMode (2 x MACs of
convolutions and matrix products, per sample); the test suite checks both against torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from nas_skip.errors import GenotypeError
from nas_skip.merges import MERGES
from nas_skip.ops import OPS, Shape

if TYPE_CHECKING:
    from nas_skip.genotype._genotype import Genotype


@dataclass(frozen=True)
class NodeCost:
    """One row of ``nas-skip show``."""

    id: str
    op: str
    shape: Shape
    params: int
    flops: int


def human(n: float) -> str:
    """``40_812_032`` -> ``"40.8M"`` (powers of 1000, one decimal); small numbers as they are."""
    units = ["", "K", "M", "G", "T", "P"]
    value, i = float(n), 0
    while abs(value) >= 999.95 and i < len(units) - 1:
        value, i = value / 1000, i + 1
    return f"{n:g}" if i == 0 else f"{value:.1f}{units[i]}"


def costs(genotype: Genotype) -> list[NodeCost]:
    """One :class:`NodeCost` per node, in the genotype's topological order."""
    rows = []
    for node_id in genotype.order[1:]:
        plan = genotype.plans[node_id]
        node = genotype.node(node_id)
        try:
            p, f = OPS[node.op].count(plan.merged, plan.out, genotype.node_params[node_id])
        except GenotypeError as exc:  # a user op's module, measured (nas_skip.register_op)
            raise GenotypeError(f"node {node_id!r}: {exc}") from None
        for merge in (*plan.base, *plan.additive):
            p, f = p + merge.shortcut.params, f + merge.shortcut.flops
        for merge in plan.additive:
            e = merge.edge
            edge_params = genotype.edge_params[e.src, e.dst]
            mp, mf = MERGES[e.kind].count(plan.merged, edge_params, genotype.sequence)
            p, f = p + mp, f + mf
        rows.append(NodeCost(node_id, node.op, plan.out, p, f))
    return rows


def topology(genotype: Genotype) -> dict[str, int]:
    """Topology features of the compiled graph, for notes, reports and analysis.

    ``depth``: op nodes on the longest input -> output path; ``skips_<kind>``: edges of
    each skip kind (every kind but ``seq``; ``none`` edges are switched off and not
    counted); ``longest_skip``: the largest hop distance of a skip, measured in depth
    levels (1 = from the previous level, as a ResNet shortcut over one layer spans 2).
    """
    level = {genotype.order[0]: 0}
    for node_id in genotype.order[1:]:
        plan = genotype.plans[node_id]
        level[node_id] = 1 + max(level[m.edge.src] for m in (*plan.base, *plan.additive))
    features = {"depth": level[genotype.output], "nodes": len(genotype.nodes)}
    for kind in MERGES:
        if kind not in ("seq", "none"):
            features[f"skips_{kind}"] = 0
    longest = 0
    for plan in genotype.plans.values():
        for merge in (*plan.base, *plan.additive):
            e = merge.edge
            if e.kind != "seq":
                features[f"skips_{e.kind}"] += 1
                longest = max(longest, level[e.dst] - level[e.src])
    features["longest_skip"] = longest
    return features
