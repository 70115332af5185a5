"""One-shot search: one supernet holds every candidate skip and op, mixed by learned
architecture weights; the strongest candidates give the network that is then trained
from scratch as an ordinary trial (see docs/DESIGN.md, "One-shot search").

```python
from nas_skip.oneshot import OneShotConfig, relax, train_supernet
relaxation = relax(load_space("deep_mlp"), fix={"depth": 16})
run = train_supernet(relaxation, load_dataset("mnist1d"), OneShotConfig(epochs=8))
genotype = relaxation.genotype_of(run.params)
```
"""

from __future__ import annotations

import importlib
from typing import Any

# what each public name is imported from: the package loads torch only when the supernet
# or its training is asked for (the report reads the relaxation's constants without it)
_EXPORTS = {
    "RELAXATIONS": "_relax",
    "MixedChoice": "_relax",
    "RelaxError": "_relax",
    "Relaxation": "_relax",
    "relax": "_relax",
    "SuperNet": "_supernet",
    "EpochRecord": "_train",
    "OneShotConfig": "_train",
    "OneShotRun": "_train",
    "inherited_accuracy": "_train",
    "train_supernet": "_train",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'nas_skip.oneshot' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"nas_skip.oneshot.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value
