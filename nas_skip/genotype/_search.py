"""Individualisation-refinement search for the canonical hash (see ``_hash.py``; no torch).

A depth-first search without recursion over the tree of version 1: at each node the first
cell of several vertices is the target, and each of its vertices in turn is individualised
(put before every cell) and the partition refined; a leaf is a discrete partition, and
the canonical form is the least leaf form. Children that an automorphism fixing the path
maps to an explored child are skipped, which changes nothing but the work (the kinds of
pruning are listed in ``_hash.py``). The trail of :class:`Partition` takes the search back
up; a stack of frames, one per node with a choice, replaces recursion.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heapify, heappop

from nas_skip.genotype._partition import Adjacency, Partition

#: a child's refined partition next to its parent's: (vertex -> (its cell in the parent,
#: its colour now), cell of the parent that split -> (start, size, start, size) before/after)
Child = tuple[dict[int, tuple[int, int]], dict[int, tuple[int, int, int, int]]]


class Orbits:
    """Union-find over twin classes, with the number of classes in each set."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}
        self.count: dict[int, int] = {}

    def find(self, x: int) -> int:
        parent, root = self.parent, x
        while parent.get(root, root) != root:
            root = parent[root]
        while x != root:
            parent[x], x = root, parent[x]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            if self.count.get(ra, 1) < self.count.get(rb, 1):
                ra, rb = rb, ra
            self.parent[rb] = ra
            self.count[ra] = self.count.get(ra, 1) + self.count.pop(rb, 1)


class _Frame:
    """A node of the search tree whose target cell holds several twin classes."""

    def __init__(self, depth: int, mark: int, cell: int, classes: list[int], first: bool):
        self.depth, self.mark, self.cell = depth, mark, cell
        heapify(classes)
        self.classes = classes  # the cell's twin classes not tried yet, least id first
        self.explored: list[int] = []  # twin classes whose subtrees were entered
        self.on_first_path = first
        self.child: Child | None = None  # the first child's refinement
        self.orbits: Orbits | None = None  # off the first path: automorphisms fixing path
        self.gens_seen = 0


class Search:
    """Individualisation-refinement over a refined :class:`Partition` (module docstring)."""

    def __init__(
        self,
        part: Partition,
        labels: list[int],
        form: Callable[[list[int]], str],
        cost: int,
        budget: int,
    ) -> None:
        """``labels``: vertex label ranks; ``form(order)``: a leaf's form; ``cost``: its work;
        ``budget``: the work after which :meth:`run` gives up."""
        self.part, self.labels, self.form = part, labels, form
        self.cost, self.budget = cost, budget
        self.sorted_ins: dict[int, list[tuple[int, int]]] = {}  # filled as needed
        self.sorted_outs: dict[int, list[tuple[int, int]]] = {}
        self.path: list[int] = []
        self.on_path: set[int] = set()
        # the first and the least leaf: (form, order, path)
        self.first: tuple[str, list[int], list[int]] | None = None
        self.best: tuple[str, list[int], list[int]] | None = None
        self.back: int | None = None  # after a leaf: the depth to go back to
        self.gens: list[dict[int, int]] = []
        self.orbits = Orbits()  # under every automorphism found (first path: all fix it)

    def run(self) -> str | None:
        """The canonical form, or None once the work passes the budget."""
        part = self.part
        root = self._enter(True)
        stack = [root] if root is not None else []
        while stack:
            if part.work > self.budget:
                return None
            f = stack[-1]
            part.undo_to(f.mark)
            for v in self.path[f.depth :]:
                self.on_path.discard(v)
            del self.path[f.depth :]
            chosen = self._next(f)
            if chosen is None:
                stack.pop()
                continue
            mark = len(part.trail)
            part.refine([self._individualise(chosen)])
            child = self._child(mark)
            if f.child is None:
                f.child = child
            elif self._automorphism(f.child, child):
                continue
            f.explored.append(part.twin[chosen])
            frame = self._enter(f.on_first_path and len(f.explored) == 1)
            if frame is not None:
                stack.append(frame)
            elif self.back is not None:
                while stack and stack[-1].depth > self.back:
                    stack.pop()
        return self.best[0] if self.best is not None else None

    def _individualise(self, v: int) -> list[int]:
        self.path.append(v)
        self.on_path.add(v)
        return self.part.individualise(v, -len(self.path))

    def _enter(self, on_first_path: bool) -> _Frame | None:
        """Make twin cells discrete; return the frame of the next choice, or None at a leaf."""
        part = self.part
        while True:
            c = part.target()
            if c is None:
                self._leaf()
                return None
            members = part.members[c]
            if len(members) > 1:
                return _Frame(len(self.path), len(part.trail), c, list(members), on_first_path)
            (twins,) = members.values()
            for v in sorted(twins)[:-1]:  # each refines nothing: all neighbours see all twins
                self._individualise(v)
            part.work += len(twins)

    def _next(self, f: _Frame) -> int | None:
        """The next child to explore: one per twin class, none in an explored orbit."""
        members = self.part.members[f.cell]
        orbits = self._orbits(f)
        roots = {orbits.find(t) for t in f.explored}
        if sum(orbits.count.get(r, 1) for r in roots) >= len(members):
            return None  # the orbits explored cover the cell (they lie in it)
        while f.classes:
            # least first, as version 1 did: isomorphic subtrees then tend to be walked alike,
            # so that their first leaves match (ids are least node indexes: document order)
            t = heappop(f.classes)
            if orbits.find(t) not in roots:
                return min(members[t])
        return None

    def _orbits(self, f: _Frame) -> Orbits:
        if f.on_first_path:  # every automorphism found since fixes the first path's prefix
            return self.orbits
        if f.orbits is None:
            f.orbits = Orbits()
        twin = self.part.twin
        for gen in self.gens[f.gens_seen :]:
            self.part.work += len(gen)
            if not any(v in self.on_path for v in gen):  # fixes the path to f
                for a, b in gen.items():
                    f.orbits.union(twin[a], twin[b])
        f.gens_seen = len(self.gens)
        return f.orbits

    def _add(self, gen: dict[int, int]) -> None:
        self.gens.append(gen)
        twin = self.part.twin
        for a, b in gen.items():
            self.orbits.union(twin[a], twin[b])

    def _leaf(self) -> None:
        """Compare the leaf with the first and the best: an equal form gives an automorphism,
        and the search goes back to where the paths parted (the earlier leaf's branch there
        was explored, and this branch mirrors it)."""
        part = self.part
        order = sorted(range(len(part.cell_of)), key=part.colour)
        form = self.form(order)
        part.work += self.cost
        self.back = None
        leaf = (form, order, list(self.path))
        if self.first is None or self.best is None:
            self.first = self.best = leaf
            return
        for known in (self.first, self.best):
            if form == known[0]:
                gen = {a: b for a, b in zip(known[1], order, strict=True) if a != b}
                self._add(gen)
                path, other = self.path, known[2]
                if len(path) == len(other) and all(
                    gen.get(a, a) == b for a, b in zip(other, path, strict=True)
                ):  # it maps the earlier path to this one: the branches mirror each other
                    common = 0
                    while common < len(path) and path[common] == other[common]:
                        common += 1
                    self.back = common
                return
        if form < self.best[0]:
            self.best = leaf

    def _child(self, mark: int) -> Child:
        """What the refinement since trail entry ``mark`` changed."""
        part = self.part
        moved: dict[int, tuple[int, int]] = {}
        changed: dict[int, tuple[int, int, int, int]] = {}
        n_cells = len(part.start) - sum(len(e[3]) for e in part.trail[mark:])
        for c, start, size, pieces in part.trail[mark:]:
            if c < n_cells and c not in changed:
                changed[c] = (start, size, 0, 0)
            for _, vs in pieces:
                for v in vs:
                    if v not in moved:
                        moved[v] = (c, 0)
        for v, (c, _) in moved.items():
            moved[v] = (c, part.colour(v))
        for c, (start, size, _, _) in changed.items():
            changed[c] = (start, size, part.start[c], part.size[c])
        return moved, changed

    def _automorphism(self, a: Child, b: Child) -> bool:
        """Whether pairing children ``a`` (explored) and ``b`` (the partition now) by colour
        gives an automorphism; if so, record it. It fixes the path: those are not moved."""
        part = self.part
        (moved_a, changed_a), (moved_b, changed_b) = a, b
        for c in changed_a.keys() | changed_b.keys():
            before = changed_b[c][:2] if c in changed_b else (part.start[c], part.size[c])
            after_a = changed_a[c][2:] if c in changed_a else before
            after_b = changed_b[c][2:] if c in changed_b else before
            if after_a != after_b:
                return False  # not the same shape
        colour_a: dict[int, int] = {}  # the vertices whose colour differs: in a and in b
        colour_b: dict[int, int] = {}
        for v in moved_a.keys() | moved_b.keys():
            in_b = part.colour(v)  # the partition now is b's
            if v in moved_a:
                in_a = moved_a[v][1]
            else:  # v stayed in its parent cell in a: that cell's start in a
                c = moved_b[v][0]
                in_a = changed_a[c][2] if c in changed_a else changed_b.get(c, (part.start[c],))[0]
            if in_a != in_b:
                colour_a[v], colour_b[v] = in_a, in_b
        part.work += len(colour_a)
        gen = pair(colour_a, colour_b, part.ins, part.outs)
        if gen is None:
            return False
        labels, ins, outs = self.labels, part.ins, part.outs
        for v, w in gen.items():
            part.work += 1 + len(ins[v]) + len(outs[v])
            if labels[v] != labels[w] or len(ins[v]) != len(ins[w]):
                return False
            if w not in self.sorted_ins:
                self.sorted_ins[w], self.sorted_outs[w] = sorted(ins[w]), sorted(outs[w])
            if (
                sorted([(lab, gen.get(u, u)) for lab, u in ins[v]]) != self.sorted_ins[w]
                or sorted([(lab, gen.get(u, u)) for lab, u in outs[v]]) != self.sorted_outs[w]
            ):
                return False
        self._add(gen)
        return True


def pair(
    colour_a: dict[int, int], colour_b: dict[int, int], ins: Adjacency, outs: Adjacency
) -> dict[int, int] | None:
    """A permutation of the vertices of ``colour_a`` (those whose colour differs between
    partitions a and b) taking each one's colour in a to its image's colour in b.

    Vertices alone in their colour pair first; then neighbours that a pair forces (the
    only ones of their edge label and colour); when none is forced, the least of a colour
    pair. The caller checks that the result is an automorphism. None: colours differ in size.
    """
    todo_a: dict[int, list[int]] = {}
    todo_b: dict[int, list[int]] = {}
    for v, c in colour_a.items():
        todo_a.setdefault(c, []).append(v)
    for v, c in colour_b.items():
        todo_b.setdefault(c, []).append(v)
    if any(len(vs) != len(todo_b.get(c, ())) for c, vs in todo_a.items()):
        return None
    gen: dict[int, int] = {}
    used: set[int] = set()
    queue: list[tuple[int, int]] = []

    def match(x: int, y: int) -> None:
        gen[x] = y
        used.add(y)
        queue.append((x, y))

    for c, xs in todo_a.items():
        if len(xs) == 1:
            match(xs[0], todo_b[c][0])
        else:
            xs.sort()
            todo_b[c].sort()
    colours = sorted(c for c, xs in todo_a.items() if len(xs) > 1)
    at = dict.fromkeys(colours, 0)  # how far the choices went in todo_a[c] and todo_b[c]
    at_b = dict.fromkeys(colours, 0)
    while True:
        while queue:
            x, y = queue.pop()
            for adjacency in (ins, outs):
                near_x: dict[tuple[int, int], list[int]] = {}
                for lab, u in adjacency[x]:
                    if u in colour_a and u not in gen:
                        near_x.setdefault((lab, colour_a[u]), []).append(u)
                if not near_x:
                    continue
                near_y: dict[tuple[int, int], list[int]] = {}
                for lab, u in adjacency[y]:
                    if u in colour_b and u not in used:
                        near_y.setdefault((lab, colour_b[u]), []).append(u)
                for key, us in near_x.items():
                    ws = near_y.get(key, [])
                    if len(us) != len(ws):
                        return None
                    if len(us) == 1:
                        match(us[0], ws[0])
        while colours:  # nothing forced: pair the least unpaired vertices of a colour
            c = colours[-1]
            xs, ys = todo_a[c], todo_b[c]
            while at[c] < len(xs) and xs[at[c]] in gen:
                at[c] += 1
            while at_b[c] < len(ys) and ys[at_b[c]] in used:
                at_b[c] += 1
            if at[c] < len(xs):
                match(xs[at[c]], ys[at_b[c]])
                break
            colours.pop()
        if not queue:
            return gen
