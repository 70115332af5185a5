"""Skeleton families: how a space's choices become a genotype document.

Each builder takes a :class:`Picker` (which asks the Optuna trial, the only place where
``suggest_*`` is called) and the bound space, and returns a genotype document. Parameter
names are stable and readable: ``depth``, ``op:l3``, ``edge:l1->l3``,
``edge:s2.in->s2.l1``, ``shortcut:s2``, ``skip:l1``. A layer is an op node, followed by a
merge node only when a skip reaches it, so a plain network stays plain: a skip into layer
*j* joins *after* its op (``m_j = merge(op_j(...), skips)``), so a hop-1 ``add`` is the
residual ``x + F(x)``. ``concat`` skips take the earlier layer's op output (DenseNet), the
additive kinds its merged output (the residual stream).

Each document also carries the network's :class:`Structure` as its space counts it
(layers and skip hops in the space's own units, not in nodes of the compiled graph);
:meth:`Space.structure` reads it, and :meth:`Space._validate` leaves it out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nas_skip.ops import OPS
from nas_skip.spaces import _nb201 as nb201
from nas_skip.spaces._schema import Choice, Dimension, SpaceError

if TYPE_CHECKING:
    from nas_skip.spaces._space import Space

Doc = dict[str, Any]

#: the key of a builder's document that holds its :class:`Structure` (not a genotype key)
STRUCTURE = "structure"
#: the user attributes :meth:`Structure.to_attrs` writes
STRUCTURE_ATTRS = ("depth", "longest_skip", "skips")
_MAX_HOP = 10_000  # stored attributes are read with bounds
#: The most choices one network of a space may ask for. The work of building, sampling and
#: describing a space grows with its depth, not with the size of its file: a space whose
#: largest network asks more is refused at load. A builder asks the same number of choices
#: whatever the answers, and every loop of a builder asks one (or repeats the skeleton,
#: which the schema bounds), so its networks have at most a few nodes per choice.
MAX_CHOICES = 10_000


class TooLarge(SpaceError):
    """A space's network asked more than :data:`MAX_CHOICES` choices while being built."""


@dataclass(frozen=True)
class Structure:
    """A network as its space counts it: its depth and its skips, in layers.

    ``depth``: the space's layers. chain and stages: the searched layers (stem and head
    not counted); dense: the layers of all blocks; unet: its levels; cell and nb201: the
    op nodes on the searched cell's longest input -> output path.

    ``skips``: ``(kind, hop)`` of each skip, ``hop`` being how many layers apart its ends
    are, in the same units: 1 is from the layer just before, a stage's or dense block's
    input is layer -1 (so a skip from the input into layer 2 is hop 3) and a dense
    block's output is layer ``depth``; a U-Net long skip spans the levels below it
    (1: the innermost), a block's residual skip is hop 1; a cell's edge ``i -> j`` is
    hop ``j - i``, counted once for the cell (NAS-Bench-201's ``skip_connect`` is an
    ``add`` skip). ``seq`` edges and switched-off (``none``) skips are not skips.
    """

    depth: int
    skips: tuple[tuple[str, int], ...] = ()

    @property
    def longest_skip(self) -> int:
        """The largest hop of a skip (0 without skips)."""
        return max((hop for _, hop in self.skips), default=0)

    def hops(self) -> Counter[tuple[str, int]]:
        """How many skips of each ``(kind, hop)``."""
        return Counter(self.skips)

    def features(self, kinds: Iterable[str]) -> dict[str, int]:
        """``depth``, ``skips_<kind>`` for each of ``kinds`` and ``longest_skip``: the
        columns :func:`nas_skip.genotype.topology` gives of a graph, in layers."""
        per_kind = Counter(kind for kind, _ in self.skips)
        out = {"depth": self.depth, **{f"skips_{k}": per_kind[k] for k in kinds}}
        return {**out, "longest_skip": self.longest_skip}

    def to_attrs(self) -> dict[str, Any]:
        """The user attributes a trial stores: ``depth``, ``longest_skip`` and ``skips``
        (kind -> the sorted hops of its skips)."""
        by_kind: dict[str, list[int]] = {}
        for kind, hop in sorted(self.skips):
            by_kind.setdefault(kind, []).append(hop)
        return {"depth": self.depth, "longest_skip": self.longest_skip, "skips": by_kind}

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> Structure | None:
        """The structure a trial stored with :meth:`to_attrs`; None when it stored none or
        it is not well formed (stored attributes are not trusted)."""
        depth, skips = attrs.get("depth"), attrs.get("skips")
        if not isinstance(depth, int) or not _small_int(depth) or not isinstance(skips, dict):
            return None
        found = []
        for kind, hops in skips.items():
            if not isinstance(kind, str) or len(kind) > 32 or not isinstance(hops, list):
                return None
            if not all(_small_int(h) for h in hops):
                return None
            found += [(kind, int(h)) for h in hops]
        return cls(depth, tuple(found))


def _small_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_HOP


#: Per space domain: the stem of a convolutional family and the head of every family
#: whose skeleton names none.
STEMS = {
    "signal": "conv1d_k3_bn_relu",
    "image": "conv3x3_bn_relu",
    "segmentation": "conv3x3_bn_relu",
}
HEADS = {
    "vector": "linear_head",
    "signal": "gap1d_linear",
    "image": "gap_linear",
    "segmentation": "conv1x1_head",
    "sequence": "lm_head",
}


class Picker:
    """Asks an Optuna trial (or anything with its ``suggest_*`` API) for each choice."""

    def __init__(self, trial: Any) -> None:
        self.trial = trial
        self.calls = 0  # constants included: every call is a step of the builder's loops

    def __call__(self, name: str, dim: Dimension) -> Any:
        self.calls += 1
        if self.calls > MAX_CHOICES:
            raise TooLarge(f"asks more than {MAX_CHOICES:,} choices")
        if isinstance(dim, Choice):
            if len(dim.values) == 1:
                return dim.values[0]  # a constant is not a parameter
            return self.trial.suggest_categorical(name, list(dim.values))
        if dim.is_int:
            return self.trial.suggest_int(
                name, int(dim.low), int(dim.high), step=dim.step or 1, log=dim.log
            )
        return self.trial.suggest_float(name, dim.low, dim.high, log=dim.log)

    def choice(self, name: str, values: tuple[str, ...]) -> str:
        value = self(name, Choice(values))
        # a str as it is: a one-shot relaxation answers with a marked str subclass
        return value if isinstance(value, str) else str(value)


@dataclass
class _Builder:
    """Accumulates nodes and edges of a genotype document."""

    input_shape: tuple[int, ...]
    nodes: list[Doc] = field(default_factory=list)
    edges: list[Doc] = field(default_factory=list)
    depth: int = 0  # layers as the space counts them (see Structure)
    skips: list[tuple[str, int]] = field(default_factory=list)  # (kind, hop in layers)
    input_extra: Doc = field(default_factory=dict)  # {"domain": "sequence"} for token ids

    def skip(self, kind: str, hop: int) -> None:
        """Record a skip ``hop`` layers long; ``seq`` and ``none`` are not skips."""
        if kind not in ("seq", "none"):
            self.skips.append((kind, hop))

    def node(self, node_id: str, op: str, width: int | None = None, stride: int = 1) -> str:
        params: Doc = {}
        declared = OPS[op].params
        if width is not None:
            for key in ("channels", "features"):
                if key in declared:
                    params[key] = width
        if stride != 1 and "stride" in declared:
            params["stride"] = stride
        self.nodes.append({"id": node_id, "op": op, **params})
        return node_id

    def edge(self, src: str, dst: str, kind: str = "seq", align: str = "auto",
             params: Doc | None = None) -> None:  # fmt: skip
        if kind != "none":
            item: Doc = {"src": src, "dst": dst, "kind": kind, **(params or {})}
            if align != "auto":
                item["align"] = align
            self.edges.append(item)

    def stem(self, op: str, width: int) -> str:
        """The fixed first layer, fed by the input."""
        self.edge("input", self.node("stem", op, width))
        return "stem"

    def finish(self, prev: str, op: str, classes: int) -> Doc:
        """The head (``classes`` outputs) after ``prev``, and the finished document."""
        self.nodes.append({"id": "head", "op": op, "classes": classes})
        self.edge(prev, "head")
        return self.doc("head")

    def doc(self, output: str) -> Doc:
        return {
            "schema": 1,
            "input": {"shape": list(self.input_shape), **self.input_extra},
            "nodes": self.nodes,
            "edges": self.edges,
            "output": output,
            STRUCTURE: Structure(self.depth, tuple(self.skips)),
        }


@dataclass
class _Layer:
    op: str  # the op node's id
    out: str  # the layer's output: its merge node where skips join, else the op node


def _layers(
    b: _Builder,
    pick: Picker,
    prefix: str,
    label: str,
    in_label: str,
    stage_in: str,
    depth: int,
    width: int,
    space: Space,
    first_stride: int = 1,
    transition_align: str = "auto",
) -> str:
    """A run of layers with searchable skips (chain and stages families); returns the output."""
    s = space.spec.skeleton
    hop = s["hop_window"] or depth + 1
    layers = {-1: _Layer(stage_in, stage_in)}
    b.depth += depth
    for j in range(depth):
        name = f"{label}l{j}"
        op = pick.choice(f"op:{name}", s["ops"])
        node = b.node(f"{prefix}l{j}", op, width, first_stride if j == 0 else 1)
        b.edge(layers[j - 1].out, node)
        skips = []
        for i in range(max(-1, j - hop), j):
            source = in_label if i < 0 else f"{label}l{i}"
            kind = pick.choice(f"edge:{source}->{name}", s["kinds"])
            b.skip(kind, j - i)
            if kind != "none":
                skips.append((i, kind))
        out = node
        if skips:
            out = b.node(f"{prefix}m{j}", s["merge_op"])
            b.edge(node, out)
            for i, kind in skips:
                src = layers[i].op if kind == "concat" else layers[i].out
                b.edge(src, out, kind, transition_align if i < 0 else "auto")
        layers[j] = _Layer(node, out)
    return layers[depth - 1].out


def build_chain(pick: Picker, space: Space) -> Doc:
    """deep_mlp: ``depth`` layers of one width; each may take skips from a hop window."""
    s = space.spec.skeleton
    b = _Builder(space.input_shape)
    depth, width = pick("depth", s["depth"]), pick("width", s["width"])
    prev = "input"
    if s["stem"] is not None:
        prev = b.stem(s["stem"], width)
    out = _layers(b, pick, "", "", prev, prev, depth, width, space)
    return b.finish(out, s["head"] or HEADS[space.domain], space.num_classes)


def build_stages(pick: Picker, space: Space) -> Doc:
    """resnet_macro, conv1d: stages of searched depth; width doubles and resolution (or
    length) halves per stage."""
    s = space.spec.skeleton
    b = _Builder(space.input_shape)
    width = pick("width", s["width"])
    prev = b.stem(s["stem"] or STEMS[space.domain], width)
    for k in range(1, s["stages"] + 1):
        depth = pick(f"depth:s{k}", s["depth"])
        align = "auto"
        if k > 1:
            align = pick.choice(f"shortcut:s{k}", s["shortcut"])
        c = width * 2 ** (k - 1)
        stride = 2 if k > 1 else 1
        prev = _layers(
            b, pick, f"s{k}_", f"s{k}.", f"s{k}.in", prev, depth, c, space, stride, align
        )
    return b.finish(prev, s["head"] or HEADS[space.domain], space.num_classes)


def _cell(pick: Picker, space: Space) -> tuple[list[str], list[tuple[int, int, str]]]:
    """The searched cell, NAS-Bench-101 style: ops of the inner nodes and a kind per edge."""
    s = space.spec.skeleton
    n = s["nodes"]
    ops = [pick.choice(f"op:n{k}", s["ops"]) for k in range(1, n - 1)]
    chosen = []
    for j in range(1, n):
        for i in range(j):
            kind = pick.choice(f"edge:n{i}->n{j}", s["kinds"])
            if kind != "none":
                chosen.append((i, j, kind))
    # repair: at most max_edges, keeping the shortest hops (they keep the cell connected)
    edges = sorted(chosen, key=lambda e: (e[1] - e[0], e[0]))[: s["max_edges"]]
    # repair: without a path from input to output the cell is input -> output
    reach = {0}
    for i, j, _ in sorted(edges, key=lambda e: e[1]):
        if i in reach:
            reach.add(j)
    if n - 1 not in reach:
        edges.append((0, n - 1, "seq"))
    return ops, edges


def _cell_structure(
    n: int, edges: list[tuple[int, int, str]]
) -> tuple[int, list[tuple[str, int]]]:
    """The cell's depth (op nodes on its longest input -> output path) and its live edges
    as ``(kind, j - i)`` skips (validation prunes an edge that reaches no output)."""
    longest = {0: 0}  # op nodes on the longest path from the input to each node
    for i, j, _ in sorted(edges):  # by source: a node's paths are settled before it is left
        if i in longest:
            longest[j] = max(longest.get(j, 0), longest[i] + (1 if j < n - 1 else 0))
    back = {n - 1}
    for i, j, _ in sorted(edges, reverse=True):
        if j in back:
            back.add(i)
    skips = [(kind, j - i) for i, j, kind in edges if kind != "seq" and i in longest and j in back]
    return longest.get(n - 1, 0), skips


def build_cell(pick: Picker, space: Space) -> Doc:
    """nb101_cell: one searched cell stacked in stages, max-pool downsampling between them."""
    s = space.spec.skeleton
    b = _Builder(space.input_shape)
    width = pick("width", s["width"])
    ops, edges = _cell(pick, space)
    n = s["nodes"]
    b.depth, b.skips = _cell_structure(n, edges)
    prev = b.stem("conv3x3_bn_relu", width)
    for k in range(1, s["stages"] + 1):
        if k > 1:
            down = b.node(f"down{k}", "maxpool3x3", stride=2)
            b.edge(prev, down)
            prev = down
        for c in range(1, s["cells_per_stage"] + 1):
            names = {0: prev}
            for m in range(1, n):
                op = ops[m - 1] if m < n - 1 else "identity"
                names[m] = b.node(f"s{k}c{c}_n{m}", op, width * 2 ** (k - 1))
            for i, j, kind in edges:
                b.edge(names[i], names[j], kind)
            prev = names[n - 1]
    return b.finish(prev, "gap_linear", space.num_classes)


def build_dense(pick: Picker, space: Space) -> Doc:
    """densenet: dense blocks whose earlier-layer concats are searched; growth, compression."""
    s = space.spec.skeleton
    b = _Builder(space.input_shape)
    growth, compression = pick("growth", s["growth"]), pick("compression", s["compression"])
    width = 2 * growth
    prev = b.stem("conv3x3_bn_relu", width)
    for k in range(1, s["blocks"] + 1):
        depth = pick(f"layers:b{k}", s["layers"])
        b.depth += depth
        layers = {-1: prev}
        for j in range(depth):
            node = b.node(f"b{k}_l{j}", "bn_relu_conv3x3", growth)
            b.edge(layers[j - 1], node)
            for i in range(-1, j - 1):
                source = f"b{k}.in" if i < 0 else f"b{k}.l{i}"
                kind = pick.choice(f"edge:{source}->b{k}.l{j}", s["kinds"])
                kind = "concat" if kind == "seq" else kind
                b.edge(layers[i], node, kind)
                b.skip(kind, j - i)
            layers[j] = node
        out = b.node(f"b{k}_out", "identity")  # the block's output: every layer, concatenated
        for i in range(-1, depth):
            kind = "seq" if i == depth - 1 else "concat"
            b.edge(layers[i], out, kind)
            b.skip(kind, depth - i)  # the output is layer `depth` of the block
        width += depth * growth
        prev = out
        if k < s["blocks"]:
            width = max(1, int(compression * width))
            t = b.node(f"t{k}", "conv1x1_bn_relu", width)
            b.edge(prev, t)
            prev = b.node(f"t{k}_pool", "avgpool3x3", stride=2)
            b.edge(t, prev)
    return b.finish(prev, "gap_linear", space.num_classes)


def _block(b: _Builder, pick: Picker, space: Space, name: str, src: str, width: int) -> str:
    """Two convolutions with a searchable residual skip around them."""
    a = b.node(f"{name}_a", "conv3x3_bn_relu", width)
    b.edge(src, a)
    c = b.node(f"{name}_b", "conv3x3_bn", width)
    b.edge(a, c)
    out = b.node(name, "relu")
    b.edge(c, out)
    kind = pick.choice(f"res:{name}", space.spec.skeleton["short_kinds"])
    b.edge(src, out, kind)
    b.skip(kind, 1)
    return out


def build_unet(pick: Picker, space: Space) -> Doc:
    """unet: encoder-decoder of searched depth; each level's long skip kind is searched."""
    s = space.spec.skeleton
    b = _Builder(space.input_shape)
    depth, width = pick("depth", s["depth"]), pick("width", s["width"])
    b.depth = depth  # its levels
    prev, encoders = "input", []
    for k in range(depth):
        prev = _block(b, pick, space, f"enc{k}", prev, width * 2**k)
        encoders.append(prev)
        down = b.node(f"down{k}", "maxpool3x3", stride=2)
        b.edge(prev, down)
        prev = down
    prev = _block(b, pick, space, "mid", prev, width * 2**depth)
    for k in reversed(range(depth)):
        up = b.node(f"up{k}", "upsample2x")
        b.edge(prev, up)
        fuse = b.node(f"fuse{k}", "conv3x3_bn_relu", width * 2**k)
        b.edge(up, fuse)
        kind = pick.choice(f"skip:l{k}", s["long_kinds"])
        b.edge(encoders[k], fuse, kind)
        b.skip(kind, depth - k)  # the levels it spans: 1 for the innermost
        prev = _block(b, pick, space, f"dec{k}", fuse, width * 2**k)
    return b.finish(prev, "conv1x1_head", space.num_classes)


def build_nb201(pick: Picker, space: Space) -> Doc:
    """nb201: NAS-Bench-201's cell (an op per edge ``edge:0->1`` ...) in its macro skeleton."""
    s = space.spec.skeleton
    width = pick("width", s["width"])
    cell = tuple(pick.choice(name, s["ops"]) for name in nb201.PARAM_NAMES)
    doc = nb201.network_doc(cell, space.input_shape, space.num_classes, width, s["stages"],
                            s["cells_per_stage"])  # fmt: skip
    return {**doc, STRUCTURE: _nb201_structure(cell)}


def _nb201_structure(cell: tuple[str, ...]) -> Structure:
    """The cell's depth (conv and pool ops on its longest path from node 0 to node 3) and
    its live ``skip_connect`` edges, as ``add`` skips of hop ``j - i``."""
    live = dict(zip(nb201.EDGES, nb201.live_cell(cell), strict=True))
    longest = {0: 0}
    for (i, j), op in live.items():  # EDGES settles every edge's source first
        if op != "none" and i in longest:
            longest[j] = max(longest.get(j, 0), longest[i] + (op != "skip_connect"))
    skips = tuple(("add", j - i) for (i, j), op in live.items() if op == "skip_connect")
    return Structure(longest.get(3, 0), skips)


def nb201_attrs(params: dict[str, Any], space: Space) -> dict[str, Any]:
    """``nb201_arch``: the NAS-Bench-201 arch string of the trial's cell, as chosen."""
    cell = nb201.cell_from_params(params, tuple(space.spec.skeleton["ops"]))
    return {"nb201_arch": nb201.arch_string(cell)}


#: a ``scaled`` edge of a transformer starts at 0: the branch or skip joins as it learns
_FROM_ZERO: Doc = {"init": 0.0}


def _sublayer(b: _Builder, x: str, name: str, op: str, op_params: Doc, placement: str,
              residual: str, norm: str) -> str:  # fmt: skip
    """One sublayer (attention or MLP) of a transformer block on the stream ``x``, with
    its norm placement and residual kind; returns the stream after it (the residual node,
    whose op is the norm for post-LN).

    The residual kinds: ``add`` is ``x + F(x)``; ``scaled`` ReZero's ``x + alpha * F(x)``
    with alpha from 0; ``gated`` a highway mix ``g * F(x) + (1 - g) * x`` with ``g =
    sigmoid(W x + b)``, whose bias -2 starts it near the identity (as GTrXL's gate
    starts); ``none`` no residual.
    """
    h = x
    if placement in ("pre", "sandwich"):
        h = b.node(f"{name}_norm", norm)
        b.edge(x, h)
    f = name
    b.nodes.append({"id": f, "op": op, **op_params})
    b.edge(h, f)
    if placement == "sandwich":
        b.edge(f, b.node(f"{name}_norm2", norm))
        f = f"{name}_norm2"
    out = b.node(f"{name}_res", norm if placement == "post" else "identity")
    if residual == "gated":  # the branch is the base, the stream the gated input
        b.edge(f, out)
        b.edge(x, out, "gated")
    else:
        if residual != "none":
            b.edge(x, out)
        b.edge(f, out, "seq" if residual == "none" else residual,
               params=_FROM_ZERO if residual == "scaled" else None)  # fmt: skip
    b.skip(residual, 1)
    return out


def build_transformer(pick: Picker, space: Space) -> Doc:
    """transformer: ``depth`` blocks of causal self-attention and MLP sublayers on a
    residual stream of ``width``, each sublayer with its norm placement and residual kind
    (shared by every block, as a transformer's design is), optional skips between block
    outputs up to ``hop_window`` blocks apart, and DenseFormer's depth-weighted average
    after each block (``dwa: scaled``: every earlier block output, and the embedding,
    joins with a learned weight from 0; its edges grow as the depth squared, which the
    schema bounds by ``MAX_TRANSFORMER_BLOCKS``)."""
    s = space.spec.skeleton
    b = _Builder(space.input_shape, input_extra={"domain": "sequence"})
    depth, width = pick("depth", s["depth"]), pick("width", s["width"])
    heads = pick("heads", s["heads"])
    norm = pick.choice("norm", s["norm"])
    design = {(sub, what): pick.choice(f"{sub}:{what}", s[key])
              for sub in ("attn", "mlp")
              for what, key in (("norm", "placements"), ("residual", "residuals"))}  # fmt: skip
    dwa = pick.choice("dwa", s["dwa"])
    b.nodes.append({"id": "embed", "op": "embed", "vocab": space.num_classes, "features": width})
    b.edge("input", "embed")
    b.depth = depth
    outputs = ["embed"]  # the stream after the embedding and after each block
    stream = "embed"
    hop = s["hop_window"]
    for j in range(1, depth + 1):
        ops = {"attn": ("attn", {"heads": heads}), "mlp": ("mlp", {"ratio": s["mlp_ratio"]})}
        for sub, (op, params) in ops.items():
            stream = _sublayer(b, stream, f"b{j}_{sub}", op, params, design[sub, "norm"],
                               design[sub, "residual"], norm)  # fmt: skip
        for i in range(max(0, j - hop), j - 1):  # cross-block skips: output i -> block j
            kind = pick.choice(f"skip:b{i}->b{j}", s["skip_kinds"])
            b.edge(outputs[i], stream, kind, params=_FROM_ZERO if kind == "scaled" else None)
            b.skip(kind, j - i)
        outputs.append(stream)
        if dwa != "none":
            avg = b.node(f"b{j}_dwa", "identity")
            b.edge(stream, avg)
            for i in range(j):
                b.edge(outputs[i], avg, dwa, params=_FROM_ZERO)
                b.skip(dwa, j - i)
            stream = avg
    final = b.node("norm_f", norm)
    b.edge(stream, final)
    return b.finish(final, s["head"] or HEADS[space.domain], space.num_classes)


BUILDERS: dict[str, Callable[[Picker, Space], Doc]] = {
    "chain": build_chain,
    "stages": build_stages,
    "cell": build_cell,
    "dense": build_dense,
    "unet": build_unet,
    "nb201": build_nb201,
    "transformer": build_transformer,
}

#: User attributes a family derives from a trial's choices, beside the genotype.
ATTRS: dict[str, Callable[[dict[str, Any], Space], dict[str, Any]]] = {"nb201": nb201_attrs}

#: Parameters that change the structure (how many others exist), per family.
STRUCTURAL: dict[str, Callable[[Space], dict[str, Dimension]]] = {
    "chain": lambda sp: {"depth": sp.spec.skeleton["depth"]},
    "stages": lambda sp: {
        f"depth:s{k}": sp.spec.skeleton["depth"] for k in range(1, sp.spec.skeleton["stages"] + 1)
    },
    "cell": lambda sp: {},
    "dense": lambda sp: {
        f"layers:b{k}": sp.spec.skeleton["layers"]
        for k in range(1, sp.spec.skeleton["blocks"] + 1)
    },
    "unet": lambda sp: {"depth": sp.spec.skeleton["depth"]},
    "nb201": lambda sp: {},
    "transformer": lambda sp: {"depth": sp.spec.skeleton["depth"]},
}
