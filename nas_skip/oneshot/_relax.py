"""Relaxing a space: the supernet's graph, its mixed choices, and a genotype derived back.

A space's family builder is run once with a stand-in trial that answers every *edge-kind*
choice (``edge:l1->l3``, ``res:enc0``, ``skip:l2``) and every *op* choice (``op:l3``,
NAS-Bench-201's ``edge:0->2``) with a marked value that keeps the element in the graph:
the resulting document holds every candidate skip as an edge and every searched op as a
node, each carrying the name of the choice it stands for. Every other choice (depth,
width, a stage's shortcut, training hyperparameters) takes one fixed value: the one the
user fixes, else the largest structure and the middle of a training range (see
:func:`fixed_value`). The supernet mixes the candidates of each marked element; the
derived genotype is the space's own builder run on the winning values, so it is always
a network the space can sample (and dedup, draw, export) like any trial's.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nas_skip.errors import GenotypeWarning, NasSkipError, brief
from nas_skip.genotype import Genotype
from nas_skip.merges import MERGES
from nas_skip.ops import OPS
from nas_skip.spaces import Choice, Range, Space
from nas_skip.spaces._families import BUILDERS, STRUCTURE, Picker
from nas_skip.spaces._nb201 import NODE_OPS as NB201_NODE_OPS
from nas_skip.spaces._schema import Dimension

#: the prefixes of the parameters a relaxation mixes: skip kinds and ops
RELAXED_PREFIXES = ("edge:", "op:", "res:", "skip:")
NONE = "none"
#: "softmax" (DARTS: a choice's weights compete) or "sigmoid" (Fair DARTS: independent gates)
RELAXATIONS = ("softmax", "sigmoid")
#: op values that are parameter-free skips (NAS-Bench-201's), counted as skips
SKIP_OPS = frozenset({"skip_connect"})
#: per family, the registry op of each value of an op choice that is not an op itself
VALUE_OPS: dict[str, dict[str, str]] = {
    "nb201": {"none": "zero", "skip_connect": "identity", **NB201_NODE_OPS}
}
#: how strong a ``none`` value is under the sigmoid relaxation: an edge whose every gate
#: ends below it is dropped (Fair DARTS's threshold), since ``none`` has no output to gate
SIGMOID_NONE = 0.5


class RelaxError(NasSkipError):
    """A space cannot be relaxed as asked; the message names the choice."""


class _Marked(str):
    """A choice's answer that also says which choice it answers (survives the builder)."""

    choice: str

    def __new__(cls, value: str, choice: str) -> _Marked:
        out = super().__new__(cls, value)
        out.choice = choice
        return out


@dataclass(frozen=True)
class MixedChoice:
    """One relaxed choice: its values and the supernet elements it mixes.

    ``role`` is "edge" (its values are merge kinds; ``edges`` are the graph edges it
    decides) or "op" (its values are ops, ``ops`` the registry op of each; ``nodes`` the
    nodes it decides). A choice repeated in several cells decides several elements.
    """

    name: str
    values: tuple[str, ...]
    role: str
    edges: tuple[tuple[str, str], ...] = ()
    nodes: tuple[str, ...] = ()
    ops: tuple[str, ...] = ()

    def is_skip(self, value: str) -> bool:
        """Whether ``value`` keeps a skip: any kind but ``none``, or a skip op."""
        return value != NONE if self.role == "edge" else value in SKIP_OPS


@dataclass(frozen=True)
class Relaxation:
    """A space relaxed: the supernet's graph, its mixed choices, the fixed choices."""

    space: Space
    genotype: Genotype  # every candidate skip an ``add`` slot, every searched op a node
    choices: tuple[MixedChoice, ...]
    fixed: Mapping[str, Any]  # the value of every choice that is not relaxed
    hparams: Mapping[str, Any]  # the training recipe, constants included (TrainConfig's keys)

    def strengths(
        self, weights: Mapping[str, Sequence[float]], mode: str
    ) -> dict[str, list[float]]:
        """How strongly each value of each choice is chosen: the softmax weights, or the
        sigmoid gates with ``none`` at :data:`SIGMOID_NONE`."""
        out = {}
        for c in self.choices:
            w = [float(v) for v in weights[c.name]]
            if mode == "sigmoid":
                w = [SIGMOID_NONE if v == NONE else x for v, x in zip(c.values, w, strict=True)]
            out[c.name] = w
        return out

    def derive(self, strengths: Mapping[str, Sequence[float]],
               max_skips: int | None = None) -> dict[str, Any]:  # fmt: skip
        """The trial parameters of the derived network: the strongest value of each choice
        (an edge whose ``none`` wins is dropped), with at most ``max_skips`` skips kept
        (the strongest; P-DARTS's cap) and a cell's edge budget kept by strength."""
        params = dict(self.fixed)
        kept: list[tuple[float, MixedChoice]] = []  # (strength, choice) of each kept skip
        for c in self.choices:
            s = strengths[c.name]
            best = max(range(len(c.values)), key=lambda k: s[k])
            params[c.name] = c.values[best]
            if c.is_skip(c.values[best]):
                kept.append((s[best], c))
        budget = self.space.spec.skeleton.get("max_edges")
        if isinstance(budget, int):  # a cell's edge budget: the builder would cut by hop
            edges = [
                (strengths[c.name][c.values.index(params[c.name])], c)
                for c in self.choices
                if c.role == "edge" and params[c.name] != NONE
            ]
            for _, c in sorted(edges, key=lambda e: -e[0])[budget:]:
                params[c.name] = NONE
            kept = [(s, c) for s, c in kept if params[c.name] != NONE]
        if max_skips is not None:
            for _, c in sorted(kept, key=lambda e: -e[0])[max_skips:]:
                s = strengths[c.name]
                others = [k for k, v in enumerate(c.values) if not c.is_skip(v)]
                params[c.name] = c.values[max(others, key=lambda k: s[k])]
        return params

    def skips(self, params: Mapping[str, Any]) -> int:
        """How many relaxed choices of ``params`` keep a skip."""
        return sum(c.is_skip(str(params[c.name])) for c in self.choices)

    def genotype_of(self, params: Mapping[str, Any]) -> Genotype:
        """The network the space builds from ``params``."""
        import optuna

        return self.space.sample(optuna.trial.FixedTrial(dict(params)))


def fixed_value(name: str, dim: Dimension) -> Any:
    """The value a choice that is not relaxed takes unless the user fixes it: the largest
    structure (depth, width, growth: the supernet holds every smaller network's skips), a
    list's first name (a stage's shortcut), and for training the first of a list and the
    (geometric) middle of a range."""
    if isinstance(dim, Choice):
        values = dim.values
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        if numeric and not name.startswith("train:"):
            return max(values)
        return values[0]
    if not name.startswith("train:"):
        return int(dim.high) if dim.is_int else dim.high
    if dim.log:
        mid = math.sqrt(dim.low * dim.high)
    else:
        mid = (dim.low + dim.high) / 2
    if dim.is_int:
        step = dim.step or 1
        return int(dim.low + round((mid - dim.low) / step) * step)
    return mid


def _check_fixed(name: str, value: Any, dim: Dimension) -> Any:
    """``value`` as the choice ``name`` takes it (a CLI gives text), or a RelaxError."""
    if isinstance(dim, Choice):
        for v in dim.values:
            if v == value or str(v) == str(value):
                return v
        allowed = ", ".join(str(v) for v in dim.values)
        raise RelaxError(f"--fix {name}: {brief(value)} is not one of {allowed}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RelaxError(f"--fix {name}: {brief(value)} is not a number") from None
    if not (dim.low <= number <= dim.high) or (dim.is_int and not number.is_integer()):
        kind = "an integer" if dim.is_int else "a number"
        raise RelaxError(
            f"--fix {name}: {brief(value)} is not {kind} in [{dim.low:g}, {dim.high:g}]"
        )
    return int(number) if dim.is_int else number


class _RelaxingTrial:
    """The stand-in trial of :func:`relax`: marks relaxed choices, fixes the others."""

    def __init__(self, space: Space, fix: Mapping[str, Any]) -> None:
        self.space, self.fix = space, fix
        self.fixed: dict[str, Any] = {}
        self.relaxed: dict[str, tuple[str, ...]] = {}

    def _take(self, name: str, dim: Dimension) -> Any:
        value = _check_fixed(name, self.fix[name], dim) if name in self.fix else None
        if value is None:
            value = fixed_value(name, dim)
        self.fixed[name] = value
        return value

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        if name in self.fix or not name.startswith(RELAXED_PREFIXES):
            return self._take(name, Choice(tuple(choices)))
        values = tuple(str(v) for v in choices)
        self.relaxed[name] = values
        present = [v for v in values if v != NONE]
        if "add" in present:  # a skip slot on the residual stream; its kinds are mixed
            return _Marked("add", name)
        if not present:
            raise RelaxError(f"choice {name}: only 'none'; nothing to relax")
        # an op choice's first op, or a kind: either keeps the element in the graph
        pick = next((v for v in present if v not in SKIP_OPS), present[0])
        return _Marked(pick, name)

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        return int(self._take(name, Range(low, high, log, step if step != 1 else None)))

    def suggest_float(self, name: str, low: float, high: float, log: bool = False) -> float:
        return float(self._take(name, Range(low, high, log)))


def relax(space: Space, fix: Mapping[str, Any] | None = None) -> Relaxation:
    """Relax ``space``: every edge-kind and op choice mixed, every other choice fixed.

    Args:
        space: a loaded space.
        fix: values for choices by parameter name (``{"depth": 16, "train:lr": 0.01}``);
            a relaxed choice named here is not relaxed.

    Raises:
        RelaxError: a ``fix`` that names no choice of the space or a value out of its
            range, a space with nothing to relax, or a choice whose values are neither
            merge kinds nor ops, or a sequence space (the supernet's mixtures are written
            for channels-first tensors and vectors).
    """
    if space.domain == "sequence":
        raise RelaxError(f"space {space.name!r}: one-shot search mixes image, signal and "
                         "vector networks, not sequences; search it with trials")  # fmt: skip
    fix = dict(fix or {})
    names = {p.name for p in space.parameters()}
    for name in fix:
        if name not in names:
            raise RelaxError(f"--fix {brief(name)}: space {space.name!r} has no such choice")
    spec, whole = space.spec, space
    if isinstance(spec.skeleton.get("max_edges"), int):  # the supernet holds every edge
        skeleton = {**spec.skeleton, "max_edges": 1 << 30}
        whole = Space(dataclasses.replace(spec, skeleton=skeleton), space.dataset,
                      space.input_shape, space.num_classes)  # fmt: skip
    trial = _RelaxingTrial(space, fix)
    doc = BUILDERS[spec.family](Picker(trial), whole)
    hparams = space.sample_train(trial)
    if not trial.relaxed:
        raise RelaxError(f"space {spec.name!r} has no skip-kind or op choice to relax (its "
                         f"choices: {', '.join(sorted(names)) or 'none'})")  # fmt: skip
    value_ops = VALUE_OPS.get(spec.family, {})
    edges: dict[str, list[tuple[str, str]]] = {}
    nodes: dict[str, list[str]] = {}
    for e in doc["edges"]:
        if isinstance(e.get("kind"), _Marked):
            edges.setdefault(e["kind"].choice, []).append((e["src"], e["dst"]))
            e["kind"] = "add"
    for n in doc["nodes"]:
        if isinstance(n["op"], _Marked):
            nodes.setdefault(n["op"].choice, []).append(n["id"])
            n["op"] = str(n["op"])
    if spec.family == "nb201":  # its builder names the op node of cell edge i -> j e{i}{j}
        for name in trial.relaxed:
            i, j = name.removeprefix("edge:").split("->")
            nodes[name] = [n["id"] for n in doc["nodes"] if n["id"].endswith(f"_e{i}{j}")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GenotypeWarning)
        genotype = Genotype.from_json({**{k: v for k, v in doc.items() if k != STRUCTURE},
                                       "name": f"{spec.name}-supernet"}, repair=True)  # fmt: skip
    live = {(e.src, e.dst) for e in genotype.edges}
    alive = set(genotype.order)
    choices = []
    for name, values in trial.relaxed.items():
        if all(v in MERGES for v in values):
            found = tuple(e for e in edges.get(name, ()) if e in live)
            choices.append(MixedChoice(name, values, "edge", edges=found))
            continue
        ops = tuple(value_ops.get(v, v) for v in values)
        unknown = [v for v, op in zip(values, ops, strict=True) if op not in OPS]
        if unknown:
            raise RelaxError(f"choice {name}: {brief(unknown[0])} is neither a merge kind nor "
                             "an op, so it cannot be mixed")  # fmt: skip
        found_nodes = tuple(n for n in nodes.get(name, ()) if n in alive)
        choices.append(MixedChoice(name, values, "op", nodes=found_nodes, ops=ops))
    return Relaxation(space, genotype, tuple(choices), trial.fixed, hparams)
