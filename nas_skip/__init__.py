"""nas-skip: neural architecture search over skip-connection topologies.

The genotype layer is pure data and imports no torch; ``build`` and ``export_code`` load
torch when first used.
"""

from typing import TYPE_CHECKING, Any

from nas_skip.errors import GenotypeError, GenotypeWarning, NasSkipError
from nas_skip.genotype import Genotype

__version__ = "0.1.0"

if TYPE_CHECKING:
    from nas_skip.compile import build
    from nas_skip.export import export_code

__all__ = ["Genotype", "GenotypeError", "GenotypeWarning", "NasSkipError", "build", "export_code"]


def __getattr__(name: str) -> Any:
    # torch is imported only when a module is built or exported
    if name == "build":
        from nas_skip.compile import build

        return build
    if name == "export_code":
        from nas_skip.export import export_code

        return export_code
    raise AttributeError(f"module 'nas_skip' has no attribute {name!r}")
