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


class _Canon:
    """Individualisation-refinement with automorphism pruning (a small nauty).

    Two leaves with equal forms give an automorphism. A leaf equal to the first leaf means
    the subtree where its path left the first path is equivalent to one already explored,
    so the search goes straight back there; and a candidate in the orbit of an explored
    one (under the automorphisms found that fix the current prefix) is skipped.
    """

    def __init__(self, labels: dict[str, str], ins: Adjacency, outs: Adjacency) -> None:
        self.labels, self.ins, self.outs = labels, ins, outs
        self.first: tuple[str, list[str], list[str]] | None = None  # form, order, path
        self.best: str | None = None
        self.automorphisms: list[dict[str, str]] = []
        self.leaves = 0

    def _orbit(self, v: str, prefix: list[str]) -> set[str]:
        perms = [a for a in self.automorphisms if all(a[p] == p for p in prefix)]
        orbit, todo = {v}, [v]
        while todo:
            u = todo.pop()
            for a in perms:
                if a[u] not in orbit:
                    orbit.add(a[u])
                    todo.append(a[u])
        return orbit

    def search(self, colors: Colors, prefix: list[str]) -> int | None:
        """Explore below ``prefix``; return the depth to go back to, if any."""
        classes: dict[int, list[str]] = {}
        for v, c in colors.items():
            classes.setdefault(c, []).append(v)
        cell = min((c for c, vs in classes.items() if len(vs) > 1), default=None)
        if cell is None:
            return self._leaf(colors, prefix)
        explored: list[str] = []
        twins: set[tuple[frozenset[tuple[str, str]], frozenset[tuple[str, str]]]] = set()
        for v in sorted(classes[cell]):
            # twins (same labelled neighbours) are swapped by an automorphism
            key = (frozenset(self.ins[v]), frozenset(self.outs[v]))
            if key in twins or any(v in self._orbit(u, prefix) for u in explored):
                continue
            twins.add(key)
            explored.append(v)
            split = dict(colors)
            split[v] = -1  # individualise v: it now comes first within its class
            back = self.search(_refine(split, self.ins, self.outs), [*prefix, v])
            if self.leaves > _MAX_LEAVES:
                return 0
            if back is not None and back < len(prefix):
                return back
        return None

    def _leaf(self, colors: Colors, path: list[str]) -> int | None:
        self.leaves += 1
        form = _form(colors, self.labels, self.ins)
        order = sorted(colors, key=colors.__getitem__)
        if self.first is None:
            self.first = (form, order, path)
            self.best = form
            return None
        first_form, first_order, first_path = self.first
        if form == first_form:
            self.automorphisms.append(dict(zip(first_order, order, strict=True)))
            common = 0
            while common < len(path) and path[common] == first_path[common]:
                common += 1
            return common
        if self.best is None or form < self.best:
            self.best = form
        return None


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
    canon = _Canon(labels, ins, outs)
    canon.search(colors, [])
    form = canon.best
    if canon.leaves > _MAX_LEAVES or form is None:  # too symmetric: the stable refinement
        edges = sorted((colors[u], colors[v], lab) for v in labels for lab, u in ins[v])
        nodes = sorted((colors[v], labels[v]) for v in labels)
        form = "wl" + json.dumps([nodes, edges], separators=(",", ":"))
    return form


def canonical_hash(genotype: Genotype) -> str:
    """``"v<HASH_VERSION>:<32 hex digits>"``, equal exactly for isomorphic genotypes."""
    digest = hashlib.sha256(canonical_form(genotype).encode()).hexdigest()[:32]
    return f"v{HASH_VERSION}:{digest}"
