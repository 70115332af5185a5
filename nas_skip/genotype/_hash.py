"""Our own, versioned canonical hash of a genotype's compiled graph.

Library graph hashes change between releases (networkx 3.5 changed its directed
Weisfeiler-Lehman hash), and stored hashes must stay comparable, so the routine is ours:

1. The compiled graph: ``none`` edges dropped, dead nodes pruned. A node is labelled by
   its op and parameters with defaults filled in (``input`` by the input shape), an edge by
   its kind, its *resolved* align (identity / zero_pad / projection) and its parameters.
2. Colour refinement (1-WL on in- and out-edges with their labels) until stable.
3. Individualisation-refinement: while a colour class holds several nodes, try each of
   them as the first of its class and keep the smallest resulting canonical form. Nodes
   with identical labelled neighbourhoods ("twins") give the same form, so one stands for
   all. This is exact: isomorphic genotypes give equal forms, others different ones.
4. sha256 of the canonical form.

Step 3 is exponential only for graphs with many interchangeable parallel branches that
are not twins; past :data:`_MAX_LEAVES` candidate forms it stops at the refined colours,
still equal for isomorphic genotypes (a collision between such large symmetric graphs is
then possible, and the form says so with a "wl" marker).

Changing anything here changes stored hashes: bump :data:`HASH_VERSION`.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

from nas_skip.genotype._parse import INPUT

if TYPE_CHECKING:
    from nas_skip.genotype._genotype import Genotype

HASH_VERSION = 1
_MAX_LEAVES = 2000

Colors = dict[str, int]
Adjacency = dict[str, list[tuple[str, str]]]


def _refine(colors: Colors, ins: Adjacency, outs: Adjacency) -> Colors:
    """Refine ``colors`` until the partition is stable; colours are canonical ranks."""
    n_classes = len(set(colors.values()))
    while True:
        sigs = {
            v: (
                colors[v],
                tuple(sorted((lab, colors[u]) for lab, u in ins[v])),
                tuple(sorted((lab, colors[w]) for lab, w in outs[v])),
            )
            for v in colors
        }
        ranks = {s: i for i, s in enumerate(sorted(set(sigs.values())))}
        new = {v: ranks[sigs[v]] for v in colors}
        if len(ranks) == n_classes:
            return new
        colors, n_classes = new, len(ranks)


def _form(colors: Colors, labels: dict[str, str], ins: Adjacency) -> str:
    order = sorted(colors, key=colors.__getitem__)
    index = {v: i for i, v in enumerate(order)}
    edges = sorted((index[u], index[v], lab) for v in order for lab, u in ins[v])
    return json.dumps([[labels[v] for v in order], edges], separators=(",", ":"))


def _search(
    colors: Colors, labels: dict[str, str], ins: Adjacency, outs: Adjacency, budget: list[int]
) -> str | None:
    """The smallest canonical form below this partition, or None if the budget ran out."""
    classes: dict[int, list[str]] = {}
    for v, c in colors.items():
        classes.setdefault(c, []).append(v)
    cell = min((c for c, vs in classes.items() if len(vs) > 1), default=None)
    if cell is None:
        budget[0] -= 1
        return _form(colors, labels, ins)
    best: str | None = None
    tried: set[tuple[frozenset[tuple[str, str]], frozenset[tuple[str, str]]]] = set()
    for v in sorted(classes[cell]):
        # twins (same labelled neighbours) are swapped by an automorphism: try one of them
        key = (frozenset(ins[v]), frozenset(outs[v]))
        if key in tried:
            continue
        tried.add(key)
        split = dict(colors)
        split[v] = -1  # individualise v: it now comes first within its class
        form = _search(_refine(split, ins, outs), labels, ins, outs, budget)
        if form is None or budget[0] <= 0:
            return None
        if best is None or form < best:
            best = form
    return best


def canonical_form(genotype: Genotype) -> str:
    """The canonical text form that :func:`canonical_hash` digests."""
    labels: dict[str, str] = {INPUT: json.dumps(["input", list(genotype.input_shape)])}
    for node in genotype.nodes:
        params = sorted(genotype.node_params[node.id].items())
        tag = "output" if node.id == genotype.output else ""
        labels[node.id] = json.dumps([node.op, params, tag])
    ins: Adjacency = {v: [] for v in labels}
    outs: Adjacency = {v: [] for v in labels}
    for plan in genotype.plans.values():
        for merge in (*plan.base, *plan.additive):
            e = merge.edge
            params = sorted(genotype.edge_params[e.src, e.dst].items())
            lab = json.dumps([e.kind, merge.shortcut.resolved, params])
            ins[e.dst].append((lab, e.src))
            outs[e.src].append((lab, e.dst))
    ranks = {lab: i for i, lab in enumerate(sorted(set(labels.values())))}
    colors = _refine({v: ranks[labels[v]] for v in labels}, ins, outs)
    budget = [_MAX_LEAVES]
    form = _search(colors, labels, ins, outs, budget)
    if form is None:  # too symmetric for an exact search: the stable refinement instead
        edges = sorted((colors[u], colors[v], lab) for v in labels for lab, u in ins[v])
        nodes = sorted((colors[v], labels[v]) for v in labels)
        form = "wl" + json.dumps([nodes, edges], separators=(",", ":"))
    return form


def canonical_hash(genotype: Genotype) -> str:
    """``"v<HASH_VERSION>:<32 hex digits>"``, equal exactly for isomorphic genotypes."""
    digest = hashlib.sha256(canonical_form(genotype).encode()).hexdigest()[:32]
    return f"v{HASH_VERSION}:{digest}"
