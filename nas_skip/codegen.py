"""Writing a genotype as plain PyTorch source: one generator behind ``build`` and ``export_code``.

The source is assembled only from this package's templates (the op and merge registries;
a user op's entry contributes the import and the name of its factory, never text of a
genotype), numbers that validation has checked, and node ids that are checked
identifiers (mangled so that they cannot collide with Python keywords, ``nn.Module``
attributes or our own temporaries). No other text from a genotype reaches it.

Layout of the generated file: the genotype's *cut nodes* (nodes that every input -> output
path passes through) split it into segments. A segment of several nodes that occurs more
than once, identical in ops, shapes and edges, becomes one block class (as hand-written
ResNets have ``BasicBlock``); everything else is written inline in the network class. The
forward pass is straight-line code in the genotype's topological order.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from nas_skip.errors import NasSkipError, brief
from nas_skip.genotype import INPUT, Genotype, Merge, costs
from nas_skip.merges import MERGES
from nas_skip.ops import HELPERS, OPS, Shape

# names the generated forward uses itself, or that would shadow what it uses (the helper
# classes some built-in ops need among them)
_RESERVED = {"x", "m", "s", "g", "self", "torch", "nn", "F", "super", *HELPERS}
# attributes that build() sets on the module it returns (a node id may not take them)
_BUILD_ATTRIBUTES = {"genotype"}
# the block classes the generated file defines: Block1, Block2, ...
_BLOCK_CLASS = re.compile(r"Block[0-9]+")


def _module_attributes() -> set[str]:
    import torch

    module = torch.nn.Module()
    return set(dir(torch.nn.Module)) | set(vars(module))


_WIDTH = 99  # the house line length, so exported files pass the same linters


def _split_args(text: str) -> list[str]:
    """Split ``text`` at the commas that are not nested in brackets."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def _split_top(text: str, sep: str) -> list[str]:
    """Split ``text`` at the occurrences of ``sep`` that are not nested in brackets."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(text):
        ch = text[i]
        depth += ch in "([{"
        depth -= ch in ")]}"
        if depth == 0 and text.startswith(sep, i):
            parts.append(text[start:i])
            i = start = i + len(sep)
            continue
        i += 1
    parts.append(text[start:])
    return parts


def _one_call(code: str) -> bool:
    """Whether ``code`` is ``head(args)``: its first "(" closes at its last character."""
    depth = 0
    for i, ch in enumerate(code[code.index("(") :]):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if depth == 0:
            return i == len(code) - code.index("(") - 1
    return False


def _indent(lines: list[str], pad: str = "        ") -> list[str]:
    """Indent method-body lines, wrapping the long ones as a formatter would."""
    out = []
    for line in lines:
        code, _, comment = line.partition("  # ")
        target, eq, value = code.partition(" = ")
        terms = _split_top(value, " + ") if eq else []
        if len(pad) + len(line) <= _WIDTH:
            out.append(pad + line)
        elif comment and len(pad) + len(code) <= _WIDTH:
            out += [f"{pad}# {comment}", pad + code]
        elif len(terms) > 1:  # a merge written inline: one term per line, in parentheses
            if comment:
                out.append(f"{pad}# {comment}")
            out.append(f"{pad}{target} = (")
            out += [f"{pad}    {'+ ' if i else ''}{term}" for i, term in enumerate(terms)]
            out.append(f"{pad})")
        elif code.endswith(")") and "(" in code and _one_call(code):
            head, _, args = code.partition("(")
            if comment:
                out.append(f"{pad}# {comment}")
            out.append(f"{pad}{head}(")
            out += [f"{pad}    {arg}," for arg in _split_args(args[:-1])]
            out.append(f"{pad})")
        else:
            out.append(pad + line)
    return out


def _shape_comment(shape: Shape) -> str:
    return "(B, " + ", ".join(str(d) for d in shape) + ")"


def cut_nodes(g: Genotype) -> list[str]:
    """Nodes every input -> output path passes through, in order (input and output included).

    In a topological order a node is on every path exactly when no edge jumps over it.
    """
    pos = {n: i for i, n in enumerate(g.order)}
    jump = [0] * (len(g.order) + 1)  # difference array: edges (a, b) cover a < i < b
    for plan in g.plans.values():
        for merge in (*plan.base, *plan.additive):
            a, b = pos[merge.edge.src], pos[merge.edge.dst]
            if b - a > 1:
                jump[a + 1] += 1
                jump[b] -= 1
    cuts, covered = [], 0
    for i, node in enumerate(g.order):
        covered += jump[i]
        if covered == 0:
            cuts.append(node)
    return cuts


def _segments(g: Genotype) -> list[list[str]]:
    cuts = set(cut_nodes(g))
    segments: list[list[str]] = [[]]
    for node in g.order[1:]:
        segments[-1].append(node)
        if node in cuts:
            segments.append([])
    return [s for s in segments if s]


#: the longest run of different segments that :func:`_periodic` groups into one block
_MAX_PERIOD = 8


def _periodic(g: Genotype, segments: list[list[str]]) -> list[list[str]]:
    """``segments`` with each run of ``p >= 2`` different multi-node segments that repeats
    back to back joined into one segment per repetition: a transformer's attention and MLP
    sublayers, each a segment, make one block as nanoGPT's ``Block`` holds both. Work is
    linear in the segments (periods up to :data:`_MAX_PERIOD`)."""
    ids: dict[Any, int] = {}
    keys = [ids.setdefault(_signature(g, s), len(ids)) if len(s) > 1 else -1 - i
            for i, s in enumerate(segments)]  # fmt: skip
    out: list[list[str]] = []
    i = 0
    while i < len(segments):
        for p in range(2, _MAX_PERIOD + 1):
            unit = keys[i : i + p]
            if len(unit) < p or len(set(unit)) < p or min(unit) < 0:  # short, repeats, or single
                continue
            reps = 1
            while keys[i + reps * p : i + (reps + 1) * p] == unit:
                reps += 1
            if reps > 1:
                for r in range(reps):
                    out.append([n for s in segments[i + r * p : i + (r + 1) * p] for n in s])
                i += reps * p
                break
        else:
            out.append(segments[i])
            i += 1
    return out


def _segment_input(g: Genotype, segment: list[str]) -> str:
    """The cut node that feeds a segment: every edge into the segment starts there or inside."""
    return g.plans[segment[0]].base[0].edge.src


def _signature(g: Genotype, segment: list[str]) -> tuple[Any, ...]:
    index = {n: i for i, n in enumerate(segment)}
    sig: list[Any] = [g.shapes[_segment_input(g, segment)]]
    for node_id in segment:
        plan = g.plans[node_id]
        merges = []
        for m in (*plan.base, *plan.additive):
            e = m.edge
            params = tuple(sorted(g.edge_params[e.src, e.dst].items()))
            merges.append((index.get(e.src, -1), e.kind, params, m.shortcut))
        params = tuple(sorted(g.node_params[node_id].items()))
        sig.append((g.node(node_id).op, params, plan.out, len(plan.base), tuple(merges)))
    return tuple(sig)


@dataclass
class _Body:
    """``__init__`` and ``forward`` lines of one class, with its attribute naming."""

    init: list[str] = field(default_factory=list)
    forward: list[str] = field(default_factory=list)
    used: set[str] = field(default_factory=set)
    counters: dict[str, int] = field(default_factory=dict)

    def numbered(self, stem: str) -> str:
        self.counters[stem] = self.counters.get(stem, 0) + 1
        return self.unique(f"{stem}{self.counters[stem]}")

    def unique(self, name: str) -> str:
        while name in self.used:
            name += "_"
        self.used.add(name)
        return name


def _user_imports(g: Genotype, class_name: str, for_export: bool) -> list[tuple[str, str, str]]:
    """(op, module, qualname) of every user op ``g`` uses (see :func:`nas_skip.register_op`),
    each once, in the genotype's order.

    Raises:
        NasSkipError: two factories or the network class would have the same name in the
            file, or (``for_export``) a factory lives in a script's ``__main__``.
    """
    found: dict[str, tuple[str, str, str]] = {}
    heads: dict[str, str] = {}  # imported name -> op
    for node_id in g.order[1:]:
        op = g.node(node_id).op
        source = OPS[op].source
        if source is None or op in found:
            continue
        module, qualname = source
        head = qualname.split(".")[0]
        if head == class_name or _BLOCK_CLASS.fullmatch(head):
            raise NasSkipError(
                f"op {op!r}: its factory's name {head!r} is the name of a class the generated "
                "file defines; rename the factory or pass another class_name"
            )
        if head in heads and found[heads[head]][1] != module:
            raise NasSkipError(
                f"op {op!r}: its factory's name {head!r} is also that of op {heads[head]!r}'s "
                "factory from another module; rename one of them"
            )
        if for_export and module == "__main__":
            raise NasSkipError(
                f"op {op!r}: its factory {qualname} is defined in a script (__main__), which "
                "an exported file cannot import; move it into a module"
            )
        heads.setdefault(head, op)
        found[op] = (op, module, qualname)
    return list(found.values())


class _Writer:
    def __init__(self, g: Genotype, class_name: str, for_export: bool = False) -> None:
        self.g = g
        self.class_name = class_name
        self.for_export = for_export
        names = _RESERVED | _BUILD_ATTRIBUTES | _module_attributes() | set(keyword.kwlist)
        self.reserved = names | {class_name}

    def mangle(self, body: _Body, node_id: str) -> str:
        name = "n" + node_id if node_id.startswith("_") else node_id
        while name in self.reserved:
            name += "_"
        return body.unique(name)

    def write_nodes(
        self,
        body: _Body,
        nodes: Sequence[str],
        local: dict[str, str],
        attr_for: Callable[[str], str],
        edge_attr: Callable[[Merge, str], str],
    ) -> None:
        """Append the init and forward lines of ``nodes``; ``local`` maps ids to variables."""
        g = self.g
        for node_id in nodes:
            plan = g.plans[node_id]

            def aligned(merge: Merge) -> str:
                sc = merge.shortcut
                ref = ""
                if sc.module is not None:
                    name = edge_attr(merge, "shortcut")
                    body.init.append(f"self.{name} = {sc.module}")
                    ref = f"self.{name}"
                return sc.call(ref, local[merge.edge.src])

            parts = [aligned(m) for m in plan.base]
            axis = -1 if g.sequence else 1  # a sequence's features are last
            base = parts[0] if len(parts) == 1 else f"torch.cat([{', '.join(parts)}], {axis})"
            op_input = base
            if plan.additive:
                steps: list[str] = []
                for merge in plan.additive:
                    e = merge.edge
                    spec = MERGES[e.kind]
                    s = aligned(merge)
                    params = g.edge_params[e.src, e.dst]
                    ref = ""
                    module = spec.module(plan.merged, params, g.sequence)
                    if module is not None:
                        name = edge_attr(merge, spec.attr)
                        ref = f"self.{name}"
                        body.init.append(f"{ref} = {module}")
                        body.init.extend(spec.init(ref, params))
                    if e.kind == "gated" and not s.isidentifier():
                        steps.append(f"s = {s}")
                        s = "s"
                    steps.extend(spec.combine("m", s, ref, params))
                if len(steps) == 1:  # one add or scaled merge: write it inline
                    line = spec.combine(base, s, ref, params)[0]
                    op_input = line[len(f"{base} = ") :]
                else:
                    body.forward.append(f"m = {base}")
                    body.forward.extend(steps)
                    op_input = "m"
            node = g.node(node_id)
            spec_op = OPS[node.op]
            params_op = g.node_params[node_id]
            module_op = spec_op.module(plan.merged, params_op)
            ref_op = ""
            name = attr_for(node_id)
            if module_op is not None:
                ref_op = f"self.{name}"
                body.init.append(f"{ref_op} = {module_op}")
            local[node_id] = name
            call = spec_op.call(ref_op, op_input, params_op)
            body.forward.append(f"{name} = {call}  # {_shape_comment(plan.out)}")

    def block_class(self, name: str, segment: list[str], uses: int) -> list[str]:
        g = self.g
        body = _Body(used=set(_RESERVED))
        attrs = {n: body.numbered(OPS[g.node(n).op].attr) for n in segment}
        src = _segment_input(g, segment)
        local = {src: "x"}
        self.write_nodes(
            body, segment, local, attrs.__getitem__, lambda m, stem: body.numbered(stem)
        )
        shape_in, shape_out = g.shapes[src], g.shapes[segment[-1]]
        lines = [
            f"class {name}(nn.Module):",
            f'    """{len(segment)} nodes, {_shape_comment(shape_in)} -> '
            f'{_shape_comment(shape_out)}; used {uses} times."""',
            "",
            "    def __init__(self) -> None:",
            "        super().__init__()",
            *_indent(body.init),
            "",
            "    def forward(self, x: torch.Tensor) -> torch.Tensor:",
            *_indent(body.forward),
            f"        return {local[segment[-1]]}",
        ]
        return lines

    def source(self) -> str:
        g = self.g
        segments = _periodic(g, _segments(g))
        sigs = [_signature(g, s) if len(s) > 1 else None for s in segments]
        counts: dict[Any, int] = {}
        for sig in sigs:
            if sig is not None:
                counts[sig] = counts.get(sig, 0) + 1
        classes: dict[Any, str] = {}
        blocks: list[str] = []
        main = _Body()
        local = {INPUT: "x"}
        attr_of: dict[str, str] = {}

        def node_attr(node_id: str) -> str:
            if node_id not in attr_of:
                attr_of[node_id] = self.mangle(main, node_id)
            return attr_of[node_id]

        def edge_attr(merge: Merge, stem: str) -> str:
            e = merge.edge
            name = f"{'proj' if stem == 'shortcut' else stem}_{e.src}_{e.dst}"
            return self.mangle(main, name.lstrip("_"))

        for segment, sig in zip(segments, sigs, strict=True):
            if sig is not None and counts[sig] > 1:
                if sig not in classes:
                    classes[sig] = f"Block{len(classes) + 1}"
                    blocks += self.block_class(classes[sig], segment, counts[sig]) + ["", ""]
                last = segment[-1]
                src = _segment_input(g, segment)
                name = node_attr(last)
                main.init.append(f"self.{name} = {classes[sig]}()")
                main.forward.append(
                    f"{name} = self.{name}({local[src]})  # {_shape_comment(g.shapes[last])}"
                )
                local[last] = name
            else:
                self.write_nodes(main, segment, local, node_attr, edge_attr)
        n_params = sum(c.params for c in costs(g))
        helpers: list[str] = []
        for node_id in g.order[1:]:
            for helper in OPS[g.node(node_id).op].helpers:
                if helper not in helpers:
                    helpers.append(helper)
        imported = _user_imports(g, self.class_name, self.for_export)
        outside = [f"    {op}: {module}.{qualname}" for op, module, qualname in imported]
        modules: dict[str, list[str]] = {}
        for _, module, qualname in imported:
            head = qualname.split(".")[0]
            if head not in modules.setdefault(module, []):
                modules[module].append(head)
        lines = [
            f'"""{self.class_name}: a network written by nas-skip from genotype '
            f"{g.canonical_hash()}.",
            "",
            f"Input {_shape_comment(g.input_shape)} -> output "
            f"{_shape_comment(g.shapes[g.output])}; {n_params:,} parameters. Load trained",
            "weights with `model.load_state_dict(torch.load(path, weights_only=True))`.",
            *(
                ["", "Ops from outside nas-skip, imported from their modules:", *outside]
                * bool(outside)
            ),
            '"""',
            "",
            "import torch",
            "import torch.nn.functional as F",
            "from torch import nn",
            *([""] * bool(modules)),
            *(f"from {module} import {', '.join(heads)}" for module, heads in modules.items()),
            "",
            "",
            *(line for h in helpers for line in (HELPERS[h], "", "")),
            *blocks,
            f"class {self.class_name}(nn.Module):",
            "    def __init__(self) -> None:",
            "        super().__init__()",
            *_indent(main.init),
            "",
            "    def forward(self, x: torch.Tensor) -> torch.Tensor:",
            *_indent(main.forward),
            f"        return {local[g.output]}",
            "",
        ]
        text = "\n".join(lines)
        if "F." not in text.replace("import torch.nn.functional as F", ""):
            text = text.replace("import torch.nn.functional as F\n", "")
        return text


def check_class_name(class_name: str) -> str:
    """``class_name`` if the generated file can define a class of that name.

    Raises:
        NasSkipError: it is not an ASCII identifier (Python folds other letters, so that
            ``ｔｏｒｃｈ`` names ``torch``), is a keyword or a dunder, or is a name the
            generated file defines, imports or uses (a block class ``Block1``: the network
            would build itself in its own ``__init__``).
    """
    reason = ""
    if not isinstance(class_name, str) or not class_name.isascii():
        reason = "not an ASCII identifier"
    elif not class_name.isidentifier() or keyword.iskeyword(class_name):
        reason = "not a Python identifier, or a keyword"
    elif class_name.startswith("__") and class_name.endswith("__"):
        reason = "a dunder name"
    elif class_name in _RESERVED or _BLOCK_CLASS.fullmatch(class_name):
        reason = (
            "a name the generated file defines or uses: torch, nn, F, super, Block1, "
            f"{', '.join(HELPERS)}, ..."
        )
    if reason:
        raise NasSkipError(
            f"class_name (--class-name): {brief(class_name)} is not a usable Python class "
            f"name ({reason})"
        )
    return class_name


def generate_source(g: Genotype, class_name: str = "Net", for_export: bool = False) -> str:
    """The standalone PyTorch source of ``g`` as a class ``class_name`` (see module doc).

    It imports torch, and the factories of the user ops ``g`` uses from their modules
    (listed in the file's docstring).

    Raises:
        NasSkipError: ``class_name`` cannot be used (see :func:`check_class_name`), or a
            user op's factory cannot be imported by the file (see :func:`_user_imports`).
    """
    return _Writer(g, check_class_name(class_name), for_export).source()
