"""nas-skip: neural architecture search over skip-connection topologies.

``nas_skip.search(space, dataset, trials=...)`` runs a search and returns its Optuna study;
``nas_skip.best(study)`` and ``nas_skip.load_model(study)`` give its best trial and trained
network; ``nas_skip.Dataset.from_arrays(...)`` searches your own arrays. The genotype
layer is pure data and imports no torch; the rest loads what it needs when first used.
"""

from typing import TYPE_CHECKING, Any

from nas_skip._user_ops import Param, ensure_registered, register_op, registered_ops
from nas_skip.errors import GenotypeError, GenotypeWarning, NasSkipError
from nas_skip.genotype import Genotype

__version__ = "0.1.0"

if TYPE_CHECKING:
    from nas_skip._api import Dataset, best, load_model, search
    from nas_skip.compile import build
    from nas_skip.export import export_code

__all__ = ["Dataset", "Genotype", "GenotypeError", "GenotypeWarning", "NasSkipError", "Param",
           "best", "build", "ensure_registered", "export_code", "load_model", "register_op",
           "registered_ops", "search"]  # fmt: skip
_API = ("Dataset", "best", "load_model", "search")


def __getattr__(name: str) -> Any:
    # optuna, numpy and torch are imported only when the search API is first used
    if name in _API:
        from nas_skip import _api

        return getattr(_api, name)
    if name == "build":
        from nas_skip.compile import build

        return build
    if name == "export_code":
        from nas_skip.export import export_code

        return export_code
    raise AttributeError(f"module 'nas_skip' has no attribute {name!r}")
