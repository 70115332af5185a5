"""The NAS-Bench-201 cell (Dong & Yang 2020) as a nas-skip genotype, and back (pure data).

A NAS-Bench-201 cell has 4 nodes; each of its 6 edges ``i -> j`` (``i < j``) carries one
of 5 ops, and node ``j`` is the sum of its incoming edges' outputs:

- ``nor_conv_3x3`` / ``nor_conv_1x1``: ReLU, convolution, batch norm, which here is an op
  node (``relu_conv3x3_bn`` / ``relu_conv1x1_bn``) between ``i`` and ``j``;
- ``avg_pool_3x3``: an ``avgpool3x3`` op node;
- ``skip_connect``: an identity ``add`` edge ``i -> j``;
- ``none``: no edge.

Cell node ``j`` (1..3) is an ``identity`` node whose incoming edges are all ``add``: its
input is their sum. The cell is stacked as NAS-Bench-201's macro skeleton: a 3x3
convolution stem, then stages of ``cells_per_stage`` cells of width ``width * 2**k``
joined by residual reduction blocks (ReLU-conv-BN twice, the first with stride 2, and a
projection shortcut), then batch norm, ReLU, global pooling and a linear classifier.

An op whose output never reaches node 3, or whose input no path from node 0 reaches, is
*dead*: NAS-Bench-201 computes it, but it cannot change the cell's output (one fed by
nothing adds at most its batch norm's learned bias), so the genotype, which describes the
compiled network, leaves it out (as NAS-Bench-101 prunes dead vertices). A cell whose
node 3 no path reaches outputs zeros (a ``zero`` node), as in NAS-Bench-201.
:func:`live_cell` says which cell a genotype stands for: the cell with its dead ops
replaced by ``none``; :func:`cell_of` reads it back from the genotype. The 15,625 cells
are 9,445 live cells; their genotypes fall into 8,765 isomorphism classes, where
NAS-Bench-201's own :func:`unique_str` counts 6,466 (see the README).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nas_skip.errors import NasSkipError
from nas_skip.genotype import Genotype

#: NAS-Bench-201's op names, in its own order (the tables index ops by this position)
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: the cell's edges in the order of the arch string (and of the tables' ``Op0`` .. ``Op5``)
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
#: the registry op of each NAS-Bench-201 op that is a node
NODE_OPS = {
    "nor_conv_3x3": "relu_conv3x3_bn",
    "nor_conv_1x1": "relu_conv1x1_bn",
    "avg_pool_3x3": "avgpool3x3",
}
_OP_OF_NODE = {v: k for k, v in NODE_OPS.items()}
#: the edge parameter names of the space (``edge:0->2``)
PARAM_NAMES = tuple(f"edge:{i}->{j}" for i, j in EDGES)

Cell = tuple[str, ...]  # 6 NAS-Bench-201 op names, in EDGES order


class CellError(NasSkipError, ValueError):
    """An arch string, a cell or a genotype is not a NAS-Bench-201 cell; names what."""


def check_cell(cell: Any) -> Cell:
    """``cell`` as a :data:`Cell`, or a :class:`CellError` naming the bad edge."""
    if not isinstance(cell, list | tuple) or len(cell) != len(EDGES):
        raise CellError(f"a NAS-Bench-201 cell has {len(EDGES)} edge ops, got {cell!r:.80}")
    for (i, j), op in zip(EDGES, cell, strict=True):
        if op not in NB201_OPS:
            raise CellError(f"edge {i}->{j}: unknown op {op!r:.40} (ops: {', '.join(NB201_OPS)})")
    return tuple(cell)


def arch_string(cell: Cell) -> str:
    """The standard arch string, ``|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...~2|``."""
    cell = check_cell(cell)
    ops = dict(zip(EDGES, cell, strict=True))
    nodes = ["|" + "|".join(f"{ops[i, j]}~{i}" for i in range(j)) + "|" for j in (1, 2, 3)]
    return "+".join(nodes)


def parse_arch(text: str) -> Cell:
    """The cell of an arch string; :class:`CellError` naming the part at fault."""
    if not isinstance(text, str) or len(text) > 400:
        raise CellError(f"not a NAS-Bench-201 arch string: {text!r:.80}")
    nodes = text.split("+")
    if len(nodes) != 3:
        raise CellError(f"arch string {text!r:.80}: needs 3 nodes joined by '+'")
    ops: dict[tuple[int, int], str] = {}
    for j, node in enumerate(nodes, start=1):
        parts = node.split("|")
        if len(parts) != j + 2 or parts[0] or parts[-1]:
            raise CellError(f"arch string {text!r:.80}: node {j} must read |op~0|...|op~{j - 1}|")
        for i, part in enumerate(parts[1:-1]):
            op, _, src = part.partition("~")
            if src != str(i):
                raise CellError(f"arch string {text!r:.80}: node {j} input {i} reads {part!r}")
            ops[i, j] = op
    return check_cell(tuple(ops[e] for e in EDGES))


def cell_from_params(params: Mapping[str, Any], ops: tuple[str, ...]) -> Cell:
    """The cell of a trial's choices (``edge:0->1`` ...) in a space whose edges take
    ``ops``; with one op only, the edges are constants, not parameters."""
    cell = []
    for name in PARAM_NAMES:
        if name in params:
            cell.append(params[name])
        elif len(ops) == 1:
            cell.append(ops[0])
        else:
            raise CellError(f"the choices have no {name!r}")
    return check_cell(cell)


def live_cell(cell: Cell) -> Cell:
    """The cell with its dead ops replaced by ``none`` (the cell the genotype stands for).

    An op ``i -> j`` is live when a path of non-``none`` edges leads from node 0 to ``i``
    and from ``j`` to node 3; with no path from 0 to 3 at all, every op is dead.
    """
    cell = check_cell(cell)
    on = {e for e, op in zip(EDGES, cell, strict=True) if op != "none"}
    reach = {0}
    for i, j in EDGES:  # EDGES is in an order where every edge's source is settled first
        if (i, j) in on and i in reach:
            reach.add(j)
    back = {3}
    for i, j in reversed(EDGES):
        if (i, j) in on and j in back:
            back.add(i)
    live = [
        op if (i in reach and j in back) else "none"
        for (i, j), op in zip(EDGES, cell, strict=True)
    ]
    return tuple(live)


def unique_str(cell: Cell) -> str:
    """NAS-Bench-201's own identity of a cell (its ``to_unique_str(consider_zero=True)``):
    node 3 as an expression in which ``skip_connect`` passes its input through, ``none``
    and anything fed by zeros vanish, and sums are sorted. It identifies cells that compute
    the same *expression*, which merges cells whose graphs differ (a shared op used twice
    reads like two ops); :func:`nas_skip.genotype.canonical_hash` identifies graphs."""
    cell = check_cell(cell)
    ops = dict(zip(EDGES, cell, strict=True))
    nodes = {0: "0"}
    for j in (1, 2, 3):
        terms = []
        for i in range(j):
            op = ops[i, j]
            if op == "none" or nodes[i] == "#":
                terms.append("#")
            elif op == "skip_connect":
                terms.append(nodes[i])
            else:
                terms.append(f"({nodes[i]})@{op}")
        nodes[j] = "+".join(sorted(terms))
    return nodes[3]


# --- genotype documents ---------------------------------------------------------------------
def _cell_ids(stage: int, index: int) -> str:
    return f"s{stage}c{index}"


def network_doc(
    cell: Cell,
    input_shape: tuple[int, ...],
    classes: int,
    width: int = 16,
    stages: int = 3,
    cells_per_stage: int = 5,
) -> dict[str, Any]:
    """The genotype document of ``cell`` stacked in NAS-Bench-201's macro skeleton.

    Dead ops are left out (see :func:`live_cell`), so the document needs no pruning.
    """
    cell = live_cell(cell)
    nodes: list[dict[str, Any]] = [{"id": "stem", "op": "conv3x3_bn", "channels": width}]
    edges: list[dict[str, Any]] = [{"src": "input", "dst": "stem"}]
    prev = "stem"
    connected = any(op != "none" for op in cell)  # a live cell has no op or reaches node 3
    for k in range(1, stages + 1):
        c = width * 2 ** (k - 1)
        if k > 1:  # residual reduction block
            r = f"r{k}"
            nodes += [
                {"id": f"{r}_a", "op": "relu_conv3x3_bn", "channels": c, "stride": 2},
                {"id": f"{r}_b", "op": "relu_conv3x3_bn", "channels": c},
                {"id": r, "op": "identity"},
            ]
            edges += [
                {"src": prev, "dst": f"{r}_a"},
                {"src": f"{r}_a", "dst": f"{r}_b"},
                {"src": f"{r}_b", "dst": r},
                {"src": prev, "dst": r, "kind": "add", "align": "projection"},
            ]
            prev = r
        for index in range(1, cells_per_stage + 1):
            name = _cell_ids(k, index)
            if not connected:
                nodes.append({"id": f"{name}_n3", "op": "zero"})
                edges.append({"src": prev, "dst": f"{name}_n3"})
                prev = f"{name}_n3"
                continue
            ids = {0: prev}
            for j in (1, 2, 3):
                if any(op != "none" for (_, d), op in zip(EDGES, cell, strict=True) if d == j):
                    ids[j] = f"{name}_n{j}"
                    nodes.append({"id": ids[j], "op": "identity"})
            for (i, j), op in zip(EDGES, cell, strict=True):
                if op == "skip_connect":
                    edges.append({"src": ids[i], "dst": ids[j], "kind": "add"})
                elif op != "none":
                    node = f"{name}_e{i}{j}"
                    spec: dict[str, Any] = {"id": node, "op": NODE_OPS[op]}
                    if op != "avg_pool_3x3":
                        spec["channels"] = c
                    nodes.append(spec)
                    edges += [
                        {"src": ids[i], "dst": node},
                        {"src": node, "dst": ids[j], "kind": "add"},
                    ]
            prev = ids[3]
    nodes += [{"id": "lastact", "op": "bn_relu"}, {"id": "head", "op": "gap_linear",
                                                     "classes": classes}]  # fmt: skip
    edges += [{"src": prev, "dst": "lastact"}, {"src": "lastact", "dst": "head"}]
    return {
        "schema": 1,
        "input": {"shape": list(input_shape)},
        "nodes": nodes,
        "edges": edges,
        "output": "head",
    }


def cell_of(genotype: Genotype) -> Cell:
    """The (live) cell a genotype of :func:`network_doc` stands for; the inverse of
    ``network_doc`` up to dead ops (``network_doc(cell_of(g)) == g``, checked).

    Raises:
        CellError: the genotype is not NAS-Bench-201's skeleton of one cell.
    """
    nodes = {n.id: n for n in genotype.nodes}
    if "stem" not in nodes or "s1c1_n3" not in nodes or genotype.output != "head":
        raise CellError("not a NAS-Bench-201 genotype: it has no stem, cell s1c1 or head")
    if nodes["s1c1_n3"].op == "zero":
        cell: Cell = ("none",) * len(EDGES)
    else:
        ids = {0: "stem", 1: "s1c1_n1", 2: "s1c1_n2", 3: "s1c1_n3"}
        edges = {(e.src, e.dst): e.kind for e in genotype.edges}
        ops = []
        for i, j in EDGES:
            node = nodes.get(f"s1c1_e{i}{j}")
            if node is not None:
                ops.append(_OP_OF_NODE.get(node.op, "?"))
            elif edges.get((ids[i], ids[j])) == "add":
                ops.append("skip_connect")
            else:
                ops.append("none")
        if "?" in ops:
            raise CellError("not a NAS-Bench-201 genotype: a cell edge holds an op it lacks")
        cell = tuple(ops)
    head = genotype.node_params["head"]
    stages = 1 + sum(1 for n in nodes if n.startswith("r") and n[1:].isdigit())
    cells = sum(1 for n in nodes if n.startswith("s1c") and n.endswith("_n3"))
    width = genotype.node_params["stem"].get("channels", 0)
    doc = network_doc(cell, genotype.input_shape, int(head["classes"]), int(width), stages,
                      cells)  # fmt: skip
    rebuilt = Genotype.from_json({**doc, **({"name": genotype.name} if genotype.name else {})})
    if rebuilt != genotype:
        raise CellError(
            f"not a NAS-Bench-201 genotype: it differs from the skeleton of cell "
            f"{arch_string(cell)}"
        )
    return cell
