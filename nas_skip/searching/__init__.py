"""The search: one objective, two backends (local Optuna processes, Ray Tune), one storage.

``search(SearchConfig(space="deep_mlp", trials=20))`` runs or continues a study; the
trials carry their genotype, hash, costs and metrics as user attributes, and the best
trials' weights are kept as Optuna artifacts for ``nas-skip export``; ``retrain(storage,
study)`` trains a trial again under several seeds to confirm its score.
"""

from nas_skip.searching._config import BACKENDS, OBJECTIVES, SAMPLERS, SearchConfig, SearchError
from nas_skip.searching._progress import summary_table, top_trials
from nas_skip.searching._retrain import Retrained, retrain
from nas_skip.searching._run import SearchResult, search
from nas_skip.searching._storage import fail_stale_trials, make_storage

__all__ = [
    "BACKENDS",
    "OBJECTIVES",
    "Retrained",
    "SAMPLERS",
    "SearchConfig",
    "SearchError",
    "SearchResult",
    "fail_stale_trials",
    "make_storage",
    "retrain",
    "search",
    "summary_table",
    "top_trials",
]
