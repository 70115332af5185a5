"""Partition: Hopcroft-style refinement orders cells as full-signature rounds do; undo."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from nas_skip.genotype._partition import Adjacency, Partition

Graph = tuple[list[int], Adjacency, Adjacency]


def random_graph(seed: int) -> Graph:
    """A random digraph (cycles allowed) with few vertex and edge labels."""
    rng = random.Random(seed)
    n = rng.randint(1, 24)
    labels = [rng.randrange(2) for _ in range(n)]
    ins: Adjacency = [[] for _ in range(n)]
    outs: Adjacency = [[] for _ in range(n)]
    density = rng.choice([0.05, 0.1, 0.2, 0.4])
    for u in range(n):
        for v in range(n):
            if u != v and rng.random() < density:
                lab = rng.randrange(2)
                ins[v].append((lab, u))
                outs[u].append((lab, v))
    return labels, ins, outs


def partition(graph: Graph) -> Partition:
    labels, ins, outs = graph
    twin_ids: dict[tuple[object, ...], int] = {}
    twin = [
        twin_ids.setdefault((labels[v], tuple(sorted(ins[v])), tuple(sorted(outs[v]))), v)
        for v in range(len(labels))
    ]
    return Partition(labels, twin, ins, outs)


def reference(colours: list[int], graph: Graph) -> list[int]:
    """Version 1's refinement: sort all signatures every round; colours are ranks."""
    _, ins, outs = graph
    n_classes = len(set(colours))
    while True:
        sigs = [
            (
                colours[v],
                tuple(sorted((lab, colours[u]) for lab, u in ins[v])),
                tuple(sorted((lab, colours[w]) for lab, w in outs[v])),
            )
            for v in range(len(colours))
        ]
        ranks = {s: i for i, s in enumerate(sorted(set(sigs)))}
        colours = [ranks[s] for s in sigs]
        if len(ranks) == n_classes:
            return colours
        n_classes = len(ranks)


def ranks(part: Partition) -> list[int]:
    starts = [part.colour(v) for v in range(len(part.cell_of))]
    rank = {s: i for i, s in enumerate(sorted(set(starts)))}
    return [rank[s] for s in starts]


def state(part: Partition) -> tuple[object, ...]:
    return (
        list(part.cell_of),
        list(part.start),
        list(part.size),
        [{t: set(vs) for t, vs in m.items()} for m in part.members],
    )


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**9))
def test_refinement_orders_cells_as_full_rounds_do(seed: int) -> None:
    graph = random_graph(seed)
    part = partition(graph)
    labelled = state(part)
    label_rank = {lab: i for i, lab in enumerate(sorted(set(graph[0])))}
    part.refine_all()
    mark = len(part.trail)
    expected = reference([label_rank[lab] for lab in graph[0]], graph)
    assert ranks(part) == expected
    root = state(part)
    # individualise vertices of the first non-singleton cells, as the search does
    rng = random.Random(seed)
    for depth in range(4):
        cell = part.target()
        if cell is None:
            break
        v = rng.choice(sorted(vs for group in part.members[cell].values() for vs in group))
        colours = list(expected)
        colours[v] = -1  # version 1: before every cell
        expected = reference(colours, graph)
        part.refine([part.individualise(v, -(depth + 1))])
        assert ranks(part) == expected
        assert sorted(part.members[part.cell_of[v]][part.twin[v]]) == [v]
    part.undo_to(mark)
    assert state(part) == root
    part.undo_to(0)
    assert state(part) == labelled


def test_a_chain_refines_from_both_ends_in_few_visits() -> None:
    # n/2 rounds, but each round only looks at the neighbours of the pieces split before
    n = 4000
    labels = [0] * n
    ins: Adjacency = [[] for _ in range(n)]
    outs: Adjacency = [[] for _ in range(n)]
    for v in range(1, n):
        ins[v].append((0, v - 1))
        outs[v - 1].append((0, v))
    part = partition((labels, ins, outs))
    part.refine_all()
    assert part.target() is None  # discrete
    assert part.work < 20 * n
