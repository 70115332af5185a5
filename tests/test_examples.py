"""The reference genotypes in examples/genotypes: valid, runnable, counted right, not stale.

ResNet-20/56 are checked against the widely used CIFAR ResNet code (option A shortcuts)
and the DenseNet example against the same network written by hand; analytic parameter
and FLOP counts against torch (``sum(p.numel())`` and ``FlopCounterMode``).
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from nas_skip import Genotype, build
from nas_skip.genotype import costs

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "genotypes"
NAMES = ["resnet20", "resnet56", "densenet_block", "unet_small", "highway_mlp", "rezero_mlp",
         "char_gpt"]  # fmt: skip
OUTPUT_SHAPES = {
    "char_gpt": (128, 97),
    "resnet20": (10,),
    "resnet56": (10,),
    "densenet_block": (10,),
    "unet_small": (6, 32, 32),
    "highway_mlp": (10,),
    "rezero_mlp": (10,),
}
RESNET_PARAMS = {"resnet20": 269_722, "resnet56": 853_018}


def load(name: str) -> Genotype:
    """Read an example, failing on any warning (an example must need no repair)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return Genotype.from_json((EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))


def example(g: Genotype, n: int) -> torch.Tensor:
    """A batch of ``n`` inputs: token ids for a sequence genotype, else Gaussian noise."""
    if g.sequence:
        return torch.randint(0, 97, (n, *g.input_shape))
    return torch.randn(n, *g.input_shape)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def copy_by_position(src: nn.Module, dst: nn.Module) -> None:
    """Load ``src``'s state into ``dst``, pairing tensors in registration order."""
    a, b = src.state_dict(), dst.state_dict()
    assert len(a) == len(b)
    mapped = {}
    for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True):
        assert va.shape == vb.shape, (ka, kb)
        mapped[kb] = va
    dst.load_state_dict(mapped)


# --- the standard CIFAR ResNet (option A), as in the widely used CIFAR code ----------------
class LambdaLayer(nn.Module):
    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


class BasicBlock(nn.Module):
    """``pad_front``: the original's planes // 4 zero channels on both sides; else at the end
    (where nas-skip's ``zero_pad`` puts them; the two differ by a channel permutation)."""

    def __init__(self, in_planes: int, planes: int, stride: int, pad_front: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Sequential()
        if stride != 1 or in_planes != planes:
            pad = (planes // 4, planes // 4) if pad_front else (0, planes - in_planes)
            self.shortcut = LambdaLayer(
                lambda x: F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, *pad), "constant", 0)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        return F.relu(out)


class CifarResNet(nn.Module):
    def __init__(self, n: int, num_classes: int = 10, pad_front: bool = True) -> None:
        super().__init__()
        self.in_planes = 16
        self.conv1 = nn.Conv2d(3, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = self._make_layer(16, n, 1, pad_front)
        self.layer2 = self._make_layer(32, n, 2, pad_front)
        self.layer3 = self._make_layer(64, n, 2, pad_front)
        self.linear = nn.Linear(64, num_classes)

    def _make_layer(self, planes: int, blocks: int, stride: int, pad_front: bool) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (blocks - 1):
            layers.append(BasicBlock(self.in_planes, planes, s, pad_front))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.avg_pool2d(out, out.size()[3])
        return self.linear(out.view(out.size(0), -1))


# --- the DenseNet example by hand ------------------------------------------------------------
class HandDenseNet(nn.Module):
    def __init__(self, stem: int = 24, growth: int = 12, layers: int = 5) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(3, stem, 3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(stem)
        self.dense = nn.ModuleList()
        width = stem
        for _ in range(layers):
            self.dense.append(
                nn.Sequential(
                    nn.BatchNorm2d(width),
                    nn.ReLU(),
                    nn.Conv2d(width, growth, 3, padding=1, bias=False),
                )
            )
            width += growth
        self.trans_conv = nn.Conv2d(width, width // 2, 1, bias=False)
        self.trans_bn = nn.BatchNorm2d(width // 2)
        self.linear = nn.Linear(width // 2, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [F.relu(self.bn0(self.conv0(x)))]
        for layer in self.dense:
            features.append(layer(torch.cat(features, 1)))
        out = F.relu(self.trans_bn(self.trans_conv(torch.cat(features, 1))))
        out = F.avg_pool2d(out, 3, stride=2, padding=1, count_include_pad=False)
        return self.linear(out.mean((2, 3)))


# --- tests -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_example_loads_and_round_trips(name: str) -> None:
    text = (EXAMPLES / f"{name}.json").read_text(encoding="utf-8")
    g = load(name)
    assert g.name == name
    assert g.to_json() == json.loads(text)
    assert g.shapes[g.output] == OUTPUT_SHAPES[name]


@pytest.mark.parametrize("name", NAMES)
def test_example_forward_backward(name: str) -> None:
    g = load(name)
    torch.manual_seed(0)
    model = build(g).train()
    out = model(example(g, 2))
    assert out.shape == (2, *OUTPUT_SHAPES[name])
    out.square().mean().backward()
    for key, p in model.named_parameters():
        assert p.grad is not None, key
        assert torch.isfinite(p.grad).all(), key


@pytest.mark.parametrize("name", NAMES)
def test_analytic_params_match_torch(name: str) -> None:
    g = load(name)
    assert sum(c.params for c in costs(g)) == n_params(build(g))


@pytest.mark.parametrize("name", NAMES)
def test_analytic_flops_match_flop_counter(name: str) -> None:
    g = load(name)
    model = build(g).eval()  # eval: batch norm takes a batch of one
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad(), sdpa_kernel(SDPBackend.MATH):  # attention counted
        model(example(g, 1))
    assert sum(c.flops for c in costs(g)) == counter.get_total_flops()


@pytest.mark.parametrize(("name", "n"), [("resnet20", 3), ("resnet56", 9)])
def test_resnet_matches_standard_cifar_resnet(name: str, n: int) -> None:
    g = load(name)
    built = build(g)
    standard = CifarResNet(n)
    assert n_params(built) == n_params(standard) == RESNET_PARAMS[name]
    # the same tensors in the same order: conv, BN, ..., linear
    shapes = [tuple(v.shape) for v in built.state_dict().values()]
    assert shapes == [tuple(v.shape) for v in standard.state_dict().values()]


def test_resnet20_computes_the_standard_function() -> None:
    """With copied weights, ResNet-20 (zero channels padded at the end) gives equal outputs."""
    torch.manual_seed(0)
    built = build(load("resnet20")).eval()
    standard = CifarResNet(3, pad_front=False).eval()
    copy_by_position(built, standard)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(built(x), standard(x))


def test_resnet_node_ids() -> None:
    ids = [n.id for n in load("resnet20").nodes]
    assert ids[:4] == ["stem", "s1b1a", "s1b1b", "s1b1"]
    assert ids[-2:] == ["s3b3", "head"]


def test_densenet_matches_hand_written() -> None:
    torch.manual_seed(0)
    built = build(load("densenet_block")).eval()
    hand = HandDenseNet().eval()
    assert n_params(built) == n_params(hand)
    copy_by_position(built, hand)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(built(x), hand(x))


def test_example_edge_kinds() -> None:
    """Each example shows the skip kinds it is there to show."""

    def kinds(name: str) -> set[str]:
        return {e.kind for e in load(name).edges}

    assert kinds("unet_small") >= {"concat", "add"}
    assert kinds("densenet_block") == {"seq", "concat"}
    assert kinds("highway_mlp") == {"seq", "gated"}
    assert kinds("rezero_mlp") == {"seq", "scaled"}
    assert {e.params["init"] for e in load("rezero_mlp").edges if e.kind == "scaled"} == {0.0}


def _make_examples() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_examples", ROOT / "scripts/make_examples.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_files_equal_the_script_output() -> None:
    files = _make_examples().render_all()
    assert sorted(files) == sorted(p.name for p in EXAMPLES.iterdir())
    for name, text in files.items():
        assert (EXAMPLES / name).read_bytes() == text.encode("utf-8"), f"{name} is stale"


def test_make_examples_writes_and_checks(tmp_path: Path) -> None:
    module = _make_examples()
    assert module.main(["--out", str(tmp_path), "--check"]) == 1  # nothing written yet
    assert module.main(["--out", str(tmp_path)]) == 0
    assert module.main(["--out", str(tmp_path), "--check"]) == 0
    for path in tmp_path.iterdir():
        assert path.read_bytes() == (EXAMPLES / path.name).read_bytes()


def test_the_own_data_example_searches_a_csv_and_loads_its_best_network(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "own_data.py"), "--out", str(tmp_path),
         "--trials", "4", "--epochs", "8", "--workers", "1"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].endswith("3 classes, 142/18/18 train/val/test; val and test carved from "
                             "the table (10% each, seed 0)")  # fmt: skip
    best = next(line for line in lines if line.startswith("best trial"))
    test_accuracy = float(best.split("test accuracy ")[1].split(",")[0])
    assert test_accuracy > 0.6, best  # chance is 1/3


def test_the_own_objective_example_trains_with_its_loss_on_ray(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "own_objective.py"), "--out", str(tmp_path),
         "--trials", "4"],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    summary = next(line for line in done.stdout.splitlines() if "best trial" in line)
    accuracy = float(summary.split("validation accuracy ")[1].split(",")[0])
    assert accuracy > 0.8, summary  # digits, 10 classes: the focal-loss recipe learns
