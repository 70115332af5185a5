"""Ordered partitions of a labelled digraph's vertices, refined and undone cheaply (no torch).

The canonical hash (``_hash.py``) needs the colour refinement of its version 1 exactly:
every round, each cell is sorted by the signature ``(sorted in-edges, sorted out-edges)``,
an edge written ``(edge label, colour of the other end)``, with colours ordered as the cells
are. Recomputing every signature every round costs O(m log m) a round, and a chain of n
nodes needs n/2 rounds. This module gets the same order from the cells that split in the
round before, Hopcroft-style: every vertex of a cell has the same number of ``label``
neighbours in each cell of the round before, so two of them compare by how those
neighbours spread over the pieces of the cells that split, and the largest piece of each
split need not be visited (its count is the rest). A vertex takes part in a small piece
O(log n) times, so refinement costs O(m log n) in all.

Cells are ranges of a virtual array: a cell's colour is its ``start``; the rest of a
split cell keeps its id, so the untouched vertices never move. Every change is logged on
a trail that :meth:`Partition.undo_to` replays backwards, so that the search can go back
up its tree at the cost of coming down.
"""

from __future__ import annotations

from collections.abc import Sequence
from heapq import heappop, heappush

#: per vertex: (edge label rank, the vertex at the other end)
Adjacency = list[list[tuple[int, int]]]
#: a trail entry: (cell, its start and size before, [(new cell, the vertices moved to it)])
Entry = tuple[int, int, int, list[tuple[int, list[int]]]]
Key = tuple[tuple[int, ...], ...]
#: the sort key of a vertex with no neighbour in a small piece: all counts zero
_REST: Key = ((1,),)


class Partition:
    """An ordered partition with a trail of splits; see the module docstring.

    ``members[c]`` maps a twin class (vertices with the same label and the same labelled
    neighbours, which no refinement separates) to the vertices of that class in cell ``c``.
    ``work`` counts the neighbours visited, a measure the search bounds.
    """

    def __init__(
        self, labels: Sequence[int], twin: Sequence[int], ins: Adjacency, outs: Adjacency
    ):
        self.ins, self.outs, self.twin = ins, outs, twin
        self.cell_of = [0] * len(labels)
        self.start: list[int] = []
        self.size: list[int] = []
        self.members: list[dict[int, set[int]]] = []
        self.trail: list[Entry] = []
        self.heap: list[tuple[int, int]] = []  # (start, cell), some stale: see target()
        self.work = 0
        classes: dict[int, list[int]] = {}
        for v, label in enumerate(labels):
            classes.setdefault(label, []).append(v)
        pos = 0
        for label in sorted(classes):
            self._new_cell(pos, classes[label])
            pos += len(classes[label])

    # --- cells ------------------------------------------------------------------------------
    def _new_cell(self, start: int, vs: list[int]) -> int:
        c = len(self.start)
        self.start.append(start)
        self.size.append(len(vs))
        members: dict[int, set[int]] = {}
        for v in vs:
            members.setdefault(self.twin[v], set()).add(v)
            self.cell_of[v] = c
        self.members.append(members)
        if len(vs) > 1:
            heappush(self.heap, (start, c))
        return c

    def _carve(self, c: int, vs: list[int], start: int) -> int:
        """Move ``vs`` out of cell ``c`` into a new cell at ``start``."""
        members, twin = self.members[c], self.twin
        for v in vs:
            group = members[twin[v]]
            group.discard(v)
            if not group:
                del members[twin[v]]
        self.size[c] -= len(vs)
        return self._new_cell(start, vs)

    def split(self, c: int, groups: list[list[int] | None]) -> list[int]:
        """Split cell ``c`` into ``groups`` in this order (``None``: the vertices not listed).

        The unlisted vertices, else the largest group, keep the cell's id. Returns the
        pieces' cells in order.
        """
        start, size = self.start[c], self.size[c]
        listed = sum(len(g) for g in groups if g is not None)
        lengths = [size - listed if g is None else len(g) for g in groups]
        keep = groups.index(None) if None in groups else lengths.index(max(lengths))
        moved: list[tuple[int, list[int]]] = []
        pieces: list[int] = []
        pos = kept_at = start
        for i, group in enumerate(groups):
            if i == keep:
                pieces.append(c)
                kept_at = pos
            else:
                assert group is not None
                new = self._carve(c, group, pos)
                moved.append((new, group))
                pieces.append(new)
            pos += lengths[i]
        self.trail.append((c, start, size, moved))
        self.start[c] = kept_at
        if self.size[c] > 1:
            heappush(self.heap, (kept_at, c))
        return pieces

    def individualise(self, v: int, colour: int) -> list[int]:
        """Give ``v`` a cell of its own at ``colour`` (before every cell when negative);
        return the pieces of its old cell."""
        c = self.cell_of[v]
        self.trail.append((c, self.start[c], self.size[c], []))
        new = self._carve(c, [v], colour)
        self.trail[-1][3].append((new, [v]))
        return [new, c]

    def undo_to(self, mark: int) -> None:
        """Undo every split after the first ``mark`` trail entries."""
        start, size, members, cell_of, twin = (
            self.start,
            self.size,
            self.members,
            self.cell_of,
            self.twin,
        )
        while len(self.trail) > mark:
            c, was_start, was_size, moved = self.trail.pop()
            back = members[c]
            for new, vs in reversed(moved):
                assert new == len(start) - 1, "cells are undone in the order made"
                start.pop()
                size.pop()
                members.pop()
                for v in vs:
                    back.setdefault(twin[v], set()).add(v)
                    cell_of[v] = c
            start[c], size[c] = was_start, was_size
            if was_size > 1:
                heappush(self.heap, (was_start, c))

    def target(self) -> int | None:
        """The first cell (least start) of more than one vertex, or None when discrete."""
        heap, start, size = self.heap, self.start, self.size
        while heap:
            s, c = heap[0]
            if c < len(start) and start[c] == s and size[c] > 1:
                return c
            heappop(heap)  # stale: every change that makes a cell valid pushes it again
        return None

    def colour(self, v: int) -> int:
        return self.start[self.cell_of[v]]

    # --- refinement ---------------------------------------------------------------------------
    def refine_all(self) -> None:
        """Refine from the label classes: one round of full signatures, then :meth:`refine`."""
        colour = [self.colour(v) for v in range(len(self.cell_of))]
        cells: dict[int, dict[tuple[object, ...], list[int]]] = {}
        for v in range(len(colour)):
            key = (
                tuple(sorted((lab, colour[u]) for lab, u in self.ins[v])),
                tuple(sorted((lab, colour[w]) for lab, w in self.outs[v])),
            )
            cells.setdefault(self.cell_of[v], {}).setdefault(key, []).append(v)
        splits: list[tuple[int, list[list[int] | None]]] = [
            (c, [g[k] for k in sorted(g)]) for c, g in cells.items() if len(g) > 1
        ]
        pending = [self.split(c, groups) for c, groups in splits]
        self.refine(pending)

    def refine(self, pending: list[list[int]]) -> None:
        """Refine until stable, given the pieces of each cell split in the last round.

        The order is that of sorting every cell by full signatures each round (module
        docstring). For a vertex, the sorted full signature compares like the vector of
        negated counts of neighbours per (direction, edge label, colour), compared from the
        least colour; only the entries of split cells' pieces differ within a cell, and the
        largest piece's entry is the negated rest (here: the sum of the others, the same
        up to a constant in a cell). A sparse vector of such entries becomes a key that
        sorts like the dense one: an entry (pos, value) becomes ``(0, pos, value)`` when
        negative and ``(2, -pos, value)`` when positive, and the vector ends with ``(1,)``.
        """
        size, members, cell_of = self.size, self.members, self.cell_of
        ins, outs = self.ins, self.outs
        while pending:
            big_of: dict[int, int] = {}  # small piece -> the largest piece of its split
            for pieces in pending:
                big = max(pieces, key=size.__getitem__)
                for p in pieces:
                    if p != big:
                        big_of[p] = big
            counts: dict[int, dict[tuple[int, int, int], int]] = {}
            visited = 0
            for p in big_of:
                for group in members[p].values():
                    for u in group:
                        for direction, edges in ((0, outs[u]), (1, ins[u])):
                            visited += len(edges)
                            for lab, w in edges:
                                entry = (direction, lab, p)
                                seen = counts.get(w)
                                if seen is None:
                                    counts[w] = {entry: 1}
                                else:
                                    seen[entry] = seen.get(entry, 0) + 1
            self.work += visited + len(counts)
            touched: dict[int, list[int]] = {}
            for w in counts:
                touched.setdefault(cell_of[w], []).append(w)
            splits: list[tuple[int, list[list[int] | None]]] = []
            for c, ws in touched.items():
                if size[c] == 1:
                    continue
                keyed: dict[Key, list[int]] = {}
                for w in ws:
                    keyed.setdefault(self._key(counts[w], big_of), []).append(w)
                groups: list[tuple[Key, list[int] | None]] = list(keyed.items())
                if len(ws) < size[c]:
                    groups.append((_REST, None))  # the untouched vertices
                if len(groups) > 1:
                    groups.sort(key=lambda item: item[0])
                    splits.append((c, [g for _, g in groups]))
            pending = [self.split(c, groups) for c, groups in splits]

    def _key(self, counts: dict[tuple[int, int, int], int], big_of: dict[int, int]) -> Key:
        start = self.start
        entries: list[tuple[tuple[int, int, int], int]] = []
        rest: dict[tuple[int, int, int], int] = {}
        for (direction, lab, p), k in counts.items():
            entries.append(((direction, lab, start[p]), -k))
            group = (direction, lab, big_of[p])
            rest[group] = rest.get(group, 0) + k
        for (direction, lab, big), k in rest.items():
            entries.append(((direction, lab, start[big]), k))
        entries.sort()
        key: list[tuple[int, ...]] = [
            (0, *pos, value) if value < 0 else (2, -pos[0], -pos[1], -pos[2], value)
            for pos, value in entries
        ]
        key.append((1,))
        return tuple(key)
