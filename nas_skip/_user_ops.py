"""Your own ops: :func:`register_op` adds an entry to :data:`nas_skip.ops.OPS` from Python.

A user op is declared like a built-in one (parameters with types and ranges, a shape rule,
costs) and made by a *factory*: a module-level class or function ``factory(in_shape,
**params) -> nn.Module`` of an importable module. Generated code never holds the factory's
code: it imports it (``from my_ops import Gate``) and calls ``Gate((16, 8, 8), width=4)``,
with the shape and parameters that validation checked. The import names the module the
factory was registered from, never text of a genotype.

Like Ray and Optuna plugins, an op is registered at import time of a module (call
:func:`register_op` at its top level): a worker process that the search starts then gets
the op by importing that module, which :func:`ensure_registered` does with the records of
:func:`registered_ops`.

This module imports no torch: only the default cost rule, used when an op is given no
``count``, loads it.
"""

from __future__ import annotations

import importlib
import keyword
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from nas_skip.errors import GenotypeError, NasSkipError, brief
from nas_skip.ops import DOMAINS, OPS, OpSpec, Param, Params, Shape

__all__ = [
    "OpRecord",
    "OpRegistrationError",
    "Param",
    "ensure_registered",
    "register_op",
    "registered_ops",
]

Factory = Callable[..., Any]  # (in_shape, **params) -> torch.nn.Module
ShapeRule = Callable[[Shape, Params], Shape]
CountRule = Callable[[Shape, Shape, Params], tuple[int, int]]

#: how an op name is written: as the built-in ones are (lowercase, digits, underscores)
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
#: names the generated file uses itself: a factory named so would shadow them
_TAKEN = {"torch", "nn", "F", "super", "self"}
#: keys of a genotype's node object, which a parameter name cannot take
_NODE_KEYS = {"id", "op"}


class OpRegistrationError(NasSkipError, ValueError):
    """:func:`register_op` or :func:`ensure_registered` was given something unusable."""


@dataclass(frozen=True)
class OpRecord:
    """A registered user op, as data a worker process can re-create it from.

    ``module`` is the module whose import registers the op (where :func:`register_op` was
    called); ``factory_module`` and ``factory`` (a qualified name) locate its factory.
    """

    name: str
    module: str
    factory_module: str
    factory: str
    params: tuple[tuple[str, Param], ...]
    domain: str


_BUILTIN = frozenset(OPS)
_RECORDS: dict[str, OpRecord] = {}
_MEASURED: dict[tuple[str, Shape, tuple[tuple[str, Any], ...]], tuple[Shape, int, int]] = {}


def _fail(name: object, message: str) -> OpRegistrationError:
    return OpRegistrationError(f"register_op({brief(name)}): {message}")


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name) or keyword.iskeyword(name):
        raise _fail(
            name,
            "an op name is lowercase letters, digits and _, starting with a letter, at most 64",
        )
    if name in _BUILTIN:
        raise _fail(name, f"{name!r} is a built-in op; choose another name")
    return name


def _locate(name: str, factory: Factory) -> tuple[str, str]:
    """(module, qualname) of ``factory``, checked to lead back to it by import."""
    module = getattr(factory, "__module__", None)
    qualname = getattr(factory, "__qualname__", None)
    if not callable(factory) or not isinstance(module, str) or not isinstance(qualname, str):
        raise _fail(name, "factory must be a class or function: (in_shape, **params) -> module")
    if "<locals>" in qualname or "<lambda>" in qualname:
        raise _fail(
            name,
            f"factory {qualname} is defined inside a function or is a lambda; define it at the "
            "top level of a module, so that generated code can import it",
        )
    try:
        found: Any = sys.modules.get(module) or importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError):
        found = None
    if found is not factory:
        raise _fail(name, f"factory {module}.{qualname} cannot be imported by that name")
    if qualname.split(".")[0] in _TAKEN:
        raise _fail(name, f"factory name {qualname!r} would shadow a name generated code uses")
    return module, qualname


def _check_params(name: str, params: Mapping[str, Any] | None) -> dict[str, Param]:
    declared: dict[str, Param] = {}
    for key, value in (params or {}).items():
        where = f"parameter {brief(key)}"
        if not isinstance(key, str) or not key.isidentifier() or keyword.iskeyword(key):
            raise _fail(name, f"{where}: a parameter name must be a Python identifier")
        if key in _NODE_KEYS:
            raise _fail(name, f"{where}: 'id' and 'op' are a node's own keys")
        if isinstance(value, tuple) and len(value) in (3, 4):
            value = Param(*value)
        if not isinstance(value, Param):
            raise _fail(name, f"{where}: give a Param or a tuple (type, low, high[, default])")
        numbers = (value.low, value.high, *(() if value.default is None else (value.default,)))
        if value.type not in (int, float) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in numbers
        ):
            raise _fail(name, f"{where}: type must be int or float, and the bounds numbers")
        if not value.low <= value.high or (
            value.default is not None and not value.low <= value.default <= value.high
        ):
            raise _fail(name, f"{where}: needs low <= high and a default within them")
        declared[key] = value
    return declared


def _args(in_shape: Shape, params: Params) -> str:
    shape = "(" + ", ".join(str(d) for d in in_shape) + ("," if len(in_shape) == 1 else "") + ")"
    return ", ".join([shape, *(f"{k}={v!r}" for k, v in params.items())])


def _checked_shape(name: str, rule: ShapeRule) -> ShapeRule:
    def shape(s: Shape, p: Params) -> Shape:
        try:
            out = rule(tuple(s), dict(p))
        except Exception as exc:  # the user's rule: any failure is the op's, named so
            raise GenotypeError(
                f"op {name!r}: its shape rule failed on input {list(s)} "
                f"({type(exc).__name__}: {brief(str(exc))})"
            ) from None
        if (
            not isinstance(out, tuple | list)
            or len(out) not in DOMAINS
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in out)
        ):
            raise GenotypeError(
                f"op {name!r}: its shape rule returned {brief(out)} for input {list(s)}, not a "
                "tuple of 1 to 3 positive integers"
            )
        return tuple(out)

    return shape


def _measure(name: str, factory: Factory, s: Shape, p: Params) -> tuple[Shape, int, int]:
    """(output shape, parameters, FLOPs per sample) of the module, built and run once.

    On PyTorch's meta device first (no memory, no arithmetic); a module that needs real
    values (``.item()``) is run on the CPU instead.
    """
    key = (name, s, tuple(sorted(p.items())))
    if key in _MEASURED:
        return _MEASURED[key]
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    error: Exception | None = None
    for device in ("meta", "cpu"):
        try:
            with torch.device(device):
                module = factory(tuple(s), **p)
                x = torch.zeros(1, *s)
            module.eval()
            with FlopCounterMode(display=False) as counter, torch.no_grad():
                y = module(x)
            n_params = sum(t.numel() for t in module.parameters())
            result = (tuple(y.shape[1:]), n_params, counter.get_total_flops())
            break
        except Exception as exc:  # the user's module: report the CPU failure if both fail
            error = exc
    else:
        assert error is not None
        raise GenotypeError(
            f"op {name!r}: building or running its module on input {list(s)} failed "
            f"({type(error).__name__}: {brief(str(error))})"
        ) from None
    _MEASURED[key] = result
    return result


def _measured_count(name: str, factory: Factory) -> CountRule:
    def count(i: Shape, o: Shape, p: Params) -> tuple[int, int]:
        out, n_params, flops = _measure(name, factory, i, p)
        if out != tuple(o):
            raise GenotypeError(
                f"op {name!r}: its module returns shape {list(out)} for input {list(i)}, but "
                f"its shape rule says {list(o)} (give register_op a shape rule)"
            )
        return n_params, flops

    return count


def register_op(
    name: str,
    factory: Factory,
    *,
    params: Mapping[str, Param | tuple[Any, ...]] | None = None,
    shape: ShapeRule | None = None,
    domain: str = "any",
    count: CountRule | None = None,
    doc: str = "",
) -> OpSpec:
    """Add an op of your own to the registry, for genotypes, space files, build and export.

    Call it at the top level of a module (``my_ops.py``), and import that module before
    loading genotypes or spaces that name the op; search workers import it too (see
    :func:`ensure_registered`). Registering the same name with the same factory again does
    nothing, so a module may be imported twice.

    Args:
        name: the op's name in genotypes and space files: lowercase letters, digits and
            ``_``; not a built-in op's name.
        factory: ``factory(in_shape, **params) -> torch.nn.Module``, a class or function
            at the top level of an importable module; ``in_shape`` is the per-sample input
            shape as a tuple (``(C, H, W)``, ``(C, L)`` or ``(F,)``). Generated and exported
            code import it from its module and call it with literal arguments.
        params: declared parameters, ``name -> Param(type, low, high, default)`` or the tuple
            ``(type, low, high[, default])`` (type ``int`` or ``float``; no default: the
            genotype must give it). A genotype's values are checked against them.
        shape: ``shape(in_shape, params) -> out_shape``; default: the output has the input's
            shape. The default count checks the module against it.
        domain: the input it takes: ``"image"``, ``"signal"``, ``"vector"`` or ``"any"``.
        count: ``count(in_shape, out_shape, params) -> (parameters, flops)``; default: the
            module is built once per input shape and parameters on PyTorch's meta device,
            its parameters summed and one sample's forward counted with
            ``torch.utils.flop_counter.FlopCounterMode`` (as the built-in ops' FLOPs are).
        doc: one line for ``nas-skip ops`` listings.

    Returns:
        The op's :class:`~nas_skip.ops.OpSpec`, now in :data:`~nas_skip.ops.OPS`.

    Raises:
        OpRegistrationError: a bad or built-in name, a name already registered with another
            factory, a factory that cannot be imported by its name (defined inside a
            function, a lambda), a bad parameter declaration or domain.
    """
    name = _check_name(name)
    module, qualname = _locate(name, factory)
    declared = _check_params(name, params)
    if domain not in (*DOMAINS.values(), "any"):
        raise _fail(name, f"domain {brief(domain)} is not one of image, signal, vector, any")
    for what, rule in (("shape", shape), ("count", count)):
        if rule is not None and not callable(rule):
            raise _fail(name, f"{what} must be a function")
    caller = sys._getframe(1).f_globals.get("__name__", module)
    record = OpRecord(name, caller, module, qualname, tuple(declared.items()), domain)
    old = _RECORDS.get(name)
    if old is not None:
        if (old.factory_module, old.factory) != (module, qualname):
            raise _fail(
                name,
                f"already registered with factory {old.factory_module}.{old.factory}",
            )
        _unregister(name)

    def construct(s: Shape, p: Params) -> str:
        return f"{qualname}({_args(s, p)})"

    spec = OpSpec(
        name,
        domain,
        _checked_shape(name, shape or (lambda s, p: s)),
        construct,
        lambda m, x, p: f"{m}({x})",
        count or _measured_count(name, factory),
        declared,
        attr=name,
        doc=doc or f"{module}.{qualname} (a user op)",
        source=(module, qualname),
    )
    OPS[name] = spec
    _RECORDS[name] = record
    return spec


def _unregister(name: str) -> None:
    """Remove a user op (tests; re-registration)."""
    OPS.pop(name, None)
    _RECORDS.pop(name, None)
    for key in [k for k in _MEASURED if k[0] == name]:
        del _MEASURED[key]


def registered_ops() -> list[OpRecord]:
    """The user ops registered in this process, in registration order."""
    return list(_RECORDS.values())


def ensure_registered(records: Iterable[OpRecord]) -> None:
    """Make the ops of ``records`` (another process's :func:`registered_ops`) exist here,
    by importing the modules that registered them.

    Raises:
        OpRegistrationError: a module cannot be imported (or is a script's ``__main__``),
            or importing it did not register the op with the same factory.
    """
    for record in records:
        mine = _RECORDS.get(record.name)
        if mine is None:
            if record.module == "__main__":
                raise _fail(
                    record.name,
                    "was registered by a script (__main__), which another process cannot "
                    "import; register it in a module of its own",
                )
            try:
                importlib.import_module(record.module)
            except ImportError as exc:
                raise _fail(
                    record.name, f"cannot import {record.module!r}, which registered it ({exc})"
                ) from None
            mine = _RECORDS.get(record.name)
        if mine is None:
            raise _fail(
                record.name,
                f"importing {record.module!r} did not register it; call register_op at the top "
                "level of that module",
            )
        if (mine.factory_module, mine.factory) != (record.factory_module, record.factory):
            raise _fail(
                record.name,
                f"is registered here with factory {mine.factory_module}.{mine.factory}, not "
                f"{record.factory_module}.{record.factory}",
            )
