"""The op registry: every node op a genotype may name, as pure data.

An op is one :class:`OpSpec` entry in :data:`OPS`: its declared parameters (type, range,
default), its shape rule, its parameter and FLOP counts, and its *factory*: the PyTorch
constructor expression and forward call that the compiler writes into generated code.
Factories are text built only from this file's templates and validated numbers, so this
module imports no torch and the genotype package can check a genotype without it.
Adding an op is one entry in :data:`OPS`; :func:`nas_skip.register_op` adds one from
Python (an op of your own, whose factory generated code imports).

FLOPs follow PyTorch's ``FlopCounterMode``: 2 x multiply-accumulates of convolutions and
matrix products, per sample; element-wise ops, norms and pooling count as zero.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nas_skip.errors import GenotypeError

Shape = tuple[int, ...]
Params = Mapping[str, Any]

#: Domains by input rank: image tensors are (C, H, W), signals (C, L), vectors (F,).
DOMAINS = {3: "image", 2: "signal", 1: "vector"}
#: A genotype whose input says ``"domain": "sequence"`` takes token ids (L,) and keeps
#: its tensors as (L, W), the feature axis *last* as transformers keep it: its input feeds
#: "tokens" ops (an embedding), its rank-2 tensors are "sequence" ones, and a pooled head's
#: (classes,) output is a vector.
SEQUENCE, TOKENS = "sequence", "tokens"


def domain_of(rank: int, sequence: bool) -> str:
    """The domain of a (non-input) tensor of ``rank`` in a sequence genotype or another."""
    return SEQUENCE if sequence and rank == 2 else DOMAINS[rank]


#: The most elements one sample's tensor may hold (the input, a node's merged input or its
#: output): what a signed 64-bit index reaches, the most a PyTorch tensor can have. A
#: larger shape is refused, so that every size nas-skip computes stays a modest integer.
MAX_ELEMENTS = 2**63 - 1


def elements(shape: Sequence[int]) -> int:
    """How many elements a tensor of ``shape`` holds (per sample)."""
    n = 1
    for d in shape:
        n *= d
    return n


@dataclass(frozen=True)
class Param:
    """A declared op or edge parameter: a number of one type within a closed range."""

    type: type  # int or float
    low: float
    high: float
    default: float | None = None  # None: the parameter is required
    doc: str = ""

    def describe(self) -> str:
        kind = "an integer" if self.type is int else "a number"
        return f"{kind} in [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class OpSpec:
    """One op: what it accepts, what it outputs, what it costs and how it is written.

    ``module(in_shape, params)`` returns the constructor expression of the op's
    ``nn.Module`` (``None`` for an op without weights), ``call(m, x, params)`` the
    forward expression given the module reference ``m`` and the input expression ``x``.
    ``count(in_shape, out_shape, params)`` returns ``(parameters, flops)``.
    """

    name: str
    domain: str  # "image", "signal", "vector", "sequence", "tokens" or "any"
    shape: Callable[[Shape, Params], Shape]
    module: Callable[[Shape, Params], str | None]
    call: Callable[[str, str, Params], str]
    count: Callable[[Shape, Shape, Params], tuple[int, int]]
    params: Mapping[str, Param] = field(default_factory=dict)
    attr: str = "op"  # stem of the attribute name in generated code
    doc: str = ""
    #: a user op's factory as (module, qualified name), which generated code imports;
    #: None for a built-in op, whose code is all in this file's templates
    source: tuple[str, str] | None = None
    #: names of the helper classes (:data:`HELPERS`) its constructor template uses, which
    #: generated code defines once at the top of the file, as nanoGPT defines its own
    helpers: tuple[str, ...] = ()


# --- parameter declarations ------------------------------------------------------------
CHANNELS = Param(int, 1, 65536, doc="output channels")
FEATURES = Param(int, 1, 1 << 20, doc="output features")
CLASSES = Param(int, 1, 100000, doc="number of classes")
STRIDE = Param(int, 1, 8, default=1, doc="spatial stride (downsampling factor)")


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _same_conv_shape(s: Shape, p: Params) -> Shape:
    # kernel 3 / padding 1 or kernel 1 / padding 0: out = ceil(in / stride)
    stride = p["stride"]
    return (p["channels"], _ceil_div(s[1], stride), _ceil_div(s[2], stride))


def _pool_shape(s: Shape, p: Params) -> Shape:
    return (s[0], _ceil_div(s[1], p["stride"]), _ceil_div(s[2], p["stride"]))


def _conv_flops(c_in: int, c_out: int, k: int, out: Shape, groups: int = 1) -> int:
    return 2 * (c_in // groups) * c_out * k * k * out[1] * out[2]


def _stride_arg(p: Params) -> str:
    return f", stride={p['stride']}" if p["stride"] != 1 else ""


def _conv(c_in: int, c_out: int, k: int, p: Params, bias: bool = False) -> str:
    pad = ", padding=1" if k == 3 else ""
    tail = "" if bias else ", bias=False"
    return f"nn.Conv2d({c_in}, {c_out}, {k}{_stride_arg(p)}{pad}{tail})"


def _module_call(m: str, x: str, p: Params) -> str:
    return f"{m}({x})"


def _atom(x: str) -> str:
    """``x`` ready for a method call or an operator: an input expression with a top-level
    operator (a merge written inline, ``b + s``) is parenthesised."""
    depth = 0
    for ch in x:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == " " and depth == 0:
            return f"({x})"
    return x


def _free(i: Shape, o: Shape, p: Params) -> tuple[int, int]:
    return 0, 0


def _conv_bn(k: int, relu: bool, pre_relu: bool = False) -> OpSpec:
    """conv-BN(-ReLU), or with ``pre_relu`` ReLU-conv-BN (NAS-Bench-201's and DARTS's
    ReLUConvBN), whose ReLU must not work in place: its input may feed other nodes too."""

    def module(s: Shape, p: Params) -> str:
        c = p["channels"]
        act = ", nn.ReLU(inplace=True)" if relu else ""
        pre = "nn.ReLU(), " if pre_relu else ""
        return f"nn.Sequential({pre}{_conv(s[0], c, k, p)}, nn.BatchNorm2d({c}){act})"

    def count(i: Shape, o: Shape, p: Params) -> tuple[int, int]:
        c = p["channels"]
        return i[0] * c * k * k + 2 * c, _conv_flops(i[0], c, k, o)

    name = ("relu_" if pre_relu else "") + f"conv{k}x{k}_bn" + ("_relu" if relu else "")
    doc = f"{k}x{k} convolution (no bias), batch norm" + (", ReLU" if relu else "")
    return OpSpec(
        name,
        "image",
        _same_conv_shape,
        module,
        _module_call,
        count,
        {"channels": CHANNELS, "stride": STRIDE},
        attr="conv",
        doc=("ReLU, " + doc) if pre_relu else doc,
    )


def _sepconv_module(s: Shape, p: Params) -> str:
    c_in, c = s[0], p["channels"]
    depthwise = (
        f"nn.Conv2d({c_in}, {c_in}, 3{_stride_arg(p)}, padding=1, groups={c_in}, bias=False)"
    )
    return (
        f"nn.Sequential({depthwise}, nn.Conv2d({c_in}, {c}, 1, bias=False), "
        f"nn.BatchNorm2d({c}), nn.ReLU(inplace=True))"
    )


def _sepconv_count(i: Shape, o: Shape, p: Params) -> tuple[int, int]:
    c_in, c = i[0], p["channels"]
    params = c_in * 9 + c_in * c + 2 * c
    return params, _conv_flops(c_in, c_in, 3, o, groups=c_in) + _conv_flops(c_in, c, 1, o)


def _preact_module(s: Shape, p: Params) -> str:
    return (
        f"nn.Sequential(nn.BatchNorm2d({s[0]}), nn.ReLU(inplace=True), "
        f"{_conv(s[0], p['channels'], 3, p)})"
    )


def _preact_count(i: Shape, o: Shape, p: Params) -> tuple[int, int]:
    c = p["channels"]
    return 2 * i[0] + i[0] * c * 9, _conv_flops(i[0], c, 3, o)


def _pool(kind: str) -> OpSpec:
    extra = ", count_include_pad=False" if kind == "avg" else ""

    def call(m: str, x: str, p: Params) -> str:
        return f"F.{kind}_pool2d({x}, 3, stride={p['stride']}, padding=1{extra})"

    return OpSpec(
        f"{kind}pool3x3",
        "image",
        _pool_shape,
        lambda s, p: None,
        call,
        _free,
        {"stride": STRIDE},
        attr="pool",
        doc=f"3x3 {kind} pooling, padding 1",
    )


def _linear_op(name: str, norm: bool, relu: bool, param: str, doc: str) -> OpSpec:
    def module(s: Shape, p: Params) -> str:
        parts = [f"nn.Linear({s[0]}, {p[param]})"]
        if norm:
            parts.insert(0, f"nn.LayerNorm({s[0]})")
        if relu:
            parts.append("nn.ReLU(inplace=True)")
        return parts[0] if len(parts) == 1 else f"nn.Sequential({', '.join(parts)})"

    def count(i: Shape, o: Shape, p: Params) -> tuple[int, int]:
        n = p[param]
        return i[0] * n + n + (2 * i[0] if norm else 0), 2 * i[0] * n

    declared = {param: FEATURES if param == "features" else CLASSES}
    return OpSpec(
        name,
        "vector",
        lambda s, p: (p[param],),
        module,
        _module_call,
        count,
        declared,
        attr="head" if param == "classes" else "fc",
        doc=doc,
    )


def _gap_linear_count(i: Shape, o: Shape, p: Params) -> tuple[int, int]:
    return i[0] * p["classes"] + p["classes"], 2 * i[0] * p["classes"]


def _head1x1_count(i: Shape, o: Shape, p: Params) -> tuple[int, int]:
    return i[0] * p["classes"] + p["classes"], 2 * i[0] * p["classes"] * i[1] * i[2]


# --- signal ops: (C, L) tensors, 1-D convolutions ---------------------------------------
# Kernels are odd with padding k // 2, so a layer's length is ceil(L / stride), as in 2-D;
# the kernel is part of the op's name (conv1d_k5_bn_relu), so a space searches kernel sizes
# by listing ops, as it searches conv3x3 against conv1x1.
KERNELS_1D = (3, 5, 7)


def _signal_shape(s: Shape, p: Params) -> Shape:
    return (p["channels"], _ceil_div(s[1], p["stride"]))


def _conv1d(c_in: int, c_out: int, k: int, p: Params, groups: int = 1) -> str:
    pad = f", padding={k // 2}" if k > 1 else ""
    grouped = f", groups={groups}" if groups != 1 else ""
    return f"nn.Conv1d({c_in}, {c_out}, {k}{_stride_arg(p)}{pad}{grouped}, bias=False)"


def _conv1d_flops(c_in: int, c_out: int, k: int, out: Shape, groups: int = 1) -> int:
    return 2 * (c_in // groups) * c_out * k * out[1]


def _conv1d_bn(k: int, relu: bool) -> OpSpec:
    """1-D conv-BN(-ReLU) with an odd kernel ``k`` ("same" padding)."""

    def module(s: Shape, p: Params) -> str:
        c = p["channels"]
        act = ", nn.ReLU(inplace=True)" if relu else ""
        return f"nn.Sequential({_conv1d(s[0], c, k, p)}, nn.BatchNorm1d({c}){act})"

    def count(i: Shape, o: Shape, p: Params) -> tuple[int, int]:
        c = p["channels"]
        return i[0] * c * k + 2 * c, _conv1d_flops(i[0], c, k, o)

    return OpSpec(
        f"conv1d_k{k}_bn" + ("_relu" if relu else ""),
        "signal",
        _signal_shape,
        module,
        _module_call,
        count,
        {"channels": CHANNELS, "stride": STRIDE},
        attr="conv",
        doc=f"1-D convolution, kernel {k} (no bias), batch norm" + (", ReLU" if relu else ""),
    )


def _sepconv1d(k: int) -> OpSpec:
    """Depthwise 1-D conv (kernel ``k``, strided), pointwise conv, BN, ReLU."""

    def module(s: Shape, p: Params) -> str:
        c_in, c = s[0], p["channels"]
        return (
            f"nn.Sequential({_conv1d(c_in, c_in, k, p, groups=c_in)}, "
            f"nn.Conv1d({c_in}, {c}, 1, bias=False), nn.BatchNorm1d({c}), nn.ReLU(inplace=True))"
        )

    def count(i: Shape, o: Shape, p: Params) -> tuple[int, int]:
        c_in, c = i[0], p["channels"]
        flops = _conv1d_flops(c_in, c_in, k, o, groups=c_in) + _conv1d_flops(c_in, c, 1, o)
        return c_in * k + c_in * c + 2 * c, flops

    return OpSpec(
        f"sepconv1d_k{k}",
        "signal",
        _signal_shape,
        module,
        _module_call,
        count,
        {"channels": CHANNELS, "stride": STRIDE},
        attr="conv",
        doc=f"depthwise 1-D convolution, kernel {k}, then pointwise; batch norm, ReLU",
    )


def _pool1d(kind: str) -> OpSpec:
    extra = ", count_include_pad=False" if kind == "avg" else ""

    def call(m: str, x: str, p: Params) -> str:
        return f"F.{kind}_pool1d({x}, 3, stride={p['stride']}, padding=1{extra})"

    return OpSpec(
        f"{kind}pool1d_k3",
        "signal",
        lambda s, p: (s[0], _ceil_div(s[1], p["stride"])),
        lambda s, p: None,
        call,
        _free,
        {"stride": STRIDE},
        attr="pool",
        doc=f"1-D {kind} pooling, kernel 3, padding 1",
    )


def _flatten_head_count(i: Shape, o: Shape, p: Params) -> tuple[int, int]:
    n, f = p["classes"], i[0] * i[1]
    return f * n + n, 2 * f * n


_SIGNAL_OPS = [
    *(_conv1d_bn(k, relu=True) for k in (1, *KERNELS_1D)),
    *(_conv1d_bn(k, relu=False) for k in KERNELS_1D),
    *(_sepconv1d(k) for k in KERNELS_1D),
    _pool1d("max"),
    _pool1d("avg"),
    OpSpec(
        "gap1d_linear",
        "signal",
        lambda s, p: (p["classes"],),
        lambda s, p: f"nn.Linear({s[0]}, {p['classes']})",
        lambda m, x, p: f"{m}({_atom(x)}.mean(2))",
        _gap_linear_count,  # the pooled (C,) feeds the linear layer, as in 2-D
        {"classes": CLASSES},
        attr="head",
        doc="global average pooling over the length, then a linear classifier",
    ),
    OpSpec(
        "flatten1d_linear",
        "signal",
        lambda s, p: (p["classes"],),
        lambda s, p: f"nn.Linear({s[0] * s[1]}, {p['classes']})",
        lambda m, x, p: f"{m}({_atom(x)}.flatten(1))",
        _flatten_head_count,
        {"classes": CLASSES},
        attr="head",
        doc="flatten channels x length, then a linear classifier (keeps position)",
    ),
]


# --- sequence ops: (L, W) tensors, the feature axis last (a transformer's residual stream) -
# Written as nanoGPT writes its block: token and position embedding, causal multi-head
# self-attention through F.scaled_dot_product_attention, an MLP, LayerNorm or RMSNorm,
# and a per-token or pooled head. The merge kinds apply unchanged on the feature axis.

#: Source of the classes generated code defines for the ops that need one; text of this
#: file only (never of a genotype), numbers come in as constructor arguments.
HELPERS: dict[str, str] = {
    "TokenEmbedding": '''class TokenEmbedding(nn.Module):
    """Token embedding plus a learned position embedding: (B, L) ids -> (B, L, W)."""

    def __init__(self, vocab: int, length: int, width: int) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, width)
        self.pos = nn.Embedding(length, width)
        nn.init.normal_(self.tok.weight, std=0.02)
        nn.init.normal_(self.pos.weight, std=0.02)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.tok(idx) + self.pos.weight''',
    "CausalSelfAttention": '''class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention on (B, L, W), as nanoGPT's."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.proj = nn.Linear(width, width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, L, 3W) -> three (B, heads, L, W / heads)
        q, k, v = self.qkv(x).unflatten(-1, (3, self.heads, -1)).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).flatten(2))''',
}

VOCAB = Param(int, 1, 1 << 20, doc="vocabulary size (token ids 0 .. vocab - 1)")
HEADS = Param(int, 1, 1024, doc="attention heads (must divide the width)")
RATIO = Param(int, 1, 16, default=4, doc="hidden width of the MLP / its input width")


def _attn_shape(s: Shape, p: Params) -> Shape:
    if s[1] % p["heads"]:
        raise GenotypeError(f"{p['heads']} heads do not divide the width {s[1]}")
    return s


def _attn_count(i: Shape, o: Shape, p: Params) -> tuple[int, int]:
    length, w = i
    # qkv and the output projection, then Q K^T and A V over all L x L pairs (what
    # PyTorch's counter gives for the math kernel; causal masking saves nothing there)
    return 4 * w * w, 8 * length * w * w + 4 * length * length * w


def _mlp_count(i: Shape, o: Shape, p: Params) -> tuple[int, int]:
    length, w = i
    h = p["ratio"] * w
    return 2 * w * h + h + w, 4 * length * w * h


_SEQUENCE_OPS = [
    OpSpec(
        "embed",
        TOKENS,
        lambda s, p: (s[0], p["features"]),
        lambda s, p: f"TokenEmbedding({p['vocab']}, {s[0]}, {p['features']})",
        _module_call,
        lambda i, o, p: ((p["vocab"] + i[0]) * p["features"], 0),
        {"vocab": VOCAB, "features": FEATURES},
        attr="embed",
        doc="token embedding plus a learned position embedding: (L,) ids -> (L, features)",
        helpers=("TokenEmbedding",),
    ),
    OpSpec(
        "attn",
        SEQUENCE,
        _attn_shape,
        lambda s, p: f"CausalSelfAttention({s[1]}, {p['heads']})",
        _module_call,
        _attn_count,
        {"heads": HEADS},
        attr="attn",
        doc="causal multi-head self-attention (scaled_dot_product_attention), no bias",
        helpers=("CausalSelfAttention",),
    ),
    OpSpec(
        "mlp",
        SEQUENCE,
        lambda s, p: s,
        lambda s, p: (
            f"nn.Sequential(nn.Linear({s[1]}, {p['ratio'] * s[1]}), nn.GELU(), "
            f"nn.Linear({p['ratio'] * s[1]}, {s[1]}))"
        ),
        _module_call,
        _mlp_count,
        {"ratio": RATIO},
        attr="mlp",
        doc="linear to ratio x width, GELU, linear back (a transformer's MLP)",
    ),
    OpSpec(
        "layernorm",
        SEQUENCE,
        lambda s, p: s,
        lambda s, p: f"nn.LayerNorm({s[1]})",
        _module_call,
        lambda i, o, p: (2 * i[1], 0),
        attr="ln",
        doc="layer norm over the features",
    ),
    OpSpec(
        "rmsnorm",
        SEQUENCE,
        lambda s, p: s,
        lambda s, p: f"nn.RMSNorm({s[1]})",
        _module_call,
        lambda i, o, p: (i[1], 0),
        attr="rms",
        doc="RMS norm over the features",
    ),
    OpSpec(
        "lm_head",
        SEQUENCE,
        lambda s, p: (s[0], p["classes"]),
        lambda s, p: f"nn.Linear({s[1]}, {p['classes']}, bias=False)",
        _module_call,
        lambda i, o, p: (i[1] * p["classes"], 2 * i[0] * i[1] * p["classes"]),
        {"classes": CLASSES},
        attr="head",
        doc="per-token classifier (a language model's head): (L, W) -> (L, classes)",
    ),
    OpSpec(
        "pool_head",
        SEQUENCE,
        lambda s, p: (p["classes"],),
        lambda s, p: f"nn.Linear({s[1]}, {p['classes']})",
        lambda m, x, p: f"{m}({_atom(x)}.mean(1))",
        lambda i, o, p: (i[1] * p["classes"] + p["classes"], 2 * i[1] * p["classes"]),
        {"classes": CLASSES},
        attr="head",
        doc="mean over the positions, then a linear classifier: (L, W) -> (classes,)",
    ),
]


_OP_LIST = [
    _conv_bn(3, relu=True),
    _conv_bn(3, relu=False),
    _conv_bn(1, relu=True),
    _conv_bn(3, relu=False, pre_relu=True),
    _conv_bn(1, relu=False, pre_relu=True),
    OpSpec(
        "sepconv3x3",
        "image",
        _same_conv_shape,
        _sepconv_module,
        _module_call,
        _sepconv_count,
        {"channels": CHANNELS, "stride": STRIDE},
        attr="conv",
        doc="depthwise 3x3 then pointwise 1x1 convolution, batch norm, ReLU",
    ),
    OpSpec(
        "bn_relu_conv3x3",
        "image",
        _same_conv_shape,
        _preact_module,
        _module_call,
        _preact_count,
        {"channels": CHANNELS, "stride": STRIDE},
        attr="conv",
        doc="pre-activation: batch norm, ReLU, 3x3 convolution",
    ),
    OpSpec(
        "bn_relu",
        "image",
        lambda s, p: s,
        lambda s, p: f"nn.Sequential(nn.BatchNorm2d({s[0]}), nn.ReLU(inplace=True))",
        _module_call,
        lambda i, o, p: (2 * i[0], 0),
        attr="act",
        doc="batch norm, ReLU (a pre-activation network's last activation)",
    ),
    _pool("max"),
    _pool("avg"),
    OpSpec(
        "upsample2x",
        "image",
        lambda s, p: (s[0], 2 * s[1], 2 * s[2]),
        lambda s, p: None,
        lambda m, x, p: f'F.interpolate({x}, scale_factor=2.0, mode="nearest")',
        _free,
        attr="up",
        doc="nearest-neighbour 2x upsampling",
    ),
    OpSpec(
        "gap_linear",
        "image",
        lambda s, p: (p["classes"],),
        lambda s, p: f"nn.Linear({s[0]}, {p['classes']})",
        lambda m, x, p: f"{m}({_atom(x)}.mean((2, 3)))",
        _gap_linear_count,
        {"classes": CLASSES},
        attr="head",
        doc="global average pooling, then a linear classifier",
    ),
    OpSpec(
        "conv1x1_head",
        "image",
        lambda s, p: (p["classes"], s[1], s[2]),
        lambda s, p: f"nn.Conv2d({s[0]}, {p['classes']}, 1)",
        _module_call,
        _head1x1_count,
        {"classes": CLASSES},
        attr="head",
        doc="per-pixel classifier (1x1 convolution with bias), for segmentation",
    ),
    _linear_op("linear_relu", False, True, "features", "linear layer, ReLU"),
    _linear_op("linear", False, False, "features", "linear layer"),
    _linear_op("layernorm_linear_relu", True, True, "features", "layer norm, linear layer, ReLU"),
    _linear_op("linear_head", False, False, "classes", "linear classifier"),
    *_SIGNAL_OPS,
    *_SEQUENCE_OPS,
    OpSpec(
        "relu",
        "any",
        lambda s, p: s,
        lambda s, p: None,
        lambda m, x, p: f"torch.relu({x})",
        _free,
        attr="act",
        doc="ReLU",
    ),
    OpSpec(
        "zero",
        "any",
        lambda s, p: s,
        lambda s, p: None,
        lambda m, x, p: f"{_atom(x)} * 0.0",
        _free,
        attr="zero",
        doc="zeros shaped like the input (NAS-Bench-201's cell that no path crosses)",
    ),
    OpSpec(
        "identity",
        "any",
        lambda s, p: s,
        lambda s, p: None,
        lambda m, x, p: x,
        _free,
        attr="id",
        doc="the merged input unchanged (a pure merge node)",
    ),
]

#: Every op by name.
OPS: dict[str, OpSpec] = {op.name: op for op in _OP_LIST}


def ops_for(domain: str) -> dict[str, OpSpec]:
    """The ops that accept an input of ``domain`` ("image", "signal", "vector", "sequence" or
    "tokens"), by name."""
    return {n: op for n, op in OPS.items() if op.domain in (domain, "any")}


#: One view per domain, as DESIGN.md lists them.
IMAGE_OPS = ops_for("image")
SIGNAL_OPS = ops_for("signal")
VECTOR_OPS = ops_for("vector")
SEQUENCE_OPS = {**ops_for(TOKENS), **ops_for(SEQUENCE)}
