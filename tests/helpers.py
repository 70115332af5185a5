"""Shared test helpers: random valid genotypes (hypothesis) and small genotype builders."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import threading
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from hypothesis import strategies as st

import nas_skip
from nas_skip import Genotype, GenotypeError, NasSkipError

if TYPE_CHECKING:
    import optuna

T = TypeVar("T")

KINDS = ["seq", "concat", "add", "scaled", "gated", "none"]
IMAGE_BODY_OPS = [
    "conv3x3_bn_relu",
    "conv3x3_bn",
    "conv1x1_bn_relu",
    "sepconv3x3",
    "bn_relu_conv3x3",
    "maxpool3x3",
    "avgpool3x3",
    "upsample2x",
    "relu",
    "identity",
]
VECTOR_BODY_OPS = ["linear_relu", "linear", "layernorm_linear_relu", "relu", "identity"]
SIGNAL_BODY_OPS = [
    "conv1d_k1_bn_relu",
    "conv1d_k3_bn_relu",
    "conv1d_k5_bn",
    "conv1d_k7_bn_relu",
    "sepconv1d_k5",
    "maxpool1d_k3",
    "avgpool1d_k3",
    "relu",
    "identity",
]
WIDTH_OPS = {"linear_relu", "linear", "layernorm_linear_relu"}
STRIDE_OPS = {
    "conv3x3_bn_relu",
    "conv3x3_bn",
    "conv1x1_bn_relu",
    "sepconv3x3",
    "bn_relu_conv3x3",
    "maxpool3x3",
    "avgpool3x3",
    *(o for o in SIGNAL_BODY_OPS if o not in ("relu", "identity")),
}
CHANNEL_OPS = STRIDE_OPS - {"maxpool3x3", "avgpool3x3", "maxpool1d_k3", "avgpool1d_k3"}
#: a sequence genotype's body: widths stay even, so two heads divide every width
SEQUENCE_BODY_OPS = ["attn", "mlp", "layernorm", "rmsnorm", "relu", "identity", "lm_head"]
#: The input shape and the heads of random genotypes, per domain.
SHAPES = {"vector": [1], "signal": [1, 12], "image": [1, 8, 8], "sequence": [1]}
HEADS = {
    "vector": ["linear_head"],
    "signal": ["gap1d_linear", "flatten1d_linear"],
    "image": ["gap_linear", "conv1x1_head"],
    "sequence": ["lm_head", "pool_head"],
}


#: a space of 1-2 linear layers on digits: CLI tests that search, quickly
CLI_SPACE = """name: cli
domain: vector
dataset: digits
family: chain
skeleton: {depth: {low: 1, high: 2}, width: [8, 16], ops: [linear_relu], hop_window: 1,
           kinds: [none, add]}
train: {lr: 0.05, batch_size: 256}
"""


TINY = """
name: tiny
description: a tiny MLP space for tests
domain: vector
dataset: digits
family: chain
skeleton:
  depth: {depth}
  width: {width}
  ops: [linear_relu]
  hop_window: 1
  kinds: {kinds}
train:
  lr: 0.05
  batch_size: 256
{extra}
"""


def write_space(folder: Path, name: str = "tiny", depth: str = "{low: 1, high: 2}",
                width: str = "[8, 16]", kinds: str = "[none, add, concat]",
                extra: str = "") -> Path:  # fmt: skip
    path = folder / f"{name}.yaml"
    text = TINY.format(depth=depth, width=width, kinds=kinds, extra=extra)
    path.write_text(text.replace("name: tiny", f"name: {name}"))
    return path


def search_config(tmp_path: Path, space: Path, **kw: Any) -> Any:
    """A ``SearchConfig`` of ``space`` with its SQLite study and artifacts under
    ``tmp_path``, 2 epochs, seed 0; ``kw`` adds or overrides fields."""
    from nas_skip.searching import SearchConfig

    base: dict[str, Any] = {
        "space": str(space),
        "storage": f"sqlite:///{tmp_path / 'study.db'}",
        "artifacts": str(tmp_path / "artifacts"),
        "epochs": 2,
        "seed": 0,
    }
    return SearchConfig(**{**base, **kw})


def blobs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three Gaussian blobs in 6 dimensions: learnable in one epoch."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centres = np.eye(3, 6) * 4.0
    return (centres[y] + rng.normal(size=(n, 6))).astype(np.float32), y


def search_arrays(tmp_path: Path, dataset: Any, **kw: Any) -> optuna.Study:
    """``nas_skip.search`` of :data:`CLI_SPACE` on ``dataset`` as a script calls it: 3 trials,
    seed 0, no progress bar, storage and artifacts under ``tmp_path``; ``kw`` adds or overrides
    options."""
    space = tmp_path / "cli.yaml"
    space.write_text(CLI_SPACE)
    options: dict[str, Any] = {"trials": 3, "seed": 0, "progress": False,
                               "storage": f"sqlite:///{tmp_path / 's.db'}",
                               "artifacts": str(tmp_path / "artifacts")}  # fmt: skip
    return nas_skip.search(space, dataset, **{**options, **kw})


def chain(
    input_shape: list[int],
    *nodes: dict[str, Any],
    edges: list[dict[str, Any]] | None = None,
    output: str | None = None,
) -> dict[str, Any]:
    """A genotype document: ``nodes`` in a chain from input (plus any extra ``edges``)."""
    ids = ["input"] + [n["id"] for n in nodes]
    chain_edges = [{"src": a, "dst": b} for a, b in zip(ids, ids[1:], strict=False)]
    return {
        "schema": 1,
        "input": {"shape": input_shape},
        "nodes": list(nodes),
        "edges": chain_edges + (edges or []),
        "output": output or ids[-1],
    }


def repair(doc: dict[str, Any]) -> Genotype | None:
    """Validate ``doc``, switching the align of an edge that cannot be aligned to projection
    (one edge at a time: how spaces repaired their samples before ``repair=True``)."""
    for _ in range(len(doc["edges"]) + 1):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return Genotype.from_json(doc)
        except GenotypeError as exc:
            edge = next((e for e in doc["edges"] if (e["src"], e["dst"]) == exc.edge), None)
            if edge is None or edge.get("align") == "projection":
                return None
            edge["align"] = "projection"
    return None


def _edge(draw: st.DrawFn, src: str, dst: str, kinds: list[str], main: bool) -> dict[str, Any]:
    """A random edge of any kind and align; the ``main`` input is never ``none``, so that a
    live chain keeps every node."""
    kind = draw(st.sampled_from(kinds))
    if main and kind == "none":
        kind = "seq"
    edge: dict[str, Any] = {"src": src, "dst": dst, "kind": kind}
    edge["align"] = draw(st.sampled_from(["auto", "zero_pad", "projection"]))
    if kind == "scaled":
        edge["init"] = draw(st.sampled_from([0.0, 0.5, 1.0]))
    if kind == "gated":
        edge["bias"] = draw(st.sampled_from([-2.0, 0.0]))
    return edge


@st.composite
def genotype_docs(
    draw: st.DrawFn,
    domain: str | None = None,
    max_nodes: int = 7,
    kinds: list[str] = KINDS,
    ops: list[str] | None = None,
) -> dict[str, Any]:
    """A random valid genotype document (vector, signal, image or, asked for, a sequence of
    token ids embedded first), with every kind and align."""
    domain = domain or draw(st.sampled_from(["vector", "signal", "image"]))
    body_ops = ops or {"image": IMAGE_BODY_OPS, "signal": SIGNAL_BODY_OPS,
                       "sequence": SEQUENCE_BODY_OPS}.get(domain, VECTOR_BODY_OPS)  # fmt: skip
    shape = [draw(st.integers(2, 4) if domain != "vector" else st.integers(3, 8))]
    shape += SHAPES[domain][1:]
    n = draw(st.integers(1, max_nodes))
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    strides = 0
    ids = ["input"]
    if domain == "sequence":  # token ids feed only the embedding
        width = draw(st.sampled_from([2, 4, 6]))
        nodes.append({"id": "e", "op": "embed", "vocab": 5, "features": width})
        edges.append({"src": "input", "dst": "e"})
        ids = ["e"]
    for i in range(n):
        op = draw(st.sampled_from(body_ops))
        if op == "upsample2x" and strides < 0:
            op = "relu"  # at most one net upsampling keeps the tensors small
        node: dict[str, Any] = {"id": f"n{i}", "op": op}
        if op in CHANNEL_OPS:
            node["channels"] = draw(st.integers(1, 6))
        if op in WIDTH_OPS:
            node["features"] = draw(st.integers(1, 9))
        if op == "attn":
            node["heads"] = 2
        if op == "lm_head":
            node["classes"] = draw(st.sampled_from([2, 4, 6]))
        if op in STRIDE_OPS and strides < 2 and draw(st.booleans()):
            node["stride"] = 2
            strides += 1
        if op == "upsample2x":
            strides -= 1
        sources = sorted(set(draw(st.lists(st.sampled_from(ids), max_size=3))) | {ids[-1]})
        edges += [_edge(draw, src, node["id"], kinds, src == ids[-1]) for src in sources]
        nodes.append(node)
        ids.append(node["id"])
    head = {"id": "head", "op": draw(st.sampled_from(HEADS[domain])), "classes": 3}
    nodes.append(head)
    # the head is fed by a merge of any kind too: a template that uses its input inside an
    # expression (x.mean(...), x.flatten(1)) must take an inlined merge whole
    sources = sorted(set(draw(st.lists(st.sampled_from(ids), max_size=2))) | {ids[-1]})
    edges += [_edge(draw, src, "head", kinds, src == ids[-1]) for src in sources]
    doc = {
        "schema": 1,
        "input": {"shape": shape, **({"domain": "sequence"} if domain == "sequence" else {})},
        "nodes": nodes,
        "edges": edges,
        "output": "head",
    }
    if repair(doc) is None:
        from hypothesis import assume

        assume(False)
    return doc


def import_source(source: str, tmp_path: Path, name: str = "exported") -> ModuleType:
    """Import ``source`` as a real module from a file, as a user of exported code would."""
    path = tmp_path / f"{name}_{uuid.uuid4().hex[:8]}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def nas_skip_cli(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the command line as a user does: in a subprocess, at a fixed terminal width."""
    env = {**os.environ, "COLUMNS": "100"}  # a fixed width: rich must not wrap the table
    return subprocess.run(
        [sys.executable, "-m", "nas_skip.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


def finishes(work: Callable[[], T], seconds: float = 10.0) -> T | NasSkipError:
    """Run ``work`` and return what it returns, or the :class:`NasSkipError` it raises
    (checked to be one line); fail the test if it is not done within ``seconds``.

    The work runs in a daemon thread, so a test of input that used to hang fails in
    ``seconds`` instead of hanging the suite (pytest has no timeout of its own here).
    """
    value: list[Any] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            value.append(work())
        except NasSkipError as exc:
            value.append(exc)
        except BaseException as exc:  # re-raised in the test's thread, with its traceback
            error.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    if error:
        raise error[0]
    result = value[0]
    if isinstance(result, NasSkipError):
        assert "\n" not in str(result) and len(str(result)) < 400, str(result)
    return result  # type: ignore[no-any-return]


#: a tiny transformer space for tests: 1-2 blocks of width 16 (``{dataset}``: pydoc_lm or
#: mqar), every residual design searchable
TINY_TRANSFORMER = """
name: {name}
description: a tiny transformer space for tests
domain: sequence
dataset: {dataset}
family: transformer
skeleton:
  depth: {{low: 1, high: 2}}
  width: 16
  heads: 2
  mlp_ratio: 2
  norm: [layernorm, rmsnorm]
  placements: [pre, post]
  residuals: [add, scaled]
  hop_window: 2
  skip_kinds: [none, add]
train:
  optimizer: adamw
  lr: 0.003
  batch_size: 64
  grad_clip: 1.0
"""


def write_transformer_space(folder: Path, dataset: str = "pydoc_lm", name: str = "ttf") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(TINY_TRANSFORMER.format(name=name, dataset=dataset))
    return path


def transformer_doc(design: str = "pre", depth: int = 2, length: int = 12, vocab: int = 10,
                    width: int = 8) -> dict[str, Any]:  # fmt: skip
    """A small decoder genotype: pre-LN (``design`` "pre") or post-LN blocks with an
    ``add`` residual per sublayer, a final norm and a per-token head."""
    nodes: list[dict[str, Any]] = [{"id": "e", "op": "embed", "vocab": vocab, "features": width}]
    edges: list[dict[str, Any]] = [{"src": "input", "dst": "e"}]
    x = "e"
    for b in range(depth):
        for sub, op in (("a", {"op": "attn", "heads": 2}), ("m", {"op": "mlp", "ratio": 2})):
            f, r = f"b{b}{sub}", f"b{b}{sub}_res"
            h = x
            if design == "pre":
                h = f"b{b}{sub}_norm"
                nodes.append({"id": h, "op": "layernorm"})
                edges.append({"src": x, "dst": h})
            nodes += [
                {"id": f, **op},
                {"id": r, "op": "layernorm" if design == "post" else "identity"},
            ]
            edges += [
                {"src": h, "dst": f},
                {"src": x, "dst": r},
                {"src": f, "dst": r, "kind": "add"},
            ]
            x = r
    nodes += [
        {"id": "norm_f", "op": "layernorm"},
        {"id": "head", "op": "lm_head", "classes": vocab},
    ]
    edges += [{"src": x, "dst": "norm_f"}, {"src": "norm_f", "dst": "head"}]
    return {"schema": 1, "input": {"shape": [length], "domain": "sequence"}, "nodes": nodes,
            "edges": edges, "output": "head"}  # fmt: skip


#: the folder where :func:`score_once_two_started` marks each trial it starts
BARRIER_ENV = "NAS_SKIP_TEST_BARRIER"


def score_once_two_started(model: Any, data: Any, hparams: dict[str, Any], report: Any) -> float:
    """A user objective (the untrained network's validation loss) that returns only once two
    worker processes have started a trial each, so the first trials of two workers end
    together, whatever each process's start-up took. Each trial leaves a file named by its
    process in the folder ``$NAS_SKIP_TEST_BARRIER``."""
    import time

    import torch
    import torch.nn.functional as F  # noqa: N812

    barrier = Path(os.environ[BARRIER_ENV])
    (barrier / f"{os.getpid()}-{uuid.uuid4().hex}").touch()
    deadline = time.monotonic() + 180
    while len({p.name.split("-")[0] for p in barrier.iterdir()}) < 2:
        if time.monotonic() > deadline:
            raise TimeoutError("no second worker process started a trial in 180 s")
        time.sleep(0.001)
    with torch.no_grad():
        return float(F.cross_entropy(model(data.x_val), data.y_val))
