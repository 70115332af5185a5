"""The graph genotype: pure data, validated with networkx, never imports torch."""

from nas_skip.errors import GenotypeError, GenotypeWarning
from nas_skip.genotype._genotype import Genotype, Merge, NodePlan
from nas_skip.genotype._hash import HASH_VERSION, canonical_form, canonical_hash
from nas_skip.genotype._parse import INPUT, SCHEMA_VERSION, Edge, Node
from nas_skip.genotype._stats import NodeCost, costs, human, topology

__all__ = [
    "HASH_VERSION",
    "INPUT",
    "SCHEMA_VERSION",
    "Edge",
    "Genotype",
    "GenotypeError",
    "GenotypeWarning",
    "Merge",
    "Node",
    "NodeCost",
    "NodePlan",
    "canonical_form",
    "canonical_hash",
    "costs",
    "human",
    "topology",
]
