"""What the report reads from a trial's genotype, kept in place of the genotype.

A parsed deep_mlp genotype takes about 90 kB (nodes, edges, shapes, merge plans), a
study of 10,000 trials close to a gigabyte; the report reads from each only its topology,
its parameter and FLOP counts and its skips by hop distance: about 1 kB. So each genotype
is parsed once, when its trial is checked (:mod:`nas_skip.report._readable`), these facts
are kept, and the genotype is let go.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from nas_skip.genotype import Genotype, costs, topology


@dataclass(frozen=True)
class Facts:
    """One genotype as the report reads it."""

    #: :func:`nas_skip.genotype.topology`, then ``params`` and ``flops``: the trial table's
    #: derived columns, measured on the graph
    features: dict[str, int]
    hops: Counter[tuple[str, int]]  # skips of each (kind, hop in graph levels): skip_hops()


def levels(genotype: Genotype) -> dict[str, int]:
    """Each node's depth level, as :func:`nas_skip.genotype.topology` counts them."""
    level = {genotype.order[0]: 0}
    for node_id in genotype.order[1:]:
        plan = genotype.plans[node_id]
        level[node_id] = 1 + max(level[m.edge.src] for m in (*plan.base, *plan.additive))
    return level


def skip_hops(genotype: Genotype) -> Counter[tuple[str, int]]:
    """How many skips of each (kind, hop distance) the genotype has (``seq`` edges are not
    skips; ``none`` edges are switched off and absent from the plans)."""
    level = levels(genotype)
    found: Counter[tuple[str, int]] = Counter()
    for plan in genotype.plans.values():
        for merge in (*plan.base, *plan.additive):
            e = merge.edge
            if e.kind != "seq":
                found[e.kind, level[e.dst] - level[e.src]] += 1
    return found


def facts(genotype: Genotype) -> Facts:
    """What the report reads from ``genotype``."""
    row = dict(topology(genotype))
    rows = costs(genotype)
    row["params"] = sum(r.params for r in rows)
    row["flops"] = sum(r.flops for r in rows)
    return Facts(row, skip_hops(genotype))
