"""Reading the JSON form of a genotype into checked nodes and edges (no torch).

Every check here names the key, node or edge at fault; graph-level checks (cycles, dead
nodes, shapes) live in ``_genotype.py``.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nas_skip.errors import GenotypeError, brief
from nas_skip.merges import ALIGNS, MERGES
from nas_skip.ops import MAX_ELEMENTS, OPS, SEQUENCE, Param, elements

SCHEMA_VERSION = 1
INPUT = "input"  # the reserved id of the one source
_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_TOP_KEYS = ("schema", "input", "nodes", "edges", "output", "name")
_EDGE_KEYS = ("src", "dst", "kind", "align")

Number = int | float


@dataclass(frozen=True)
class Node:
    """A node as written: its id, op and the parameters given (defaults not filled in)."""

    id: str
    op: str
    params: Mapping[str, Number] = field(default_factory=dict)


@dataclass(frozen=True)
class Edge:
    """An edge as written; ``kind`` defaults to "seq" and ``align`` to "auto"."""

    src: str
    dst: str
    kind: str = "seq"
    align: str = "auto"
    params: Mapping[str, Number] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"edge {self.src} -> {self.dst}"


def _choices(names: Any) -> str:
    return ", ".join(sorted(names))


def check_id(value: Any, where: str) -> str:
    """A node id: a plain identifier, not a Python keyword, not the reserved 'input'."""
    if not isinstance(value, str) or not _ID.fullmatch(value) or keyword.iskeyword(value):
        raise GenotypeError(
            f"{where}: id {brief(value)} is not a plain identifier "
            "(letters, digits and _, not starting with a digit, at most 64, not a keyword)"
        )
    return value


def check_params(
    given: Mapping[str, Any], declared: Mapping[str, Param], where: str, owner: str
) -> dict[str, Number]:
    """Check ``given`` against ``declared``; return the given values with defaults filled."""
    full: dict[str, Number] = {}
    for key, value in given.items():
        if key not in declared:
            allowed = _choices(declared) if declared else "none"
            raise GenotypeError(
                f"{where}: {owner} has no parameter {brief(key)} (parameters: {allowed})"
            )
        spec = declared[key]
        ok_type = isinstance(value, (int, float)) and not isinstance(value, bool)
        if spec.type is int:
            ok_type = ok_type and isinstance(value, int)
        if not ok_type or not (spec.low <= value <= spec.high):
            raise GenotypeError(
                f"{where}: parameter {brief(key)} must be {spec.describe()}, got {brief(value)}"
            )
        full[key] = spec.type(value)
    for key, spec in declared.items():
        if key not in full:
            if spec.default is None:
                raise GenotypeError(
                    f"{where}: {owner} needs parameter {key!r} ({spec.describe()}: {spec.doc})"
                )
            full[key] = spec.type(spec.default)
    return full


def parse_input(doc: Any) -> tuple[tuple[int, ...], bool]:
    """The input's shape, and whether it holds token ids (``"domain": "sequence"``)."""
    if not isinstance(doc, Mapping) or "shape" not in doc or not set(doc) <= {"shape", "domain"}:
        raise GenotypeError(
            "input: must be an object with the key 'shape' (and 'domain': 'sequence' for "
            "token ids)"
        )
    shape = doc["shape"]
    sequence = "domain" in doc
    if sequence and doc["domain"] != SEQUENCE:
        raise GenotypeError(
            f"input.domain: must be 'sequence' (token ids) or left out, got {brief(doc['domain'])}"
        )
    if sequence and not (isinstance(shape, list | tuple) and len(shape) == 1):
        raise GenotypeError(
            f"input.shape: a sequence input holds token ids, shape [length], got {brief(shape)}"
        )
    if (
        not isinstance(shape, list | tuple)
        or len(shape) not in (1, 2, 3)
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape)
    ):
        raise GenotypeError(
            f"input.shape: must be [features], [channels, length] or [channels, height, width] "
            f"of positive integers, got {brief(shape)}"
        )
    if elements(shape) > MAX_ELEMENTS:
        raise GenotypeError(
            f"input.shape: {brief(shape)} holds more than {MAX_ELEMENTS:,} elements, more than "
            "a tensor can index"
        )
    return tuple(shape), sequence


def parse_node(doc: Any, index: int) -> Node:
    where = f"nodes[{index}]"
    if not isinstance(doc, Mapping):
        raise GenotypeError(f"{where}: must be an object with 'id' and 'op'")
    if "id" not in doc:
        raise GenotypeError(f"{where}: missing 'id'")
    node_id = check_id(doc["id"], where)
    if node_id == INPUT:
        raise GenotypeError(f"{where}: id 'input' is reserved for the genotype's input")
    where = f"node {node_id!r}"  # a plain identifier (check_id): no need to shorten
    op = doc.get("op")
    if not isinstance(op, str) or op not in OPS:  # a list or a mapping is no op (nor hashable)
        raise GenotypeError(f"{where}: unknown op {brief(op)} (ops: {_choices(OPS)})")
    params = {k: v for k, v in doc.items() if k not in ("id", "op")}
    check_params(params, OPS[op].params, where, f"op {op!r}")  # a known op
    return Node(node_id, op, params)


def parse_edge(doc: Any, index: int, ids: set[str]) -> Edge:
    where = f"edges[{index}]"
    if not isinstance(doc, Mapping):
        raise GenotypeError(f"{where}: must be an object with 'src' and 'dst'")
    for end in ("src", "dst"):
        if end not in doc:
            raise GenotypeError(f"{where}: missing {brief(end)}")
        if not isinstance(doc[end], str):
            raise GenotypeError(f"{where}: {end} must be a node id, got {brief(doc[end])}")
    src, dst = doc["src"], doc["dst"]
    for end, value in (("src", src), ("dst", dst)):
        if value not in ids and value != INPUT:
            raise GenotypeError(f"{where} ({src} -> {dst}): {end} {brief(value)} is not a node")
    where = f"edge {src} -> {dst}"
    if dst == INPUT:
        raise GenotypeError(f"{where}: no edge may enter 'input'")
    kind = doc.get("kind", "seq")
    if not isinstance(kind, str) or kind not in MERGES:
        raise GenotypeError(f"{where}: unknown kind {brief(kind)} (kinds: {_choices(MERGES)})")
    align = doc.get("align", "auto")
    if not isinstance(align, str) or align not in ALIGNS:
        raise GenotypeError(f"{where}: unknown align {brief(align)} (aligns: {_choices(ALIGNS)})")
    params = {k: v for k, v in doc.items() if k not in _EDGE_KEYS}
    check_params(params, MERGES[kind].params, where, f"kind {kind!r}")  # a known kind
    return Edge(src, dst, kind, align, params)


def parse_document(
    doc: Any,
) -> tuple[tuple[int, ...], bool, list[Node], list[Edge], str, str | None]:
    """Check a genotype document's structure; return (input shape, whether the input holds
    token ids, nodes, edges, output, name)."""
    if not isinstance(doc, Mapping):
        raise GenotypeError("genotype: must be a JSON object")
    unknown = [k for k in doc if k not in _TOP_KEYS]
    if unknown:
        keys = ", ".join(_TOP_KEYS)
        raise GenotypeError(f"genotype: unknown key {brief(unknown[0])} (keys: {keys})")
    if doc.get("schema") != SCHEMA_VERSION:
        raise GenotypeError(
            f"schema: must be {SCHEMA_VERSION}, got {brief(doc.get('schema'))} "
            "(this nas-skip reads genotype schema 1)"
        )
    for key in ("input", "nodes", "edges", "output"):
        if key not in doc:
            raise GenotypeError(f"genotype: missing {brief(key)}")
    name = doc.get("name")
    if name is not None and not isinstance(name, str):
        raise GenotypeError(f"name: must be a string, got {brief(name)}")
    shape, sequence = parse_input(doc["input"])
    for key in ("nodes", "edges"):
        if not isinstance(doc[key], list):
            raise GenotypeError(f"{key}: must be a list")
    nodes: list[Node] = []
    seen: set[str] = set()
    for i, n in enumerate(doc["nodes"]):
        node = parse_node(n, i)
        if node.id in seen:
            raise GenotypeError(f"nodes[{i}]: duplicate node id {brief(node.id)}")
        seen.add(node.id)
        nodes.append(node)
    edges: list[Edge] = []
    pairs: set[tuple[str, str]] = set()
    for i, e in enumerate(doc["edges"]):
        edge = parse_edge(e, i, seen)
        if (edge.src, edge.dst) in pairs:
            raise GenotypeError(f"{edge.name}: duplicate edge (at most one per src, dst pair)")
        pairs.add((edge.src, edge.dst))
        edges.append(edge)
    output = doc["output"]
    if not isinstance(output, str) or output not in seen:
        raise GenotypeError(f"output: {brief(output)} is not a node (nodes: {_choices(seen)})")
    return shape, sequence, nodes, edges, output, name
