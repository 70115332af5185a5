"""The sequence domain: transformer genotypes validate, hash, count, build and export."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import networkx as nx
import pytest
import torch
from helpers import import_source, transformer_doc
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from nas_skip import Genotype, build, export_code
from nas_skip.genotype import costs

torch.set_num_threads(1)


def renamed(doc: dict, prefix: str) -> dict:
    """``doc`` with every node id but the input prefixed (an isomorphic genotype)."""
    name = {n["id"]: prefix + n["id"] for n in doc["nodes"]} | {"input": "input"}
    return doc | {
        "nodes": [n | {"id": name[n["id"]]} for n in reversed(doc["nodes"])],
        "edges": [e | {"src": name[e["src"]], "dst": name[e["dst"]]} for e in doc["edges"]],
        "output": name[doc["output"]],
    }


def test_a_pre_ln_transformer_has_the_shapes_and_costs_torch_counts() -> None:
    g = Genotype.from_json(transformer_doc("pre", depth=3, length=12, vocab=10, width=8))
    assert g.domain == "sequence" and g.sequence
    assert g.shapes["e"] == (12, 8) and g.shapes["head"] == (12, 10)
    model = build(g)
    x = torch.randint(0, 10, (1, 12))
    assert sum(c.params for c in costs(g)) == sum(p.numel() for p in model.parameters())
    with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
        model(x)
    assert sum(c.flops for c in costs(g)) == counter.get_total_flops()


def test_hash_sees_through_renaming_and_tells_designs_apart() -> None:
    pre, post = transformer_doc("pre"), transformer_doc("post")
    a = Genotype.from_json(pre).canonical_hash()
    assert Genotype.from_json(renamed(pre, "z_")).canonical_hash() == a
    assert Genotype.from_json(post).canonical_hash() != a
    # the same graph on vectors would be another network: the domain is part of the hash
    assert Genotype.from_json(transformer_doc("pre", length=13)).canonical_hash() != a


def test_json_and_networkx_keep_the_domain() -> None:
    g = Genotype.from_json(transformer_doc("post"))
    assert g.to_json()["input"] == {"shape": [12], "domain": "sequence"}
    assert Genotype.from_json(g.dumps()) == g
    back = Genotype.from_networkx(g.to_networkx())
    assert back == g and back.sequence
    assert nx.is_directed_acyclic_graph(g.to_networkx())


@pytest.mark.parametrize("design", ["pre", "post"])
def test_exported_code_reads_like_a_hand_written_block(design: str, tmp_path: Path) -> None:
    g = Genotype.from_json(transformer_doc(design, depth=4))
    source = export_code(g, class_name="GPT")
    tree = ast.parse(source)
    classes = [n.name for n in tree.body if isinstance(n, ast.ClassDef)]
    # the helper classes nanoGPT defines, one block class for the four repeated blocks
    assert classes == ["TokenEmbedding", "CausalSelfAttention", "Block1", "GPT"]
    assert "used 4 times" in source
    block = source[source.index("class Block1") : source.index("class GPT")]
    residual = "id1 = x + attn1" if design == "pre" else "ln1 = self.ln1(x + attn1)"
    assert residual in block  # the residual, visible in one line
    assert "F.scaled_dot_product_attention(q, k, v, is_causal=True)" in source
    torch.manual_seed(0)
    built = build(g)
    exported = import_source(source, tmp_path).GPT()
    assert list(exported.state_dict()) == list(built.state_dict())
    exported.load_state_dict(built.state_dict())
    x = torch.randint(0, 10, (3, 12))
    assert torch.equal(built.eval()(x), exported.eval()(x))


def test_attention_is_causal() -> None:
    # changing the last token changes no earlier position's output
    g = Genotype.from_json(transformer_doc("pre", depth=2))
    model = build(g).eval()
    x = torch.randint(0, 10, (1, 12))
    y = x.clone()
    y[0, -1] = (x[0, -1] + 1) % 10
    a, b = model(x), model(y)
    torch.testing.assert_close(a[:, :-1], b[:, :-1])
    assert not torch.allclose(a[:, -1], b[:, -1])


def test_a_thousand_node_transformer_validates_hashes_and_builds() -> None:
    # 170 blocks: the case that grows (about 1,000 nodes)
    g = Genotype.from_json(transformer_doc("pre", depth=170, width=4))
    assert len(g.nodes) > 1000
    assert g.canonical_hash().startswith("v2:")
    model = build(g)
    with torch.no_grad():
        assert math.isfinite(float(model(torch.randint(0, 10, (1, 12))).sum()))
    assert export_code(g).count("class Block1") == 1
