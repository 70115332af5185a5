"""A search space bound to a dataset: samples genotypes and training hyperparameters."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas_skip._shipped import shipped
from nas_skip.errors import GenotypeWarning
from nas_skip.genotype import Genotype
from nas_skip.spaces._families import (
    ATTRS,
    BUILDERS,
    STRUCTURAL,
    STRUCTURE,
    Doc,
    Picker,
    Structure,
)
from nas_skip.spaces._schema import (
    Choice,
    Dimension,
    Range,
    SpaceError,
    SpaceSpec,
    read_spec,
    with_train,
)
from nas_skip.spaces._size import check_size, count, largest
from nas_skip.spaces._size import size_log10 as _size_log10

#: Where the shipped spaces live: search_spaces/ of the checkout or the installed wheel
#: (or $NAS_SKIP_SPACES).
SPACES_DIR = shipped("search_spaces")


def spaces_dir() -> Path:
    return Path(os.environ.get("NAS_SKIP_SPACES", SPACES_DIR))


@dataclass(frozen=True)
class ParamInfo:
    """One searchable parameter: its Optuna name and what it can take."""

    name: str
    dimension: Dimension

    @property
    def size(self) -> float:
        """Number of values (inf for a continuous range)."""
        return count(self.dimension)

    def describe(self) -> str:
        d = self.dimension
        if isinstance(d, Choice):
            return ", ".join(str(v) for v in d.values)
        text = f"[{d.low:g}, {d.high:g}]"
        return text + (" log" if d.log else "") + (f" step {d.step}" if d.step else "")


class _Recorder:
    """A stand-in trial: fixed values for some names, the first value for the rest."""

    def __init__(self, fixed: Mapping[str, Any]) -> None:
        self.fixed = fixed
        self.params: dict[str, ParamInfo] = {}

    def _take(self, name: str, dim: Dimension, first: Any) -> Any:
        self.params[name] = ParamInfo(name, dim)
        return self.fixed.get(name, first)

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        return self._take(name, Choice(tuple(choices)), choices[0])

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        return int(self._take(name, Range(low, high, log, step if step != 1 else None), low))

    def suggest_float(self, name: str, low: float, high: float, log: bool = False) -> float:
        return float(self._take(name, Range(low, high, log), low))


class Space:
    """A search space (one YAML file) bound to a dataset.

    Use :func:`load_space` to get one. :meth:`sample` turns an Optuna trial into a genotype
    (always valid: impossible alignments are repaired with projections, and dead nodes
    pruned), :meth:`sample_train` into training hyperparameters.
    """

    def __init__(self, spec: SpaceSpec, dataset: str, input_shape: tuple[int, ...],
                 num_classes: int) -> None:  # fmt: skip
        self.spec = spec
        self.name = spec.name
        self.domain = spec.domain
        self.dataset = dataset
        self.input_shape = input_shape
        self.num_classes = num_classes

    def __repr__(self) -> str:
        return f"Space({self.name!r}, dataset={self.dataset!r}, input={list(self.input_shape)})"

    # --- sampling ---------------------------------------------------------------------------
    def sample(self, trial: Any) -> Genotype:
        """A genotype from an Optuna trial (``optuna.Trial``, ``FixedTrial`` or alike).

        Parameter names are stable across runs and readable (``edge:s1.l0->s1.l2``).
        """
        doc = BUILDERS[self.spec.family](Picker(trial), self)
        return self._validate(doc)

    def ask(self, trial: Any) -> None:
        """Ask ``trial`` for every choice :meth:`sample` and :meth:`sample_train` would, in
        the same order, without building or validating the genotype (cheap: samplers use
        it to complete a proposal's choices)."""
        BUILDERS[self.spec.family](Picker(trial), self)
        self.sample_train(trial)

    def sample_train(self, trial: Any) -> dict[str, Any]:
        """Training hyperparameters (``train:lr`` ...) for :class:`nas_skip.train.TrainConfig`."""
        pick = Picker(trial)
        return {key: pick(f"train:{key}", dim) for key, dim in self.spec.train.items()}

    def structural(self) -> frozenset[str]:
        """Names of the parameters that decide which other parameters exist (``depth``)."""
        return frozenset(STRUCTURAL[self.spec.family](self))

    def structure(self, params: Mapping[str, Any]) -> Structure:
        """Depth and skips of a trial's network in the space's own layers (see
        :class:`~nas_skip.spaces.Structure`): a ``deep_mlp`` trial of ``depth`` 15 has
        depth 15, however many merge nodes its genotype has.

        Args:
            params: the trial's choices, as Optuna stores them.
        """
        doc = BUILDERS[self.spec.family](Picker(_Recorder(params)), self)
        structure: Structure = doc[STRUCTURE]
        return structure

    def attrs(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """User attributes the space derives from a trial's choices: ``depth``,
        ``longest_skip`` and ``skips`` (kind -> hops) as :meth:`structure` counts them,
        and what the family adds (``nb201_arch`` for NAS-Bench-201 cells)."""
        out = self.structure(params).to_attrs()
        derive = ATTRS.get(self.spec.family)
        return out if derive is None else {**out, **derive(dict(params), self)}

    def _validate(self, doc: Doc) -> Genotype:
        """Validate ``doc``, repairing alignments the shapes do not allow with projections
        (in one pass: re-validating after each repair was quadratic in the edges)."""
        doc = {key: value for key, value in doc.items() if key != STRUCTURE}
        with warnings.catch_warnings():
            # dead nodes are expected in cell spaces; NAS-Bench-101 prunes them too
            warnings.simplefilter("ignore", GenotypeWarning)
            return Genotype.from_json({**doc, "name": self.name}, repair=True)

    # --- description --------------------------------------------------------------------------
    def parameters(self, include_train: bool = True) -> list[ParamInfo]:
        """Every parameter the space can ask for (at its largest structure)."""
        structural = STRUCTURAL[self.spec.family](self)
        rec = _Recorder({name: largest(dim) for name, dim in structural.items()})
        BUILDERS[self.spec.family](Picker(rec), self)
        if include_train:
            self.sample_train(rec)
        return list(rec.params.values())

    def size_log10(self) -> float:
        """log10 of the number of distinct architectures the parameters encode.

        Counts parameter combinations (training hyperparameters excluded); isomorphic
        genotypes and repaired samples are not merged, so it is an upper bound. Computed in
        closed form per family: the work does not grow with the depth's range.
        """
        return _size_log10(self)


def list_spaces() -> list[str]:
    """Names of the shipped spaces."""
    return sorted(p.stem for p in spaces_dir().glob("*.yaml"))


def load_spec(name_or_path: str | Path) -> SpaceSpec:
    """The checked file of a shipped space (by name) or of a space file (by path).

    Raises:
        SpaceError: unknown space, or a bad file (naming the YAML path).
    """
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = spaces_dir() / f"{name_or_path}.yaml"
        if not path.exists():
            raise SpaceError(
                f"unknown space {str(name_or_path)!r} (spaces: {', '.join(list_spaces())}; "
                "or give a path to a .yaml file)"
            )
    return read_spec(path)


def load_space(name_or_path: str | Path, dataset: str | None = None,
               train: Mapping[str, Any] | None = None) -> Space:  # fmt: skip
    """Load a shipped space by name, or a space file by path, bound to a dataset.

    Args:
        name_or_path: a shipped space's name (``deep_mlp``) or a path to a YAML file.
        dataset: the dataset to bind (default: the space's own; required when the space
            file names none); fixes the input shape and the number of classes.
        train: fixed training values (``{"optimizer": "adamw", "lr": 0.003}``) that replace
            the file's ``train:`` entries of the same keys (``nas-skip search --lr ...``).

    Raises:
        SpaceError: unknown space, a bad file (naming the YAML path), no dataset, a dataset
            of the wrong domain, or an unknown ``train`` key.
    """
    spec = load_spec(name_or_path)
    if train:
        spec = with_train(spec, train)
    from nas_skip.data import DATASETS, dataset_info

    dataset = dataset or spec.dataset
    if dataset is None:
        raise SpaceError(
            f"{spec.path}: space {spec.name!r} names no dataset; give one (--dataset NAME or PATH)"
        )
    info = dataset_info(dataset)  # unknown: an error listing the datasets
    name = info.name
    fitting = sorted(n for n, i in DATASETS.items() if spec.domain in i.domains)
    if spec.domain not in info.domains:
        raise SpaceError(
            f"dataset {name!r} offers {' and '.join(info.domains)} data but space "
            f"{spec.name!r} needs {spec.domain} data (datasets for it: {', '.join(fitting)})"
        )
    shape = info.input_shapes[spec.domain]
    if spec.family == "unet":
        depth = largest(spec.skeleton["depth"])
        halvings = min((d & -d).bit_length() - 1 for d in shape[1:])  # 2**k divides both
        if depth > halvings:
            raise SpaceError(
                f"dataset {name!r}: its {shape[1]}x{shape[2]} images do not halve evenly "
                f"{depth} times, as space {spec.name!r} may need"
            )
    space = Space(spec, name, tuple(shape), info.num_classes)
    check_size(space)
    return space
