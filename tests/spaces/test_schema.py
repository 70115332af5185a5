"""Every space-file error names the file, the YAML path and the allowed values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from nas_skip.spaces import Choice, Range, SpaceError, read_spec

GOOD: dict[str, Any] = {
    "name": "t",
    "description": "a test space",
    "domain": "vector",
    "dataset": "mnist1d",
    "family": "chain",
    "skeleton": {
        "depth": {"low": 2, "high": 4},
        "width": [16, 32],
        "ops": ["linear_relu"],
        "hop_window": 2,
        "kinds": ["none", "add"],
    },
    "train": {"lr": {"low": 0.001, "high": 0.1, "log": True}, "batch_size": [32, 64]},
}


def write(tmp_path: Path, doc: Any) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return path


def error(tmp_path: Path, doc: Any) -> str:
    path = write(tmp_path, doc)
    with pytest.raises(SpaceError) as info:
        read_spec(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message
    return message


def test_a_good_file_loads(tmp_path: Path) -> None:
    spec = read_spec(write(tmp_path, GOOD))
    assert spec.skeleton["depth"] == Range(2, 4)
    assert spec.skeleton["width"] == Choice((16, 32))
    assert spec.skeleton["merge_op"] == "identity" and spec.skeleton["stem"] is None
    assert spec.train["lr"] == Range(0.001, 0.1, log=True)


def with_(path: str, value: Any) -> dict[str, Any]:
    doc = yaml.safe_load(yaml.safe_dump(GOOD))
    *parents, last = path.split(".")
    target = doc
    for p in parents:
        target = target[p]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return doc


CASES = [
    ("extra", 1, "extra: unknown key (keys: name, description"),
    ("name", ..., "name: missing"),
    ("name", 3, "name: must be a string"),
    (
        "domain",
        "audio",
        "domain: unknown domain 'audio' (domains: vector, signal, image, segmentation, sequence)",
    ),
    (
        "family",
        "rnn",
        "family: unknown family 'rnn' (families: chain, stages, cell, dense, unet, nb201, "
        "transformer)",
    ),
    ("skeleton", [], "skeleton: must be a mapping"),
    ("skeleton.depth", ..., "skeleton.depth: missing (family 'chain' needs it)"),
    ("skeleton.blocks", 3, "skeleton.blocks: unknown key for family 'chain' (keys: depth"),
    ("skeleton.ops", ["linear_relu", "conv3x3_bn"], "skeleton.ops[1]: unknown op 'conv3x3_bn'"),
    ("skeleton.ops", [], "skeleton.ops: must be a non-empty list of ops"),
    ("skeleton.ops", ["linear_head"], "skeleton.ops: a head op cannot be a layer op"),
    ("skeleton.stem", "linear_head", "skeleton.stem: a head op cannot be the stem"),
    ("skeleton.head", "linear", "skeleton.head[0]: unknown head 'linear' (heads: linear_head)"),
    ("skeleton.kinds", ["none", "sum"], "skeleton.kinds[1]: unknown kind 'sum' (kinds: add"),
    ("skeleton.merge_op", "warp", "skeleton.merge_op[0]: unknown op 'warp' (ops: identity"),
    (
        "skeleton.depth",
        {"low": 5, "high": 2},
        "skeleton.depth: range [5, 2] must be finite numbers",
    ),
    ("skeleton.depth", {"low": 1}, "skeleton.depth: a range needs 'low' and 'high'"),
    ("skeleton.depth", {"low": 0, "high": 2}, "skeleton.depth: must be at least 1"),
    ("skeleton.depth", {"low": 1, "high": 2, "step": 0}, "'step' must be a positive integer"),
    ("skeleton.width", [16, 16], "skeleton.width: must be distinct integers"),
    ("skeleton.width", 1.5, "skeleton.width: must be distinct integers"),
    ("skeleton.hop_window", -1, "skeleton.hop_window: must be a non-negative integer"),
    ("skeleton.hop_window", 0, "skeleton.hop_window: must be at least 1"),
    ("train", [1], "train: must be a mapping"),
    ("train.epochs", 3, "train.epochs: unknown key (keys: lr, weight_decay, batch_size"),
    ("train.lr", {"low": 0, "high": 1, "log": True}, "train.lr: 'log' must be true or false"),
    ("train.lr", "fast", "train.lr: must be distinct finite numbers"),
    ("train.optimizer", ["sgd", "lion"], "train.optimizer[1]: unknown optimizer 'lion'"),
]


@pytest.mark.parametrize(("path", "value", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_error_names_the_yaml_path(
    tmp_path: Path, path: str, value: Any, expected: str
) -> None:
    assert expected in error(tmp_path, with_(path, value))


def test_file_level_errors(tmp_path: Path) -> None:
    assert "not valid YAML at line 2" in error(tmp_path, "name: x\n  : : [\n")
    assert "must be a mapping with keys" in error(tmp_path, "- 1\n- 2\n")
    with pytest.raises(SpaceError, match="cannot read"):
        read_spec(tmp_path / "absent.yaml")


def test_family_rules(tmp_path: Path) -> None:
    doc = with_("family", "stages")
    assert "family 'stages' needs a signal, image or segmentation domain" in error(tmp_path, doc)
    doc = yaml.safe_load(yaml.safe_dump(GOOD))
    doc.update(domain="image", family="unet")
    doc["skeleton"] = {"depth": 3, "width": 8, "long_kinds": ["add"], "short_kinds": ["none"]}
    assert "family 'unet' needs the segmentation domain" in error(tmp_path, doc)
    doc.update(family="cell")
    doc["skeleton"] = {"nodes": 9, "max_edges": 9, "ops": ["relu"], "kinds": ["add"], "width": 8}
    assert "skeleton.nodes: must be in [3, 7], got 9" in error(tmp_path, doc)
    doc.update(family="dense")
    doc["skeleton"] = {"layers": 2, "growth": 8, "compression": 0.5, "kinds": ["add"]}
    assert "dense blocks take kinds none and concat only" in error(tmp_path, doc)
    doc["skeleton"]["kinds"] = ["none", "concat"]
    doc["skeleton"]["shortcut"] = ["zero_pad"]
    assert "skeleton.shortcut: unknown key for family 'dense'" in error(tmp_path, doc)
    doc = with_("family", "stages")
    doc["domain"] = "image"
    doc["skeleton"] = {"depth": 2, "width": 8, "ops": ["relu"], "kinds": ["add"],
                       "shortcut": ["auto"]}  # fmt: skip
    assert "skeleton.shortcut[0]: unknown align 'auto' (aligns: zero_pad, projection)" in (
        error(tmp_path, doc)
    )


def test_signal_spaces(tmp_path: Path) -> None:
    doc = with_("domain", "signal")
    doc["family"] = "stages"
    doc["skeleton"] = {"depth": 2, "width": 8, "ops": ["conv1d_k5_bn_relu", "maxpool1d_k3"],
                       "kinds": ["add"], "shortcut": ["zero_pad"]}  # fmt: skip
    spec = read_spec(write(tmp_path, doc))
    assert spec.skeleton["stem"] is None and spec.skeleton["head"] is None  # domain defaults
    doc["skeleton"].update(stem="conv1d_k7_bn_relu", head="flatten1d_linear")
    spec = read_spec(write(tmp_path, doc))
    assert spec.skeleton["stem"] == "conv1d_k7_bn_relu"
    assert spec.skeleton["head"] == "flatten1d_linear"
    doc["skeleton"]["head"] = "gap_linear"
    message = error(tmp_path, doc)
    assert (
        "skeleton.head[0]: unknown head 'gap_linear' (heads: flatten1d_linear, gap1d_" in message
    )
    doc["skeleton"]["head"] = "gap1d_linear"
    doc["skeleton"]["ops"] = ["conv3x3_bn_relu"]
    message = error(tmp_path, doc)
    assert "skeleton.ops[0]: unknown op 'conv3x3_bn_relu' (ops: avgpool1d_k3" in message
    doc["family"] = "cell"
    assert "family 'cell' needs an image or segmentation domain" in error(tmp_path, doc)


def alias_bomb(levels: int) -> str:
    """A list that YAML aliases expand to 9**levels strings, in a few hundred bytes."""
    parts = ['&a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    parts += [f"&a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return f"[[{', '.join(parts)}]]"


@pytest.mark.parametrize("where", ["ops", "kinds", "width"])
def test_an_alias_bomb_is_one_short_line(tmp_path: Path, where: str) -> None:
    # 9**7 strings from 560 bytes: the message shows a bounded prefix of the value (it
    # once held all of it: 351 MB, and one more level ran out of memory)
    text = yaml.safe_dump(GOOD)
    skeleton = text.index("skeleton:")
    start = text.index(f"  {where}:", skeleton)
    end = text.index("\n", start)
    if text[end + 1 :].startswith("  - "):  # a block list: skip its items
        while text[end + 1 :].startswith("  - "):
            end = text.index("\n", end + 1)
    doc = text[:start] + f"  {where}: {alias_bomb(7)}" + text[end:]
    assert len(doc) < 2000
    message = error(tmp_path, doc)
    assert f"skeleton.{where}" in message and len(message) < 600
