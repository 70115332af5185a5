"""Write the reference genotypes into ``examples/genotypes/`` (deterministic, indent 2).

Each example is written as a plain dict, validated with :meth:`Genotype.from_json` (any
warning is an error: an example must need no repair) and checked to be in the canonical
form that ``Genotype.to_json`` gives, so the files read back unchanged. The tests rebuild
every file in process and compare bytes, so the files cannot drift from this script.

Usage: ``python scripts/make_examples.py [--out DIR] [--check]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from nas_skip import Genotype  # noqa: E402

OUT_DIR = ROOT / "examples" / "genotypes"

Doc = dict[str, Any]


def _doc(name: str, shape: list[int], nodes: list[Doc], edges: list[Doc], output: str) -> Doc:
    return {
        "schema": 1,
        "name": name,
        "input": {"shape": shape},
        "nodes": nodes,
        "edges": edges,
        "output": output,
    }


def cifar_resnet(n: int) -> Doc:
    """CIFAR ResNet-(6n+2) of He et al. 2015, option A (parameter-free) shortcuts.

    Args:
        n: blocks per stage (3: ResNet-20, 9: ResNet-56).

    Returns:
        The genotype document; block ``s<stage>b<block>`` is ``<id>a`` (conv-BN-ReLU),
        ``<id>b`` (conv-BN) and ``<id>`` (ReLU of the sum with the block input).
    """
    nodes: list[Doc] = [{"id": "stem", "op": "conv3x3_bn_relu", "channels": 16}]
    edges: list[Doc] = [{"src": "input", "dst": "stem"}]
    prev = "stem"
    for stage, width in enumerate((16, 32, 64), start=1):
        for block in range(1, n + 1):
            bid = f"s{stage}b{block}"
            down = stage > 1 and block == 1
            conv_a: Doc = {"id": f"{bid}a", "op": "conv3x3_bn_relu", "channels": width}
            if down:
                conv_a["stride"] = 2
            nodes += [
                conv_a,
                {"id": f"{bid}b", "op": "conv3x3_bn", "channels": width},
                {"id": bid, "op": "relu"},
            ]
            shortcut: Doc = {"src": prev, "dst": bid, "kind": "add"}
            if down:  # option A: subsample and zero-pad the new channels, no weights
                shortcut["align"] = "zero_pad"
            edges += [
                {"src": prev, "dst": f"{bid}a"},
                {"src": f"{bid}a", "dst": f"{bid}b"},
                {"src": f"{bid}b", "dst": bid},
                shortcut,
            ]
            prev = bid
    nodes.append({"id": "head", "op": "gap_linear", "classes": 10})
    edges.append({"src": prev, "dst": "head"})
    return _doc(f"resnet{6 * n + 2}", [3, 32, 32], nodes, edges, "head")


#: DenseNet example: layers in the dense block, growth rate, stem and transition widths.
DENSE_LAYERS = 5
GROWTH = 12
DENSE_STEM = 2 * GROWTH  # as DenseNet-BC: the stem gives twice the growth rate
DENSE_TRANSITION = (DENSE_STEM + DENSE_LAYERS * GROWTH) // 2  # compression 0.5


def densenet_block() -> Doc:
    """A DenseNet-style image network: stem, one dense block, a transition and a head.

    Every dense layer (and the transition) sees the concatenation of the stem and all
    earlier layers: ``seq`` from the previous layer, ``concat`` from the rest.
    """
    nodes: list[Doc] = [{"id": "stem", "op": "conv3x3_bn_relu", "channels": DENSE_STEM}]
    edges: list[Doc] = [{"src": "input", "dst": "stem"}]
    earlier = ["stem"]
    layers = [f"dense{i}" for i in range(1, DENSE_LAYERS + 1)] + ["trans"]
    for layer in layers:
        if layer == "trans":
            nodes.append({"id": layer, "op": "conv1x1_bn_relu", "channels": DENSE_TRANSITION})
        else:
            nodes.append({"id": layer, "op": "bn_relu_conv3x3", "channels": GROWTH})
        edges += [{"src": src, "dst": layer, "kind": "concat"} for src in earlier[:-1]]
        edges.append({"src": earlier[-1], "dst": layer})
        earlier.append(layer)
    nodes += [
        {"id": "pool", "op": "avgpool3x3", "stride": 2},
        {"id": "head", "op": "gap_linear", "classes": 10},
    ]
    edges += [{"src": "trans", "dst": "pool"}, {"src": "pool", "dst": "head"}]
    return _doc("densenet_block", [3, 32, 32], nodes, edges, "head")


def unet_small() -> Doc:
    """A small U-Net for 4-class segmentation of 3x32x32 images.

    Encoder levels of 16/32/64 channels, downsampled alternately by a 3x3 max pool and a
    stride-2 convolution; a 128-channel bottleneck at 4x4; the decoder upsamples and takes
    long skips: ``concat`` from levels 3 and 2, ``add`` from level 1 (into the head's
    input, where the decoder is back at 16 channels, so no alignment is needed).
    """
    conv = "conv3x3_bn_relu"
    nodes: list[Doc] = [
        {"id": "enc1", "op": conv, "channels": 16},  # (16, 32, 32)
        {"id": "down1", "op": "maxpool3x3", "stride": 2},  # (16, 16, 16)
        {"id": "enc2", "op": conv, "channels": 32},  # (32, 16, 16)
        {"id": "down2", "op": conv, "channels": 32, "stride": 2},  # (32, 8, 8)
        {"id": "enc3", "op": conv, "channels": 64},  # (64, 8, 8)
        {"id": "down3", "op": "maxpool3x3", "stride": 2},  # (64, 4, 4)
        {"id": "mid", "op": conv, "channels": 128},  # (128, 4, 4)
        {"id": "up3", "op": "upsample2x"},  # (128, 8, 8)
        {"id": "dec3", "op": conv, "channels": 64},  # cat(enc3, up3): 192 -> 64
        {"id": "up2", "op": "upsample2x"},  # (64, 16, 16)
        {"id": "dec2", "op": conv, "channels": 32},  # cat(enc2, up2): 96 -> 32
        {"id": "up1", "op": "upsample2x"},  # (32, 32, 32)
        {"id": "dec1", "op": conv, "channels": 16},  # (16, 32, 32)
        {
            "id": "head",
            "op": "conv1x1_head",
            "classes": 6,
        },  # dec1 + enc1 -> (6, 32, 32): shapes_seg
    ]
    chain = [n["id"] for n in nodes]
    edges: list[Doc] = [{"src": "input", "dst": chain[0]}]
    edges += [{"src": a, "dst": b} for a, b in pairwise(chain)]
    edges += [
        {"src": "enc3", "dst": "dec3", "kind": "concat"},
        {"src": "enc2", "dst": "dec2", "kind": "concat"},
        {"src": "enc1", "dst": "head", "kind": "add"},
    ]
    return _doc("unet_small", [3, 32, 32], nodes, edges, "head")


def highway_mlp(layers: int = 10, width: int = 64) -> Doc:
    """A highway network on 40-feature vectors (Srivastava et al. 2015).

    Layer ``hw<i>`` is an identity merge of its transform ``hw<i>t`` (linear-ReLU, ``seq``)
    and the carried layer input through a ``gated`` edge: ``g * H(x) + (1 - g) * x`` with
    ``g = sigmoid(W x + b)``, ``b = -2`` so that layers start by mostly carrying ``x``.
    """
    nodes: list[Doc] = [{"id": "stem", "op": "linear_relu", "features": width}]
    edges: list[Doc] = [{"src": "input", "dst": "stem"}]
    prev = "stem"
    for i in range(1, layers + 1):
        layer = f"hw{i}"
        nodes += [
            {"id": f"{layer}t", "op": "linear_relu", "features": width},
            {"id": layer, "op": "identity"},
        ]
        edges += [
            {"src": prev, "dst": f"{layer}t"},
            {"src": f"{layer}t", "dst": layer},
            {"src": prev, "dst": layer, "kind": "gated", "bias": -2.0},
        ]
        prev = layer
    nodes.append({"id": "head", "op": "linear_head", "classes": 10})
    edges.append({"src": prev, "dst": "head"})
    return _doc("highway_mlp", [40], nodes, edges, "head")


def rezero_mlp(blocks: int = 8, width: int = 64) -> Doc:
    """A ReZero residual MLP on 40-feature vectors (Bachlechner et al. 2020).

    Block ``rz<i>`` is an identity merge of the block input (``seq``) and the branch
    ``rz<i>f1`` (linear-ReLU) -> ``rz<i>f2`` (linear) through a ``scaled`` edge with
    ``init: 0.0``: ``x + alpha * F(x)``, the identity at initialisation.
    """
    nodes: list[Doc] = [{"id": "stem", "op": "linear_relu", "features": width}]
    edges: list[Doc] = [{"src": "input", "dst": "stem"}]
    prev = "stem"
    for i in range(1, blocks + 1):
        block = f"rz{i}"
        nodes += [
            {"id": f"{block}f1", "op": "linear_relu", "features": width},
            {"id": f"{block}f2", "op": "linear", "features": width},
            {"id": block, "op": "identity"},
        ]
        edges += [
            {"src": prev, "dst": f"{block}f1"},
            {"src": f"{block}f1", "dst": f"{block}f2"},
            {"src": prev, "dst": block},
            {"src": f"{block}f2", "dst": block, "kind": "scaled", "init": 0.0},
        ]
        prev = block
    nodes.append({"id": "head", "op": "linear_head", "classes": 10})
    edges.append({"src": prev, "dst": "head"})
    return _doc("rezero_mlp", [40], nodes, edges, "head")


def char_gpt(blocks: int = 4, width: int = 128, heads: int = 4) -> Doc:
    """A pre-LN decoder (GPT-2's block, nanoGPT's layout) for ``pydoc_lm``: 128 characters
    of a 97-symbol vocabulary in, next-character logits out.

    Block ``b<i>``: ``b<i>_ln1`` (LayerNorm) -> ``b<i>_attn`` (causal self-attention),
    joined to the stream at ``b<i>_x1`` (``add``), then ``b<i>_ln2`` -> ``b<i>_mlp`` joined at
    ``b<i>`` (``add``): ``x = x + attn(ln1(x)); x = x + mlp(ln2(x))``.
    """
    vocab, length = 97, 128
    nodes: list[Doc] = [{"id": "embed", "op": "embed", "vocab": vocab, "features": width}]
    edges: list[Doc] = [{"src": "input", "dst": "embed"}]
    prev = "embed"
    for i in range(1, blocks + 1):
        b = f"b{i}"
        nodes += [
            {"id": f"{b}_ln1", "op": "layernorm"},
            {"id": f"{b}_attn", "op": "attn", "heads": heads},
            {"id": f"{b}_x1", "op": "identity"},
            {"id": f"{b}_ln2", "op": "layernorm"},
            {"id": f"{b}_mlp", "op": "mlp", "ratio": 4},
            {"id": b, "op": "identity"},
        ]
        edges += [
            {"src": prev, "dst": f"{b}_ln1"},
            {"src": f"{b}_ln1", "dst": f"{b}_attn"},
            {"src": prev, "dst": f"{b}_x1"},
            {"src": f"{b}_attn", "dst": f"{b}_x1", "kind": "add"},
            {"src": f"{b}_x1", "dst": f"{b}_ln2"},
            {"src": f"{b}_ln2", "dst": f"{b}_mlp"},
            {"src": f"{b}_x1", "dst": b},
            {"src": f"{b}_mlp", "dst": b, "kind": "add"},
        ]
        prev = b
    nodes += [{"id": "ln_f", "op": "layernorm"}, {"id": "head", "op": "lm_head", "classes": vocab}]
    edges += [{"src": prev, "dst": "ln_f"}, {"src": "ln_f", "dst": "head"}]
    doc = _doc("char_gpt", [length], nodes, edges, "head")
    doc["input"]["domain"] = "sequence"
    return doc


#: file stem -> (document builder, one-line description for the README).
EXAMPLES: dict[str, tuple[Callable[[], Doc], str]] = {
    "resnet20": (
        lambda: cifar_resnet(3),
        "CIFAR ResNet-20 (He et al. 2015), option A zero-pad shortcuts; 269,722 parameters.",
    ),
    "resnet56": (
        lambda: cifar_resnet(9),
        "CIFAR ResNet-56, same layout with 9 blocks per stage; 853,018 parameters.",
    ),
    "densenet_block": (
        densenet_block,
        f"DenseNet-style: stem, one dense block of {DENSE_LAYERS} BN-ReLU-conv layers "
        f"(growth {GROWTH}, `concat` skips), transition, head.",
    ),
    "unet_small": (
        unet_small,
        "Small U-Net, [3, 32, 32] -> [6, 32, 32] (shapes_seg): long skips by `concat` "
        "(levels 3, 2) and `add` (level 1).",
    ),
    "highway_mlp": (
        highway_mlp,
        "Highway network on [40] vectors: 10 layers with `gated` carry edges (bias -2).",
    ),
    "rezero_mlp": (
        rezero_mlp,
        "ReZero residual MLP on [40] vectors: 8 blocks, branch through `scaled` edges "
        "with init 0.",
    ),
    "char_gpt": (
        char_gpt,
        "Pre-LN character-level decoder for `pydoc_lm` (nanoGPT's layout): 128 token ids "
        "-> [128, 97] logits, 4 blocks of width 128, 4 heads; 832,512 parameters.",
    ),
}


def check(doc: Doc) -> Genotype:
    """Validate ``doc`` with warnings as errors and check it is already canonical JSON.

    Raises:
        GenotypeError: the document is invalid.
        ValueError: it needed a repair (a warning) or does not round-trip unchanged.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            g = Genotype.from_json(doc)
        except Warning as exc:  # e.g. pruned dead nodes: an example must need no repair
            raise ValueError(f"{doc['name']}: {exc}") from exc
    if g.to_json() != doc:
        raise ValueError(f"{doc['name']}: the document does not round-trip through to_json")
    return g


def render_all() -> dict[str, str]:
    """Every file of ``examples/genotypes/`` by name, as the exact text to write."""
    files: dict[str, str] = {}
    readme = [
        "# Reference genotypes",
        "",
        "Written by `scripts/make_examples.py`; do not edit.",
        "",
    ]
    for stem, (make, about) in EXAMPLES.items():
        doc = make()
        check(doc)
        files[f"{stem}.json"] = json.dumps(doc, indent=2) + "\n"
        readme.append(f"- `{stem}.json`: {about}")
    files["README.md"] = "\n".join(readme) + "\n"
    return files


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check``, compare) the example files; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output directory")
    parser.add_argument(
        "--check", action="store_true", help="only report files that differ; exit 1 if any"
    )
    args = parser.parse_args(argv)
    stale = []
    for name, text in render_all().items():
        path = args.out / name
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(name)
        if not args.check:
            args.out.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    verb = "differ" if args.check else "written"
    print(f"{len(stale)} file(s) {verb}: {', '.join(stale) or '-'}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
