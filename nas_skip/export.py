"""``export_code``: a genotype as a standalone PyTorch file that imports only torch (and the
modules of the user ops it uses, see :func:`nas_skip.register_op`)."""

from __future__ import annotations

from nas_skip.codegen import generate_source
from nas_skip.genotype import Genotype


def export_code(genotype: Genotype, class_name: str = "Net") -> str:
    """The source of a standalone module defining ``class_name`` (an ``nn.Module``).

    It reads like hand-written PyTorch (repeated identical blocks become one block class),
    its ``state_dict`` keys equal those of :func:`nas_skip.build`'s module, and it gives
    identical outputs for identical weights. A user op's factory is imported from its
    module (``from my_ops import Gate``), and the docstring lists those imports.

    Raises:
        NasSkipError: ``class_name`` is not a usable Python class name, or a user op's
            factory is defined in a script (``__main__``) or clashes with another name.
    """
    return generate_source(genotype, class_name, for_export=True)
