"""nas-skip's own Optuna samplers; each is a plain ``optuna.samplers.BaseSampler``.

- :class:`LocalSearchSampler`: surrogate-guided local search with restarts, graph-aware
  with a space (never proposes a genotype isomorphic to one the study holds): the default
  for single-objective searches, chosen on the evidence of ``scripts/bench_samplers.py``.
- :class:`RegularizedEvolutionSampler`: regularized (aging) evolution (Real et al. 2019).

Both keep no state outside the study's storage: resumed studies and parallel workers
continue exactly, and both work with ``study.optimize`` and the Ray backend.
"""

from nas_skip.samplers._common import SamplerError
from nas_skip.samplers._evolution import RegularizedEvolutionSampler
from nas_skip.samplers._local_search import LocalSearchSampler
from nas_skip.samplers._proposals import params_key, space_key

__all__ = [
    "LocalSearchSampler",
    "RegularizedEvolutionSampler",
    "SamplerError",
    "params_key",
    "space_key",
]
