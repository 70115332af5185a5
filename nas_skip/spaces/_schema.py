"""The search-space file schema: YAML read into dataclasses, in this one place.

A space file declares the domain, the default dataset (optional: a space for one's own
data names none, and the search's ``--dataset`` gives it), a skeleton family with its
searchable choices, and training hyperparameters with ranges. Every error names the file,
the YAML path (``skeleton.kinds[2]``) and the allowed values.

A *dimension* is written as a constant (``width: 128``), a list of choices
(``width: [64, 128]``) or a range (``lr: {low: 0.001, high: 0.3, log: true}``; integer
bounds make an integer range).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from nas_skip.errors import NasSkipError, brief
from nas_skip.merges import ALIGNS, MERGES
from nas_skip.ops import OPS, ops_for
from nas_skip.spaces._nb201 import NB201_OPS

DOMAINS = ("vector", "signal", "image", "segmentation", "sequence")
#: The op domain a space domain's layers take (segmentation networks are image networks).
OP_DOMAIN = {"vector": "vector", "signal": "signal", "image": "image", "segmentation": "image",
             "sequence": "sequence"}  # fmt: skip
FAMILIES = ("chain", "stages", "cell", "dense", "unet", "nb201", "transformer")
#: Where a transformer sublayer puts its norm: before the sublayer (pre-LN, GPT-2), after
#: the residual add (post-LN, the original Transformer), before and after the sublayer
#: (sandwich, CogView / NormFormer) or nowhere (as ReZero).
PLACEMENTS = ("pre", "post", "sandwich", "none")
Scalar = int | float | str
#: The most stages, blocks or cells per stage a skeleton may repeat: what they repeat is
#: bounded when a space is loaded (``_families.MAX_CHOICES``), and so a network holds at
#: most 16 x 64 NAS-Bench-201 cells. Past 16 stages a width doubled per stage passes the
#: 65,536 channels a layer may have.
MAX_REPEATS = {"stages": 16, "blocks": 16, "cells_per_stage": 64}
#: The most blocks of a transformer: a block asks no choice of its own, and DenseFormer's
#: averages join every pair of blocks (8,256 edges at 128).
MAX_TRANSFORMER_BLOCKS = 128
#: The largest integer a dimension may hold: what a float represents exactly.
MAX_INT = 2**53


class SpaceError(NasSkipError):
    """A search-space file or name is wrong; the message names the file and YAML path."""


@dataclass(frozen=True)
class Choice:
    """A categorical dimension (one value: a constant)."""

    values: tuple[Scalar, ...]


@dataclass(frozen=True)
class Range:
    """A numeric range; integer when both bounds are integers."""

    low: float
    high: float
    log: bool = False
    step: int | None = None

    @property
    def is_int(self) -> bool:
        return isinstance(self.low, int) and isinstance(self.high, int)


Dimension = Choice | Range

# per family: key -> (kind of value, required, default); kinds are read by _Reader.value
_SKELETON: dict[str, dict[str, tuple[str, bool, Any]]] = {
    "chain": {
        "depth": ("int_dim", True, None),  # number of layers
        "width": ("int_dim", True, None),  # features of every layer
        "ops": ("ops", True, None),  # op choices per layer
        "stem": ("op", False, None),  # fixed op before the first layer (None: no stem)
        "head": ("head", False, None),  # classifier (None: the domain's default head)
        "merge_op": ("op", False, "identity"),  # op of a layer's merge node
        "hop_window": ("int", True, None),  # a layer takes skips from this many before it
        "kinds": ("kinds", True, None),  # kinds of a searchable skip ("none": off)
    },
    "stages": {
        "stages": ("int", False, 3),
        "stem": ("op", False, None),  # the first layer's op (None: the domain's 3-wide conv)
        "head": ("head", False, None),  # classifier (None: the domain's global-pool head)
        "depth": ("int_dim", True, None),  # layers per stage, searched per stage
        "width": ("int_dim", True, None),  # channels of stage 1; doubled at each stage
        "ops": ("ops", True, None),
        "merge_op": ("op", False, "identity"),
        "hop_window": ("int", False, 0),  # 0: every earlier layer of the stage
        "kinds": ("kinds", True, None),
        "shortcut": ("aligns", True, None),  # align choices at stage transitions
    },
    "cell": {
        "nodes": ("int", True, None),  # cell nodes, input and output included (<= 7)
        "max_edges": ("int", True, None),  # active edges at most (NAS-Bench-101: 9)
        "ops": ("ops", True, None),
        "kinds": ("kinds", True, None),
        "stages": ("int", False, 3),
        "cells_per_stage": ("int", False, 1),
        "width": ("int_dim", True, None),  # channels of stage 1; doubled at each stage
    },
    "dense": {
        "blocks": ("int", False, 3),
        "layers": ("int_dim", True, None),  # layers per dense block
        "growth": ("int_dim", True, None),  # channels each layer adds
        "compression": ("float_dim", True, None),  # transition width factor
        "kinds": ("kinds", True, None),  # kinds of the searchable earlier-layer edges
    },
    "unet": {
        "depth": ("int_dim", True, None),  # encoder levels below the input resolution
        "width": ("int_dim", True, None),  # channels of level 0; doubled per level
        "long_kinds": ("kinds", True, None),  # kinds of each level's long skip
        "short_kinds": ("kinds", True, None),  # kinds of the residual skip inside blocks
    },
    "nb201": {
        "ops": ("cell_ops", True, None),  # NAS-Bench-201 op names an edge may take
        "stages": ("int", False, 3),
        "cells_per_stage": ("int", False, 5),
        "width": ("int_dim", True, None),  # channels of stage 1; doubled at each stage
    },
    "transformer": {
        "depth": ("int_dim", True, None),  # blocks (attention then MLP sublayer)
        "width": ("int_dim", True, None),  # the residual stream's features
        "heads": ("int_dim", True, None),  # attention heads; each must divide each width
        "mlp_ratio": ("int", False, 4),  # the MLP's hidden width / width
        "norm": ("ops", False, ("layernorm",)),  # norm op choices (layernorm, rmsnorm)
        "placements": ("placements", False, PLACEMENTS),  # each sublayer's norm placement
        "residuals": ("kinds", False, ("add",)),  # each sublayer's residual kind
        "hop_window": ("int", False, 0),  # longest cross-block skip in blocks (< 2: none)
        "skip_kinds": ("kinds", False, ("none", "add")),  # kinds of a cross-block skip
        "dwa": ("kinds", False, ("none",)),  # DenseFormer's weighted averages: scaled or none
        "head": ("head", False, None),  # None: lm_head (per token)
    },
}
_TRAIN_KEYS = {
    "lr": "float_dim",
    "weight_decay": "float_dim",
    "batch_size": "int_dim",
    "optimizer": "str_dim",
    "momentum": "float_dim",
    "label_smoothing": "float_dim",
    "grad_clip": "float_dim",
    "warmup_epochs": "float_dim",
}
_TOP = ("name", "description", "domain", "dataset", "family", "skeleton", "train")


@dataclass(frozen=True)
class SpaceSpec:
    """A search-space file, checked."""

    name: str
    description: str
    domain: str  # vector | signal | image | segmentation
    dataset: str | None  # default dataset (None: the caller must give one)
    family: str  # skeleton family, one of FAMILIES
    skeleton: Mapping[str, Any]  # checked values: Dimension, tuples of names, ints, str
    train: Mapping[str, Dimension]
    path: str  # where it was read from, for messages


class _Reader:
    def __init__(self, path: str, domain: str = "image") -> None:
        self.path = path
        self.domain = domain

    def fail(self, where: str, message: str) -> SpaceError:
        return SpaceError(f"{self.path}: {where}: {message}")

    def names(self, where: str, value: Any, allowed: Sequence[str], what: str) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            raise self.fail(where, f"must be a non-empty list of {what}s")
        for i, v in enumerate(value):
            if v not in allowed:
                raise self.fail(
                    f"{where}[{i}]", f"unknown {what} {brief(v)} ({what}s: {', '.join(allowed)})"
                )
        return tuple(value)

    def dim(self, where: str, value: Any, kind: str) -> Dimension:
        number = (float, int) if kind == "float_dim" else (int,)
        if kind == "str_dim":
            number = (str,)

        def ok(v: Any) -> bool:
            # YAML reads .inf and .nan as floats: no range or choice of them is usable
            finite = not isinstance(v, float) or math.isfinite(v)
            # samplers compute with floats: a larger integer overflows them (10**400)
            exact = not isinstance(v, int) or abs(v) <= MAX_INT
            return isinstance(v, number) and not isinstance(v, bool) and finite and exact

        if isinstance(value, Mapping):
            if kind == "str_dim":
                raise self.fail(where, "must be a value or a list of choices")
            unknown = set(value) - {"low", "high", "log", "step"}
            if unknown or not {"low", "high"} <= set(value):
                raise self.fail(
                    where, "a range needs 'low' and 'high' (and may have 'log', 'step')"
                )
            low, high = value["low"], value["high"]
            if not (ok(low) and ok(high)) or low > high:
                raise self.fail(
                    where,
                    f"range [{brief(low)}, {brief(high)}] must be finite numbers with low <= high",
                )
            log = value.get("log", False)
            if not isinstance(log, bool) or (log and low <= 0):
                raise self.fail(where, "'log' must be true or false, and a log range positive")
            step = value.get("step")
            if step is not None and (not isinstance(step, int) or step < 1):
                raise self.fail(where, f"'step' must be a positive integer, got {brief(step)}")
            if kind == "float_dim":
                return Range(float(low), float(high), log)
            return Range(low, high, log, step)
        values = value if isinstance(value, list) else [value]
        if not values or not all(ok(v) for v in values) or len(set(values)) != len(values):
            expected = {"int_dim": "integers", "float_dim": "finite numbers",
                        "str_dim": "strings"}[kind]  # fmt: skip
            raise self.fail(where, f"must be distinct {expected}, a list of them or a range")
        return Choice(tuple(values))

    def value(self, where: str, value: Any, kind: str) -> Any:
        ops = sorted(ops_for(OP_DOMAIN[self.domain]))
        if kind == "int":
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise self.fail(where, f"must be a non-negative integer, got {brief(value)}")
            return value
        if kind == "op":
            return self.names(where, value, ops, "op")[0]
        if kind == "head":
            heads = [o for o in ops if OPS[o].attr == "head"]
            return self.names(where, value, heads, "head")[0]
        if kind == "ops":
            return self.names(where, value, ops, "op")
        if kind == "cell_ops":
            return self.names(where, value, NB201_OPS, "op")
        if kind == "kinds":
            return self.names(where, value, sorted(MERGES), "kind")
        if kind == "placements":
            return self.names(where, value, PLACEMENTS, "placement")
        if kind == "aligns":
            return self.names(where, value, [a for a in ALIGNS if a != "auto"], "align")
        return self.dim(where, value, kind)


def with_train(spec: SpaceSpec, values: Mapping[str, Any]) -> SpaceSpec:
    """``spec`` with the ``train:`` entries of ``values``' keys fixed to those values."""
    r = _Reader(spec.path, spec.domain)
    fixed = {k: r.dim(f"train.{k}", v, _train_kind(r, k)) for k, v in values.items()}
    return replace(spec, train={**spec.train, **fixed})


def _train_kind(r: _Reader, key: str) -> str:
    if key not in _TRAIN_KEYS:
        raise r.fail(f"train.{key}", f"unknown key (keys: {', '.join(_TRAIN_KEYS)})")
    return _TRAIN_KEYS[key]


def read_spec(path: Path) -> SpaceSpec:
    """Read and check one space file.

    Raises:
        SpaceError: the file is missing, not YAML, or breaks the schema.
    """
    where = str(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpaceError(f"{where}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise SpaceError(f"{where}: not valid YAML{at}") from None
    except UnicodeDecodeError:
        raise SpaceError(f"{where}: not UTF-8 text") from None
    except ValueError:  # Python's own limit: an integer of more than 4,300 digits
        raise SpaceError(f"{where}: a number in the YAML has too many digits") from None
    except RecursionError:
        raise SpaceError(f"{where}: the YAML is nested too deeply") from None
    r = _Reader(where)
    if not isinstance(doc, Mapping):
        raise SpaceError(f"{where}: must be a mapping with keys {', '.join(_TOP)}")
    for key in doc:
        if key not in _TOP:
            raise r.fail(key, f"unknown key (keys: {', '.join(_TOP)})")
    for key in ("name", "domain", "family", "skeleton"):
        if key not in doc:
            raise r.fail(key, "missing")
    for key in ("name", "description", "dataset"):
        if key in doc and not isinstance(doc[key], str):
            raise r.fail(key, "must be a string")
    if doc["domain"] not in DOMAINS:
        domains = ", ".join(DOMAINS)
        raise r.fail("domain", f"unknown domain {brief(doc['domain'])} (domains: {domains})")
    if doc["family"] not in FAMILIES:
        raise r.fail(
            "family", f"unknown family {brief(doc['family'])} (families: {', '.join(FAMILIES)})"
        )
    r.domain = doc["domain"]
    if doc["family"] == "stages" and r.domain == "vector":
        raise r.fail("family", "family 'stages' needs a signal, image or segmentation domain")
    if (doc["family"] == "transformer") != (r.domain == "sequence"):
        raise r.fail("family", "the sequence domain takes family 'transformer', and only it")
    if doc["family"] not in ("chain", "stages") and r.domain in ("vector", "signal"):
        raise r.fail("family", f"family {doc['family']!r} needs an image or segmentation domain")
    if doc["family"] == "unet" and r.domain != "segmentation":
        raise r.fail("family", "family 'unet' needs the segmentation domain")
    if doc["family"] == "nb201" and r.domain != "image":
        raise r.fail("family", "family 'nb201' needs the image domain")
    declared = _SKELETON[doc["family"]]
    skeleton_doc = doc["skeleton"]
    if not isinstance(skeleton_doc, Mapping):
        raise r.fail("skeleton", "must be a mapping")
    skeleton: dict[str, Any] = {}
    for key, value in skeleton_doc.items():
        if key not in declared:
            raise r.fail(
                f"skeleton.{key}",
                f"unknown key for family {brief(doc['family'])} (keys: {', '.join(declared)})",
            )
        skeleton[key] = r.value(f"skeleton.{key}", value, declared[key][0])
    for key, (_, required, default) in declared.items():
        if key not in skeleton:
            if required:
                raise r.fail(f"skeleton.{key}", f"missing (family {doc['family']!r} needs it)")
            skeleton[key] = default
    train_doc = doc.get("train") or {}
    if not isinstance(train_doc, Mapping):
        raise r.fail("train", "must be a mapping")
    train: dict[str, Dimension] = {}
    for key, value in train_doc.items():
        train[key] = r.dim(f"train.{key}", value, _train_kind(r, key))
    if "optimizer" in train:
        r.names("train.optimizer", list(train["optimizer"].values), ["sgd", "adamw"], "optimizer")
    spec = SpaceSpec(
        name=doc["name"],
        description=doc.get("description", ""),
        domain=doc["domain"],
        dataset=doc.get("dataset"),
        family=doc["family"],
        skeleton=skeleton,
        train=train,
        path=where,
    )
    _check_family(spec, r)
    return spec


def _check_family(spec: SpaceSpec, r: _Reader) -> None:
    """Cross-field rules that the per-key checks cannot see."""
    s = spec.skeleton
    if spec.family == "chain" and s["hop_window"] < 1:
        raise r.fail("skeleton.hop_window", "must be at least 1")
    if spec.family == "cell":
        if not 3 <= s["nodes"] <= 7:
            raise r.fail("skeleton.nodes", f"must be in [3, 7], got {s['nodes']}")
        if s["max_edges"] < 1:
            raise r.fail("skeleton.max_edges", "must be at least 1")
    for key in ("stages", "blocks", "cells_per_stage"):
        if key in s and s[key] < 1:
            raise r.fail(f"skeleton.{key}", "must be at least 1")
        if key in s and s[key] > MAX_REPEATS[key]:
            # each repeats the rest of the skeleton: bounded before anything is built
            most = MAX_REPEATS[key]
            raise r.fail(f"skeleton.{key}", f"must be at most {most}, got {brief(s[key])}")
    for key in ("depth", "layers"):
        dim = s.get(key)
        if (
            isinstance(dim, Range)
            and dim.low < 1
            or isinstance(dim, Choice)
            and min(
                dim.values  # type: ignore[type-var]
            )
            < 1
        ):
            raise r.fail(f"skeleton.{key}", "must be at least 1")
    if spec.family == "transformer":
        _check_transformer(s, r)
    if spec.family == "dense" and not set(s["kinds"]) <= {"none", "concat", "seq"}:
        raise r.fail("skeleton.kinds", "dense blocks take kinds none and concat only")
    if spec.family != "nb201" and any(OPS[o].attr == "head" for o in s.get("ops", ())):
        raise r.fail("skeleton.ops", "a head op cannot be a layer op")
    if s.get("stem") is not None and OPS[s["stem"]].attr == "head":
        raise r.fail("skeleton.stem", "a head op cannot be the stem")


def _check_transformer(s: Mapping[str, Any], r: _Reader) -> None:
    """Every width takes every head count; norms are norms; skips are additive kinds."""
    heads, widths = s["heads"], s["width"]
    if not (isinstance(heads, Choice) and isinstance(widths, Choice)):
        raise r.fail("skeleton.heads", "width and heads must be values or lists, not ranges "
                     "(each head count must divide each width)")  # fmt: skip
    for key, dim in (("width", widths), ("heads", heads)):
        if any(not isinstance(v, int) or v < 1 for v in dim.values):
            raise r.fail(f"skeleton.{key}", "must be at least 1")
    for h in heads.values:
        for w in widths.values:
            if int(w) % int(h):
                raise r.fail("skeleton.heads", f"{h} heads do not divide width {w}")
    for i, op in enumerate(s["norm"]):
        if op not in ("layernorm", "rmsnorm"):
            raise r.fail(f"skeleton.norm[{i}]", f"{op!r} is not a norm (layernorm, rmsnorm)")
    for key, allowed in (
        ("residuals", ("add", "scaled", "gated", "none")),
        ("skip_kinds", ("none", "add", "scaled")),
        ("dwa", ("none", "scaled")),
    ):
        for i, kind in enumerate(s[key]):
            if kind not in allowed:
                raise r.fail(f"skeleton.{key}[{i}]",
                             f"kind {kind!r} is not one of {', '.join(allowed)}")  # fmt: skip
    depth = s["depth"]
    deepest = depth.high if isinstance(depth, Range) else max(int(v) for v in depth.values)
    if deepest > MAX_TRANSFORMER_BLOCKS:
        raise r.fail("skeleton.depth", f"must be at most {MAX_TRANSFORMER_BLOCKS} blocks, "
                     f"got {brief(deepest)}")  # fmt: skip
    if not 1 <= s["mlp_ratio"] <= 16:
        raise r.fail("skeleton.mlp_ratio", f"must be in [1, 16], got {s['mlp_ratio']}")
