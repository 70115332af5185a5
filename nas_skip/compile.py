"""``build(genotype) -> nn.Module``: compile a genotype into a PyTorch module.

The module is the very source that :func:`nas_skip.export_code` writes, compiled in
process (as ``torch.fx`` does with its generated code, and registered in ``linecache`` so
tracebacks show it). Its forward is straight-line code, so it costs what a hand-written
module costs, and it traces with ``torch.jit.trace`` and ``torch.export``.
"""

from __future__ import annotations

import functools
import hashlib
import linecache
from types import CodeType
from typing import Any

from torch import nn

from nas_skip.codegen import generate_source
from nas_skip.genotype import Genotype


@functools.lru_cache(maxsize=256)
def _compile(source: str) -> tuple[CodeType, str]:
    filename = f"<nas-skip generated {hashlib.sha1(source.encode()).hexdigest()[:12]}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    return compile(source, filename, "exec"), filename


def build(genotype: Genotype, class_name: str = "Net") -> nn.Module:
    """Compile ``genotype`` into a freshly initialised ``nn.Module``.

    Args:
        genotype: a validated genotype.
        class_name: the name of the network class.

    Returns:
        The module; its ``state_dict`` keys equal those of the exported code, and
        ``model.genotype`` is the genotype it was built from.
    """
    import torch
    import torch.nn.functional as F  # noqa: N812

    source = generate_source(genotype, class_name)
    code, filename = _compile(source)
    namespace: dict[str, Any] = {
        "torch": torch,
        "nn": nn,
        "F": F,
        "__name__": "nas_skip.generated",
    }
    # generated from registry templates, checked numbers and checked identifiers only
    exec(code, namespace)  # noqa: S102
    model: nn.Module = namespace[class_name]()
    model.genotype = genotype  # type: ignore[assignment]
    return model
