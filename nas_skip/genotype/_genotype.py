"""The :class:`Genotype`: a validated, pruned, shape-annotated DAG of ops and skip edges."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import networkx as nx

from nas_skip.errors import GenotypeError, GenotypeWarning, brief
from nas_skip.genotype._parse import (
    INPUT,
    SCHEMA_VERSION,
    Edge,
    Node,
    Number,
    check_params,
    parse_document,
)
from nas_skip.merges import MERGES, Shortcut, make_shortcut
from nas_skip.ops import (
    DOMAINS,
    MAX_ELEMENTS,
    OPS,
    SEQUENCE,
    TOKENS,
    Shape,
    domain_of,
    elements,
    ops_for,
)

_Repaired = dict[tuple[str, str], Edge]  # (src, dst) -> the edge with align projection


@dataclass(frozen=True)
class Merge:
    """One incoming edge of a node with the shortcut that aligns its source."""

    edge: Edge
    shortcut: Shortcut


@dataclass(frozen=True)
class NodePlan:
    """How a node merges its inputs (DESIGN.md, pre-op merge) and what shape results.

    ``base`` are concatenated (one entry: used as is); ``additive`` are then combined into
    the base in order. ``merged`` is the op's input shape, ``out`` its output shape.
    """

    base: tuple[Merge, ...]
    additive: tuple[Merge, ...]
    merged: Shape
    out: Shape


class Genotype:
    """A graph genotype (schema 1): which layers connect, and by which skip kind.

    Construct one with :meth:`from_json` or :meth:`from_networkx`; both validate every
    rule of DESIGN.md and raise :class:`GenotypeError` naming the node or edge. Nodes not on
    a path from ``input`` to ``output`` (``none`` edges do not count) are pruned with a
    :class:`GenotypeWarning`. A genotype is pure data: nothing in it is ever executed.
    """

    def __init__(
        self,
        input_shape: Iterable[int],
        nodes: Iterable[Node],
        edges: Iterable[Edge],
        output: str,
        name: str | None = None,
        *,
        repair: bool = False,
        sequence: bool = False,
    ) -> None:
        self.input_shape: Shape = tuple(input_shape)
        #: whether the input holds token ids and rank-2 tensors are (L, W) sequences with
        #: the feature axis last (``"domain": "sequence"``)
        self.sequence = sequence
        # with repair: the edges switched to projection (None: an edge that fails is an error)
        repaired: _Repaired | None = {} if repair else None
        self.name = name
        self._canonical: str | None = None  # canonical_hash(), once asked for
        nodes, edges = list(nodes), list(edges)
        self.output = output
        graph: nx.DiGraph[str] = nx.DiGraph()
        graph.add_node(INPUT)
        graph.add_nodes_from(n.id for n in nodes)
        graph.add_edges_from((e.src, e.dst) for e in edges)
        if not nx.is_directed_acyclic_graph(graph):  # then find one, to name it
            cycle = nx.find_cycle(graph)
            path = " -> ".join([u for u, _ in cycle] + [cycle[0][0]])
            raise GenotypeError(f"edges form a cycle: {path}")
        live = graph  # the graph without its switched-off edges (most genotypes have none)
        if any(e.kind == "none" for e in edges):
            live = nx.DiGraph()
            live.add_nodes_from(graph)
            live.add_edges_from((e.src, e.dst) for e in edges if e.kind != "none")
        reach = nx.descendants(live, INPUT) | {INPUT}
        if output not in reach:
            raise GenotypeError(f"output {output!r} is not reachable from input")
        alive = reach & (nx.ancestors(live, output) | {output})
        dead = [n.id for n in nodes if n.id not in alive]
        if dead:
            warnings.warn(
                f"pruned dead nodes (not on a path from input to output): {', '.join(dead)}",
                GenotypeWarning,
                stacklevel=3,
            )
        self.nodes: tuple[Node, ...] = tuple(n for n in nodes if n.id in alive)
        self.edges: tuple[Edge, ...] = tuple(e for e in edges if e.src in alive and e.dst in alive)
        self._node = {n.id: n for n in self.nodes}
        live.remove_nodes_from([n for n in list(live) if n not in alive])
        #: Node ids in the deterministic topological order (input first) that fixes merge order.
        self.order: tuple[str, ...] = tuple(nx.lexicographical_topological_sort(live))
        self._pos = {n: i for i, n in enumerate(self.order)}
        self.shapes: dict[str, Shape] = {INPUT: self.input_shape}
        self.plans: dict[str, NodePlan] = {}
        self.node_params: dict[str, dict[str, Number]] = {}
        self.edge_params: dict[tuple[str, str], dict[str, Number]] = {}
        incoming: dict[str, list[Edge]] = {n: [] for n in self.order}
        for e in self.edges:
            where = e.name
            self.edge_params[e.src, e.dst] = check_params(
                e.params, MERGES[e.kind].params, where, f"kind {e.kind!r}"
            )
            if e.kind != "none":
                incoming[e.dst].append(e)
        for node_id in self.order[1:]:
            ins = sorted(incoming[node_id], key=lambda e: self._pos[e.src])
            self._infer(self._node[node_id], ins, repaired)
        if repaired:
            self.edges = tuple(repaired.get((e.src, e.dst), e) for e in self.edges)

    # --- shape inference ----------------------------------------------------------------
    def _merge(self, e: Edge, dst: Shape, spatial_only: bool, repaired: _Repaired | None) -> Merge:
        """Align edge ``e``'s source to ``dst``; when repairing, an align that cannot fit
        the shapes becomes ``projection`` (the edge is recorded in ``repaired``)."""
        src, last = self.shapes[e.src], self.sequence
        try:
            return Merge(
                e, make_shortcut(src, dst, e.align, e.name, spatial_only, (e.src, e.dst), last)
            )
        except GenotypeError:
            if repaired is None or e.align == "projection":
                raise
        e = repaired[e.src, e.dst] = replace(e, align="projection")
        return Merge(
            e, make_shortcut(src, dst, e.align, e.name, spatial_only, (e.src, e.dst), last)
        )

    def _infer(self, node: Node, ins: list[Edge], repaired: _Repaired | None) -> None:
        tokens = self.sequence and any(e.src == INPUT for e in ins)
        if tokens and (len(ins) > 1 or OPS[node.op].domain != TOKENS):
            raise GenotypeError(
                f"node {node.id!r}: the input holds token ids, which feed a tokens op "
                f"({', '.join(sorted(ops_for(TOKENS)))}) on their own, not op {node.op!r}"
                + (" merged with other inputs" if len(ins) > 1 else "")
            )
        base_edges = [e for e in ins if MERGES[e.kind].role == "base"]
        add_edges = [e for e in ins if MERGES[e.kind].role == "additive"]
        base: list[Merge] = []
        if base_edges:
            # align to the last base input: the main path (skips come from earlier nodes)
            ref = self.shapes[base_edges[-1].src]
            for e in base_edges:
                base.append(self._merge(e, ref, True, repaired))
            if len(base) == 1:
                merged = base[0].shortcut.out_shape
            elif self.sequence and len(ref) == 2:  # (L, W): features last
                merged = (ref[0], sum(m.shortcut.out_shape[1] for m in base))
            else:
                width = sum(m.shortcut.out_shape[0] for m in base)
                merged = (width, *ref[1:])
        else:
            first = add_edges.pop(0)
            merged = self.shapes[first.src]
            base.append(Merge(first, Shortcut("identity", merged)))
        additive = tuple(self._merge(e, merged, False, repaired) for e in add_edges)
        spec = OPS[node.op]
        domain = TOKENS if tokens else domain_of(len(merged), self.sequence)
        if spec.domain not in (domain, "any"):
            raise GenotypeError(
                f"node {node.id!r}: op {node.op!r} takes {spec.domain} input, got shape "
                f"{list(merged)}; {domain} ops: {', '.join(sorted(ops_for(domain)))}"
            )
        params = check_params(node.params, spec.params, f"node {node.id!r}", f"op {node.op!r}")
        try:
            out = spec.shape(merged, params)
        except GenotypeError as exc:  # a user op's shape rule (nas_skip.register_op)
            raise GenotypeError(f"node {node.id!r}: {exc}") from None
        for what, shape in (("merged input", merged), ("output", out)):
            if elements(shape) > MAX_ELEMENTS:
                raise GenotypeError(
                    f"node {node.id!r}: its {what} of shape {brief(list(shape))} holds more than "
                    f"{MAX_ELEMENTS:,} elements, more than a tensor can index"
                )
        self.node_params[node.id] = params
        self.shapes[node.id] = out
        self.plans[node.id] = NodePlan(tuple(base), additive, merged, out)

    # --- accessors ------------------------------------------------------------------------
    def node(self, node_id: str) -> Node:
        """The node with this id (KeyError if there is none)."""
        return self._node[node_id]

    @property
    def domain(self) -> str:
        """ "image", "signal", "vector" or "sequence": the domain of the genotype's input."""
        return SEQUENCE if self.sequence else DOMAINS[len(self.input_shape)]

    def _key(self) -> str:
        # the order of nodes and edges in a document carries no meaning
        doc = self.to_json()
        doc["nodes"].sort(key=lambda n: n["id"])
        doc["edges"].sort(key=lambda e: (e["src"], e["dst"]))
        return json.dumps(doc, sort_keys=True)

    def __eq__(self, other: object) -> bool:
        """Same document up to the order of nodes and edges (isomorphism: canonical_hash)."""
        return isinstance(other, Genotype) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"Genotype(input={list(self.input_shape)}, nodes={len(self.nodes)}, "
            f"edges={len(self.edges)}, output={self.output!r})"
        )

    # --- JSON -------------------------------------------------------------------------------
    @classmethod
    def from_json(cls, doc: str | bytes | Mapping[str, Any], *, repair: bool = False) -> Genotype:
        """Read and validate a genotype from a JSON string or an already parsed dict.

        Args:
            doc: the document.
            repair: switch an edge whose align cannot fit its shapes to ``projection`` (as a
                search space's samples are repaired) instead of refusing the genotype; the
                genotype's edges then say ``projection``. One pass: the work is that of
                validating the genotype once, however many edges are repaired.

        Raises:
            GenotypeError: the document breaks a rule; the message names where.
        """
        if isinstance(doc, str | bytes):
            try:
                doc = json.loads(doc)
            except json.JSONDecodeError as exc:
                raise GenotypeError(f"genotype: not valid JSON ({exc})") from None
            except UnicodeDecodeError:
                raise GenotypeError("genotype: not UTF-8 text") from None
            except ValueError:  # json's own limit: an integer of more than 4,300 digits
                raise GenotypeError("genotype: a number in the JSON has too many digits") from None
            except RecursionError:
                raise GenotypeError("genotype: the JSON is nested too deeply") from None
        shape, sequence, nodes, edges, output, name = parse_document(doc)
        return cls(shape, nodes, edges, output, name, repair=repair, sequence=sequence)

    def to_json(self) -> dict[str, Any]:
        """The JSON form (a dict); ``from_json(g.to_json()) == g``."""
        doc: dict[str, Any] = {"schema": SCHEMA_VERSION}
        if self.name is not None:
            doc["name"] = self.name
        doc["input"] = {"shape": list(self.input_shape)}
        if self.sequence:
            doc["input"]["domain"] = SEQUENCE
        doc["nodes"] = [{"id": n.id, "op": n.op, **n.params} for n in self.nodes]
        edges = []
        for e in self.edges:
            item: dict[str, Any] = {"src": e.src, "dst": e.dst}
            if e.kind != "seq":
                item["kind"] = e.kind
            if e.align != "auto":
                item["align"] = e.align
            edges.append({**item, **e.params})
        doc["edges"] = edges
        doc["output"] = self.output
        return doc

    def dumps(self, indent: int | None = 2) -> str:
        """The JSON text."""
        return json.dumps(self.to_json(), indent=indent)

    # --- networkx ---------------------------------------------------------------------------
    def to_networkx(self) -> nx.DiGraph[str]:
        """A DiGraph: node attrs ``op``, ``params``, ``shape``; edge attrs ``kind``, ``align``,
        ``params``; graph attrs ``input_shape``, ``output``, ``name`` (and ``domain``
        "sequence" for token input). Includes ``input``."""
        g: nx.DiGraph[str] = nx.DiGraph(
            input_shape=list(self.input_shape), output=self.output, name=self.name
        )
        if self.sequence:
            g.graph["domain"] = SEQUENCE
        g.add_node(INPUT, op=INPUT, params={}, shape=self.input_shape)
        for n in self.nodes:
            g.add_node(n.id, op=n.op, params=dict(n.params), shape=self.shapes.get(n.id))
        for e in self.edges:
            g.add_edge(e.src, e.dst, kind=e.kind, align=e.align, params=dict(e.params))
        return g

    @classmethod
    def from_networkx(cls, graph: nx.DiGraph[str]) -> Genotype:
        """The inverse of :meth:`to_networkx` (validates like :meth:`from_json`)."""
        doc: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "input": {
                "shape": list(graph.graph.get("input_shape", [])),
                **({"domain": graph.graph["domain"]} if "domain" in graph.graph else {}),
            },
            "nodes": [
                {"id": n, "op": a.get("op"), **a.get("params", {})}
                for n, a in graph.nodes(data=True)
                if n != INPUT
            ],
            "edges": [
                {
                    "src": u,
                    "dst": v,
                    "kind": a.get("kind", "seq"),
                    "align": a.get("align", "auto"),
                    **a.get("params", {}),
                }
                for u, v, a in graph.edges(data=True)
            ],  # fmt: skip
            "output": graph.graph.get("output"),
        }
        if graph.graph.get("name") is not None:
            doc["name"] = graph.graph["name"]
        return cls.from_json(doc)

    # --- identity ---------------------------------------------------------------------------
    def canonical_hash(self) -> str:
        """A hash equal for isomorphic genotypes and different otherwise (see ``_hash``).

        Computed once: a genotype does not change after validation."""
        if self._canonical is None:
            from nas_skip.genotype._hash import canonical_hash

            self._canonical = canonical_hash(self)
        return self._canonical
