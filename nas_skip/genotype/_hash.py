"""Our own, versioned canonical hash of a genotype's compiled graph.

Library graph hashes change between releases (networkx 3.5 changed its directed
Weisfeiler-Lehman hash), and stored hashes must stay comparable, so the routine is ours:

1. The compiled graph: ``none`` edges dropped, dead nodes pruned. A node is labelled by
   its op and parameters with defaults filled in (``input`` by the input shape), an edge by
   its kind, its *resolved* align (identity / zero_pad / projection) and its parameters.
2. Colour refinement (1-WL on in- and out-edges with their labels) until stable: an
   ordered partition whose every round sorts each cell by its nodes' sorted labelled in-
   and out-neighbour colours. ``_partition.py`` gets that order Hopcroft-style, from the
   cells that split in the round before: O(m log n) in all, not a full sort a round.
3. Individualisation-refinement (``_search.py``): while a cell holds several nodes, each
   of them in turn is put first (before every cell) and the partition refined again; the
   canonical form is the least leaf form (nodes in leaf order with their labels, then the
   edges sorted by position). This is exact: isomorphic genotypes give equal forms,
   others different ones.
4. sha256 of the canonical form.

Step 3 is a depth-first search without recursion that skips every child an automorphism
fixing the path maps to an explored child, which saves work and changes no form:

- twins (same label, same labelled in- and out-neighbours) are swapped by an automorphism,
  so one child stands for its twin class; putting first the nodes of a cell of twins one
  by one refines nothing else, so such a cell is made discrete in one step (parallel
  branches, the layers of a fully connected layered graph);
- a further child's refined partition is paired with the first child's, colour by colour
  and along forced edges; the pairing is kept when it is an automorphism (checked on the
  edges of the nodes it moves): one cheap check per sibling for parallel chains;
- a leaf whose form equals the first or the least leaf's gives an automorphism, and the
  search goes back to where the two paths parted (that branch mirrors one explored);
- twin classes are joined in a union-find by the automorphisms found; a cell is done once
  the orbits of its explored children cover it.

Version 2 computes version 1's forms (same refinement order, tree and least leaf), so its
digests equal version 1's wherever version 1 was exact. Version 1 gave up past 2,000 leaves,
and those hashes changed: hence version 2. That takes parallel gadgets that refinement
cannot tell apart but are not isomorphic (two 6-node layers joined as one 12-cycle or as
two 6-cycles: 8 of them alternating, 97 nodes, gave up in version 1). Their leaves grow
exponentially with their number: version 2 gives up past :data:`_MAX_WORK` units of search
work (neighbours visited in refinement, nodes and edges of each leaf form and of each
automorphism check; 12 such gadgets, a few seconds). The form is then the stable
refinement of step 2, marked "wl": equal for isomorphic genotypes that both give up
(whether one gives up can depend on node order), but non-isomorphic graphs that
refinement cannot tell apart collide. Symmetric families of alike, isomorphic parts
(parallel branches or chains, fully connected layers) stay fast: scripts/bench_hash.py
times them under a second at 5,000 nodes.

Changing anything here changes stored hashes: bump :data:`HASH_VERSION`.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

from nas_skip.genotype._parse import INPUT
from nas_skip.genotype._partition import Adjacency, Partition
from nas_skip.genotype._search import Search

if TYPE_CHECKING:
    from nas_skip.genotype._genotype import Genotype

HASH_VERSION = 2
#: bound on the search's work (module docstring): a few seconds of search
_MAX_WORK = 10_000_000


def _canonical(labels: list[str], edges: list[tuple[int, int, str]]) -> str:
    """The canonical form of a digraph with vertex ``labels`` and labelled ``edges``."""
    n = len(labels)
    node_rank = {s: i for i, s in enumerate(sorted(set(labels)))}
    edge_texts = sorted({lab for _, _, lab in edges})
    edge_rank = {s: i for i, s in enumerate(edge_texts)}
    ranks = [node_rank[s] for s in labels]
    ins: Adjacency = [[] for _ in range(n)]
    outs: Adjacency = [[] for _ in range(n)]
    for u, v, text in edges:
        lab = edge_rank[text]
        ins[v].append((lab, u))
        outs[u].append((lab, v))
    twin_ids: dict[tuple[object, ...], int] = {}
    twin = [
        twin_ids.setdefault((ranks[v], tuple(sorted(ins[v])), tuple(sorted(outs[v]))), v)
        for v in range(n)
    ]
    part = Partition(ranks, twin, ins, outs)
    part.refine_all()

    def form(order: list[int]) -> str:
        index = [0] * n
        for i, v in enumerate(order):
            index[v] = i
        # edges sorted by (src, dst) position; at most one edge per (src, dst)
        es: list[tuple[int, int, str]] = []
        for i, u in enumerate(order):
            if outs[u]:
                row = sorted([(index[w], lab) for lab, w in outs[u]])
                es.extend([(i, j, edge_texts[lab]) for j, lab in row])
        return json.dumps([[labels[v] for v in order], es], separators=(",", ":"))

    root = [part.colour(v) for v in range(n)]
    found = Search(part, ranks, form, n + len(edges), _MAX_WORK).run()
    if found is not None:
        return found
    rank = {c: i for i, c in enumerate(sorted(set(root)))}  # too much work: stable colours
    wl_edges = sorted((rank[root[u]], rank[root[v]], text) for u, v, text in edges)
    nodes = sorted((rank[root[v]], labels[v]) for v in range(n))
    return "wl" + json.dumps([nodes, wl_edges], separators=(",", ":"))


def canonical_form(genotype: Genotype) -> str:
    """The canonical text form that :func:`canonical_hash` digests."""
    ids = [INPUT, *(node.id for node in genotype.nodes)]
    index = {v: i for i, v in enumerate(ids)}
    domain = ["sequence"] if genotype.sequence else []  # v2's form for the others unchanged
    labels = [json.dumps(["input", list(genotype.input_shape), *domain])]
    for node in genotype.nodes:
        params = sorted(genotype.node_params[node.id].items())
        tag = "output" if node.id == genotype.output else ""
        labels.append(json.dumps([node.op, params, tag]))
    plain: dict[tuple[str, str], str] = {}  # the labels of edges without parameters
    edges: list[tuple[int, int, str]] = []
    for plan in genotype.plans.values():
        for merge in (*plan.base, *plan.additive):
            e, resolved = merge.edge, merge.shortcut.resolved
            given = genotype.edge_params[e.src, e.dst]
            if given:  # not cached: 0.0 == -0.0 as keys, not as text
                text = json.dumps([e.kind, resolved, sorted(given.items())])
            else:
                text = plain.get((e.kind, resolved), "")
                if not text:
                    text = plain[e.kind, resolved] = json.dumps([e.kind, resolved, []])
            edges.append((index[e.src], index[e.dst], text))
    return _canonical(labels, edges)


def canonical_hash(genotype: Genotype) -> str:
    """``"v<HASH_VERSION>:<32 hex digits>"``, equal exactly for isomorphic genotypes."""
    digest = hashlib.sha256(canonical_form(genotype).encode()).hexdigest()[:32]
    return f"v{HASH_VERSION}:{digest}"
