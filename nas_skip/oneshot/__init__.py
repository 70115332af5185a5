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

from nas_skip.oneshot._relax import MixedChoice, Relaxation, RelaxError, relax
from nas_skip.oneshot._supernet import MODES, SuperNet
from nas_skip.oneshot._train import (
    EpochRecord,
    OneShotConfig,
    OneShotRun,
    inherited_accuracy,
    train_supernet,
)

__all__ = [
    "MODES",
    "EpochRecord",
    "MixedChoice",
    "OneShotConfig",
    "OneShotRun",
    "RelaxError",
    "Relaxation",
    "SuperNet",
    "inherited_accuracy",
    "relax",
    "train_supernet",
]
